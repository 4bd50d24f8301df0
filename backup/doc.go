// Package backup is Uplink's own job: in lite mode, a periodic
// `pg_dump -Fc` of the private database into <data dir>/pg/backups, with
// a retention count.
//
//	River's periodic enqueuer (leader only)
//	   │  every Interval after the newest backup, one job at a time
//	   ▼
//	Worker.Work ──► pg_dump -Fc -f pg/backups/.uplink-<time>.dump.partial
//	   │            (the cluster's own pg_dump, over its unix socket)
//	   ▼
//	fsync, rename to uplink-<time>.dump, fsync the directory
//	   ▼
//	prune: delete the oldest uplink-<time>.dump beyond Keep
//
// Only files this package names uplink-<time>.dump are ever deleted, and
// only by retention: anything else in the directory is left alone, and a
// failed dump removes nothing but its own partial file.
package backup
