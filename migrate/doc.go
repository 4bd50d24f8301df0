// Package migrate brings a PostgreSQL schema up to date, exactly once
// across every replica that starts at the same time, and records what it
// did as data.
//
// # Sources
//
// Load lists migrations in any fs.FS (an embed.FS in a binary, a
// directory with os.DirFS): plain NNN_name.sql files, NNN_name.up.sql and
// .down.sql pairs (golang-migrate, River), and goose- or dbmate-annotated
// files; package sqlfile parses them and sqlsplit cuts them into
// statements. GoMigration registers migrations written in Go. A Line is a
// named sequence of them with its own versions ("uplink", "app",
// "river"); lines share one history table and one lock.
//
// Load checks names only. A run reads every file while it connects (it
// needs the applied ones' checksums) and parses only those it is about to
// run, refusing before it runs anything when one cannot be read or does
// not parse; Validate reads and checks every file, for CI.
//
// # A run
//
//	Up ──► connect (reading the files meanwhile) ──► read history (no lock)
//	       ──► check checksums ──► nothing pending? ──► done
//	                                                │ pending
//	                                                ▼
//	       poll pg_try_advisory_lock on the same session (package pglock);
//	       waiters hold no snapshot, show "waiting for lock held by ...",
//	       and wake on the holder's release (LISTEN/NOTIFY); one that finds
//	       the lock taken again reads the history: nothing pending ──► done
//	                                                │ granted
//	                                                ▼
//	       create the history table if missing, read it again (a replica
//	       may have done the work), check drift and order, parse and check
//	       what is pending, then for each pending migration, in one round
//	       trip for a file:
//	         BEGIN; its statements; RESET the session (which also makes the
//	         rest run as the session's own user); history row; COMMIT
//	       or, for a no-transaction migration, each statement in autocommit
//	       with a progress row after it, the session reset around them
//	                                                │
//	                                                ▼
//	       release the lock (NOTIFY waiters), close the session
//
// The session that runs migrations has lock_timeout, statement_timeout and
// client_connection_check_interval as its defaults (connection
// parameters, see Config), so the reset that ends each migration also
// restores them for the next.
//
// Each migration commits on its own together with its history row, so a
// later migration can use what an earlier one made (an enum value added
// with ALTER TYPE ... ADD VALUE). If the session is lost (the process is
// killed, pg_terminate_backend), PostgreSQL rolls back the migration in
// flight and drops the lock at once; a waiter then takes over and finds
// that migration still pending. Migrations set client_connection_check_interval
// (PostgreSQL 14 and later) so that a process killed during a long statement
// is noticed within seconds instead of when the statement ends.
//
// # Failures are data
//
// A failing migration stops the run with a *PartialError (what was applied
// before it) wrapping a *MigrationError (file, statement index, line and
// column from PostgreSQL's error position, SQLSTATE, message), itself in a
// *status.ActionError with a hint unless it is temporary (a lost session,
// a lock_timeout). The failure is written to the history table, and the
// next run retries: there is no "dirty" state to force. A no-transaction
// migration resumes after the last statement that committed, as long as
// the statements before it are unchanged (compared by sha256); an index
// left invalid by a failed CREATE INDEX CONCURRENTLY is reported with the
// DROP INDEX to run, even when IF NOT EXISTS would pass over it.
//
// # History table
//
// By default uplink.schema_history (Config.Schema, Config.Table), created
// under the lock on first use:
//
//	CREATE TABLE uplink.schema_history (
//	    line             text        NOT NULL,  -- "app", "uplink", "river", "tasks"...
//	    key              text        NOT NULL,  -- the version in decimal; a task's name
//	    version          bigint,                -- the version; NULL when key is not one
//	    name             text        NOT NULL DEFAULT '',
//	    checksum         text        NOT NULL DEFAULT '',  -- sha256 hex of the source
//	    outcome          text        NOT NULL,  -- applied | failed | running
//	    attempts         integer     NOT NULL DEFAULT 1,
//	    applied_at       timestamptz,           -- when outcome last became applied
//	    updated_at       timestamptz NOT NULL DEFAULT now(),
//	    duration         interval,              -- of the last attempt
//	    statements_done  integer     NOT NULL DEFAULT 0,    -- no-transaction progress
//	    statement_hashes text[]      NOT NULL DEFAULT '{}', -- sha256 of each done statement
//	    failed_statement integer,               -- 1-based, for a failure
//	    sqlstate         text,
//	    message          text,
//	    runner           text        NOT NULL DEFAULT '',   -- host, pid, application_name
//	    PRIMARY KEY (line, key)
//	);
//
// One row per migration (or task) holds its last known state; a retry
// overwrites the failure it follows and counts in attempts. A reverted
// migration's row is deleted.
//
// Startup tasks use the same table as line "tasks", keyed by task name,
// under the same lock: Migrator.WithLock runs a function on the locked
// session, and History reads and writes rows, in a transaction on that
// session when the caller opens one.
//
// # Lock
//
// The lock is a session-level advisory lock on
// pglock.Key(current_database(), Schema, Table): the first 8 bytes of
// sha256("uplink:" + database + "." + schema + "." + table) as a big-endian
// int64. Every process migrating the same history table of the same
// database contends for it; nothing else does.
//
// # Integrity
//
// Before running anything, Up refuses (with a *status.ActionError) when an
// applied migration's checksum changed — naming the file and both
// checksums; Accept records an intended change — and when a pending
// migration is older than the newest applied one of its line, unless
// Config.AllowOutOfOrder. Migrations applied in the database but unknown to
// the binary (the database is ahead) are reported by Status and logged,
// not refused.
package migrate
