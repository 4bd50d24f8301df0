// Package lite provisions Uplink's own PostgreSQL: with no DATABASE_URL,
// Uplink finds (or installs) the server binaries, creates a private
// cluster in its data directory, and runs and supervises `postgres -D` as
// its child process.
//
// Provision walks these steps, each shown in Status (Data["step"], and
// the history in Data["steps"]):
//
//	check           inspect <data>/pg/data without touching it: empty → new
//	   │            cluster; PG_VERSION → existing; anything else → refused
//	   │            (Uplink never deletes data). Then flock <data>/uplink.lock
//	   │            for the life of the process: a second Uplink fails here.
//	   ▼
//	find-binaries   the ones pg/state.json names while postgres there is the
//	   │            same file; else UPLINK_PG_BINDIR; /usr/lib/postgresql/*/bin
//	   │            (the cluster's major, else the highest ≥ 13);
//	   │            /usr/libexec/postgresql*; /usr/pgsql-*/bin; pg_config
//	   │            --bindir; PATH
//	   ├──► install     none at all, root, UPLINK_PG_INSTALL=auto: apt-get / apk /
//	   │                dnf, once per process; else error with the command to run
//	   ▼
//	initdb          first start only: scram-sha-256, UTF8, C locale, random
//	   │            password from pg/password (0600), into a staging directory
//	   │            renamed to pg/data when complete
//	   ▼
//	orphan          postmaster.pid names a live postgres on pg/data (checked
//	   │            through /proc/PID/exe and cwd): SIGINT, SIGQUIT, SIGKILL
//	   ▼
//	start           port from pg/state.json, a new one if taken; postgres -D as
//	   │            the postgres user, own process group, parent-death signal
//	   │            SIGINT; listens on pg/run and 127.0.0.1 only; stderr piped
//	   │            into pg/log/postgres.log (rotated) and Uplink's log
//	   ├──► recover     after an unclean stop: waited for, however long
//	   ▼
//	create-database first start: the application role, and the application
//	   │            database, which on a fresh cluster is its empty postgres
//	   │            database renamed (instant; a new postgres database is made
//	   │            5 s after Provision returns, off boot's way, for the
//	   │            tools that expect one)
//	   ▼
//	ready ──────────► Provision returns a DSN over the unix socket
//	   │
//	   │ postmaster dies
//	   ▼
//	restart         back-off 1 s doubling to 30 s, then start again; more than
//	   │            MaxRestarts (5) failures in RestartWindow (10 min) → failed:
//	   │            Failed() delivers, Status fails with the log's tail
//	   ▼
//	stop            Stop: SIGINT, 30 s, SIGQUIT, 10 s, SIGKILL to the group;
//	                then the lock is released
//
// PostgreSQL never runs as root: as root, Uplink runs it as the owner of an
// existing cluster, else the postgres OS user, else a system user it
// creates (uplink-pg). Files under the data directory are described at
// Layout.
//
// ReadConnInfo gives tools (`uplink db url|psql|dump`) the connection
// details of a data directory without starting anything.
package lite
