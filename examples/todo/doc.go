// Command todo is a small service built on Uplink's boot package, the way
// an outside Go app uses it: its own migrations (embedded), a dev-only
// seed task, a River job and an HTTP handler.
//
//	POST /todos {"title": "...", "work_ms": 0}   201 {"id": 1}
//	GET  /todos                                  200 [{"id":1,"title":"...","processed_at":...}]
//	GET  /todos/{id}                             200 {...}, 404
//
// Creating a todo inserts its row and a "todo_process" job in one
// transaction, so the job exists exactly when the todo does; the job waits
// work_ms, then sets processed_at. Uplink's own endpoints (/livez, /readyz,
// /status, /metrics) are served beside these.
//
// Run it with no database at all (lite mode: Uplink runs a private
// PostgreSQL in UPLINK_DATA_DIR), or with DATABASE_URL (pro mode):
//
//	UPLINK_ENV=dev UPLINK_DATA_DIR=/tmp/todo go run ./examples/todo
//	curl -s -XPOST localhost:4080/todos -d '{"title":"try uplink"}'
//	curl -s localhost:4080/todos
//
// It reads UPLINK_DATA_DIR, DATABASE_URL, UPLINK_HTTP_ADDR, UPLINK_ENV and
// UPLINK_LOG_LEVEL, logs JSON to stdout, and stops gracefully on SIGINT
// or SIGTERM (a second one exits at once).
package main
