// Package supervise runs the long-running parts of an Uplink app (the
// connection pool, the job queue client, the app's own services) as one
// ordered group. Boot starts the group in its starting phase and stops it
// when the process stops:
//
//	Start:  pool ──► jobs ──► app      in order, each returns once running;
//	                                   a failed start stops the started ones
//	Stop:   app ──► jobs ──► pool      reverse order, bounded by ctx
//
// Each service then lives in this loop:
//
//	starting ──► running ──(Done delivers)──► restarting ──(back-off)──► starting
//	                                              │
//	                      more than MaxRestarts crashes within Window
//	                                              ▼
//	                                           failed     Failed() delivers why
//
// A service that can end on its own after a successful Start reports it on
// Done (see Watched); a service without Done is trusted to keep running.
// Func adapts a "run until ctx ends" function and turns its panics into
// crashes. Errors for which Config.IsOutage reports true (the database went
// away) are retried with the same back-off but never counted: an outage
// must not make the process give up.
//
// # Why not github.com/thejerf/suture/v4
//
// Suture is well kept, but its model differs where Uplink needs guarantees
// (read from its v4 supervisor.go):
//   - it stops all services at once, one goroutine each in map order, so
//     the pool could close while the job client still drains jobs;
//   - a service is a blocking Serve(ctx) with no "now running" point, so a
//     group cannot be started one after the other or fail as a whole;
//   - failures are counted per supervisor with exponential decay, and past
//     the threshold it pauses every service and then tries again forever:
//     there is no per-service back-off, no give-up and no way to leave
//     outages uncounted;
//   - stopping is bounded by a fixed timeout rather than the caller's ctx.
//
// Getting ordered stop out of it would take one suture supervisor per
// service plus our own counting on top, more code than this package.
package supervise
