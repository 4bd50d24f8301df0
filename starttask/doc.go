// Package starttask runs an app's startup tasks — seeds, demo data for
// dev, a restore when the database is new — once per cluster however many
// replicas boot together, and its post-start and pre-stop hooks.
//
// Boot runs the tasks in its tasks phase, after the migrations and before
// the services:
//
//	Run ──► read line "tasks" of the history table (no lock) ──► nothing due? ──► done
//	                                                        │ due
//	                                                        ▼
//	        the migrator's cluster lock, on its session (migrate.Migrator.WithLock)
//	        read the history again (a replica may have run them), then in order,
//	        for each task still due:
//	          SQL or Go: BEGIN; the task; its history row; COMMIT
//	          command:   run it (DATABASE_URL set); then its history row
//	        a required task's failure: recorded, the run stops ──► phase error
//	        a best-effort task's failure: recorded, a warning, the run goes on
//
// # Tasks
//
// A task is a Go function given to boot (boot.Config.Tasks), or a file of
// a tasks directory (boot.Config.TasksDir, --tasks): a .sql file, run in
// one transaction on the locked session, or an executable, run with
// DATABASE_URL and UPLINK_* in its environment. Go tasks run first, in
// the order given, then the directory's files in name order. A directory
// task is named after its file without its leading order number and
// extension: 10_seed.sql is "seed", so files can be renumbered without
// running once-tasks again. Hidden files, *~, *.md, *.txt and
// subdirectories are not tasks.
//
// # Header
//
// A directory task says how it runs in a comment at its top, "--" for
// SQL and "#" for scripts (after the #! line):
//
//	-- uplink: policy=once env=dev,test timeout=30s
//	-- uplink: on-failure=best-effort
//
//	#!/bin/sh
//	# uplink: policy=on-change version=3
//
// Only the leading block of comments is read; several "uplink:" lines
// add up; each word is key=value:
//
//	policy=always|once|on-change  default once
//	env=dev,test,prod             default every env
//	fresh                         only on a fresh database (implies once)
//	on-failure=required|best-effort  default required
//	timeout=DURATION              default 5m (DefaultTimeout)
//	version=STRING                on-change compares it instead of the file's sha256
//
// Policy and on-failure words and "fresh" may also stand alone
// ("-- uplink: always best-effort"). An unknown word, a word given twice,
// a file that is neither .sql nor executable, or two files that give the
// same name: each is reported with its file, line and fix, all at once,
// and nothing runs.
//
// # When a task runs
//
//   - always: on every boot (and so every boot takes the lock).
//   - once: until it has succeeded once on this database.
//   - on-change: again whenever its content changed since it last
//     succeeded: the file's sha256, or the declared version when there is
//     one (so that a comment can change without a re-run).
//   - env: only when the boot's env (boot.Config.Env, UPLINK_ENV) is one
//     of those listed; otherwise skipped, and nothing is recorded.
//   - fresh: only on a fresh database, and then once. A boot finds the
//     database fresh when, before its migrating phase, none of the app's
//     migration lines (every line but Uplink's own, "uplink"; that one
//     when the app has none) had an applied migration in the history
//     table. It is judged by the history, not by looking at tables. When
//     several replicas boot a new database together, each may find it
//     fresh; the once-rule makes the task run on one of them.
//   - a task whose last attempt failed runs again on the next boot,
//     whatever its policy, until it succeeds (fresh included).
//
// Each run writes the task's row in the history table (line "tasks", key
// the task's name): outcome, attempts, duration, checksum, runner and,
// for a failure, the SQLSTATE and message. A SQL or Go task's row commits
// with its work, so a task is never recorded without its effects nor the
// reverse. A command (or a task with NoTransaction) is recorded after it
// ends: if the process dies in between, the next boot runs it again, so
// make those idempotent.
//
// # Timeouts
//
// At its timeout a SQL or Go task's running statement is cancelled with
// a cancel request, the session (and the lock) surviving, and its
// transaction rolls back; later statements of a Go task are refused. A
// command is sent SIGTERM, then SIGKILL 3s later, as a whole process
// group, so that what it started dies with it; whatever is left of its
// group when it exits is killed too.
//
// # Commands
//
// A command runs in its own process group, in its directory, with the
// process's environment plus DATABASE_URL, UPLINK_ENV, UPLINK_MODE,
// UPLINK_HTTP_ADDR, UPLINK_VERSION (set by boot), UPLINK_TASK and
// UPLINK_FRESH (true or false) for a task, UPLINK_HOOK and
// UPLINK_HOOK_STAGE for a hook. The end of its output (2 KiB) goes to
// /status, the log and, for a failure, the history row, with the
// database password hidden even where a script echoes it alone.
//
// # Hooks
//
// Post-start hooks run once, in order, after the first ready; pre-stop
// hooks run first when stopping, in order, within the shutdown budget,
// if the service got ready. A hook is a Go function, a command line
// (--post-start CMD, run by /bin/sh -c), or an executable in a hooks
// directory (--hooks DIR): DIR/post-start/* and DIR/pre-stop/*, whose
// only header word is "# uplink: timeout=DURATION" (default 30s). A
// failing hook — an exit status, a timeout, a command not found — shows
// in /status (check "hooks", warn) with its output tail and a hint; it
// never stops boot or the service.
package starttask
