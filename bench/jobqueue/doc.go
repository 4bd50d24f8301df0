// Package jobqueue benchmarks Uplink's River wiring against River used
// directly on the same PostgreSQL, and measures how long an Uplink app
// takes to be ready again once its database is back. Run from bench/:
//
//	go test ./jobqueue -run '^$' -bench . -benchtime 1x -count 3
//
// See docs/benchmarks.md for the numbers and the machine.
package jobqueue
