// Package boot is Uplink's public API: it brings a Go service up on its
// own, with nobody installing a database first.
//
//	app, err := boot.New(boot.Config{Handler: mux})
//	...
//	err = app.Run(ctx) // returns after ctx ends and everything stopped
//
// Run serves /livez, /readyz, /status and /metrics at once, then walks the
// phases:
//
//	process start
//	    │  HTTP up at once: /livez 200, /readyz 503, /status says why
//	    ▼
//	provisioning ──► migrating ──► tasks ──► starting ──► ready ◄──► degraded
//	 (lite: find/      (cluster-    (ordered    (pool,        │  (database lost:
//	  install/init/     wide lock,   startup     services)    │   not ready; back
//	  start postgres;   exactly      tasks)                   │   on its own)
//	  pro: reach URL)   once)                                 ▼
//	     any step that needs a person ──► error (alive, not ready, no crash loop)
//	     ctx ends (SIGTERM) ──► stopping (readiness off, HTTP drained,
//	                            services in reverse, pool, database last)
//
// A dependency outage never makes Run return: steps retry with capped,
// jittered back-off and /status says what they wait for and when they try
// again. Only what a person must fix (a *status.ActionError: bad
// configuration, a failed migration) stops the walk, in phase error, and
// the process stays up to say so.
package boot
