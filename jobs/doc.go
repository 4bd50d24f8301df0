// Package jobs wires River, the job queue, into an Uplink app: River's
// schema as a line of Uplink's migrator, and River's client as a
// supervised service that starts after the connection pool and stops
// before it.
//
//	migrating   MigrationLine ──► line "river", applied under Uplink's
//	            cluster-wide lock: replicas never race River's migrator
//	starting    pool ──► Service.Start: client made from the pool, the
//	            workers (AddWorker) and Config.Queues; fetching begins
//	ready       jobs flow; queue depth counted every DepthInterval for
//	            /status (Check) and /metrics (Collector)
//	degraded    the database is gone: River's loops retry on their own,
//	            fetching finds nothing, completions wait in memory; the
//	            log gets one line per back-off step, not one per poll
//	stopping    Service.Stop: fetching stops at once ──► running jobs get
//	            SoftStopTimeout ──► their contexts are cancelled ──► Stop
//	            waits for them (bounded by its ctx) ──► the pool may close
//
// Why River keeps running through an outage rather than being stopped and
// restarted with the database: a stopped client drops the completions it
// could not write, leaving finished jobs "running" until River's rescuer
// runs them again an hour later. Left running, River writes them once the
// database is back, and its 1 s poll picks new jobs up within a second.
package jobs
