// Package pglock is Uplink's cluster-wide lock: a PostgreSQL session-level
// advisory lock, polled with pg_try_advisory_lock on the same session that
// then does the work.
//
// Why polled, and why on the working session:
//
//   - A waiter runs one tiny query every few hundred milliseconds and is
//     idle in between, so it holds no snapshot and no transaction. A
//     CREATE INDEX CONCURRENTLY run by the holder, which waits for every
//     older snapshot to go away, cannot deadlock against waiters.
//     (pg_advisory_lock, which blocks inside a query, would hold one.)
//   - The lock belongs to the session. If the holder dies or its session is
//     terminated, PostgreSQL drops the lock and rolls back the holder's
//     transaction at the same moment, so a waiter never takes over half a
//     piece of work. The wait is therefore bounded by the holder being
//     alive, not by a timeout; a caller that wants a bound passes a context
//     with a deadline.
//
// Waiting, and waking:
//
//	poll ──► taken ──► LISTEN on Channel(key), poll again ──► taken
//	  ▲                                                         │
//	  │    ◄── NOTIFY from Release, or the back-off runs out ◄──┘
//	  └── (after a NOTIFY, and the lock taken again: Options.Needed?
//	       no ──► ErrNotNeeded, holding nothing)
//
// Release notifies the lock's channel in the statement that unlocks, so
// a waiter polls as soon as the lock is free instead of at its next
// back-off; the back-off (at most 250ms by default) still bounds how long
// a holder that died unnoticed (kill -9, pg_terminate_backend) keeps
// waiters waiting. Between polls a waiter sits in WaitForNotification:
// idle, outside any transaction. When many wait for one piece of work,
// Options.Needed lets those that lose the race to the lock look whether
// the work is done, and leave without taking the lock in turn.
//
// # Key
//
// Advisory locks are scoped to one database and named by a 64-bit integer.
// Key derives that integer from the thing being protected:
//
//	sha256("uplink:" + database + "." + schema + "." + table), first 8 bytes,
//	read big-endian as an int64
//
// so the migrator of database "app" with its history in
// uplink.schema_history locks Key("app", "uplink", "schema_history"), and
// two histories in the same database never contend. Names are used exactly
// as given (case-sensitive, unquoted).
//
// In pg_locks the key shows as locktype 'advisory' with classid = the high
// 32 bits, objid = the low 32 bits and objsubid = 1. Its LISTEN/NOTIFY
// channel is "uplink_lock_" and the key as 16 hex digits (Channel).
package pglock
