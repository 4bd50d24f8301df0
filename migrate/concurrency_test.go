package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/pglock"
	"github.com/uplinkhq/uplink/status"
)

// writeDir writes migration files to a fresh directory for child processes.
func writeDir(t *testing.T, kv ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := os.WriteFile(filepath.Join(dir, kv[i]), []byte(kv[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// child is one replica process: the test binary running childMain.
type child struct {
	cmd    *exec.Cmd
	stdout lockedWriter
	stderr lockedWriter
	exited chan struct{}
	err    error // valid once exited is closed
}

func startChild(t *testing.T, url, dir, app string, onStderr func(string)) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0]), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childEnv+"=1", childURL+"="+url, childDir+"="+dir, childApp+"="+app)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	c.stderr.on = onStderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", app, c.stderr.String())
		}
	})
	return c
}

func (c *child) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-c.exited:
		return c.err
	case <-time.After(limit):
		t.Fatalf("process did not exit within %s; stderr:\n%s", limit, c.stderr.String())
		return nil
	}
}

// effects counts each version's side effects: "1:1 2:1 ...".
func (e *env) effects() string {
	e.t.Helper()
	return scalar[string](e, `SELECT coalesce(string_agg(version || ':' || n, ' ' ORDER BY version), '')
		FROM (SELECT version, count(*) AS n FROM effects GROUP BY version) x`)
}

func TestTenProcessesApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kv := []string{
		"001_effects.sql", "CREATE TABLE effects (version int NOT NULL, runner text NOT NULL DEFAULT current_setting('application_name'));\n" +
			"CREATE TABLE items (id int PRIMARY KEY);\nINSERT INTO effects (version) VALUES (1);",
		"005_slow.sql", "CREATE TABLE t5 (id int);\nSELECT pg_sleep(0.2);\nINSERT INTO effects (version) VALUES (5);",
		"008_index.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY items_idx ON items (id);\nINSERT INTO effects (version) VALUES (8);\n",
		"009_pair.up.sql", "CREATE TABLE t9 (id int);\nINSERT INTO effects (version) VALUES (9);",
		"009_pair.down.sql", "DROP TABLE t9;",
		"010_dbmate.sql", "-- migrate:up\nCREATE TABLE t10 (id int);\nINSERT INTO effects (version) VALUES (10);\n-- migrate:down\nDROP TABLE t10;\n",
	}
	for _, v := range []int{2, 3, 4, 6, 7} {
		kv = append(kv, fmt.Sprintf("%03d_step.sql", v), fmt.Sprintf("CREATE TABLE t%d (id int);\nINSERT INTO effects (version) VALUES (%d);", v, v))
	}
	dir := writeDir(t, kv...)
	const n = 10
	children := make([]*child, n)
	for i := range children {
		children[i] = startChild(t, e.url, dir, fmt.Sprintf("replica-%d", i), nil)
	}
	applied := 0
	for i, c := range children {
		if err := c.wait(t, 60*time.Second); err != nil {
			t.Errorf("replica %d: %v\n%s", i, err, c.stderr.String())
		}
		var a int
		var locked bool
		fmt.Sscanf(c.stdout.String(), "applied %d locked %v", &a, &locked)
		applied += a
	}
	if applied != 10 {
		t.Errorf("replicas applied %d migrations in all, want 10", applied)
	}
	if got, want := e.effects(), "1:1 2:1 3:1 4:1 5:1 6:1 7:1 8:1 9:1 10:1"; got != want {
		t.Errorf("side effects = %q, want %q", got, want)
	}
	if got := scalar[string](e, `SELECT string_agg(outcome || '/' || attempts, ',') FROM uplink.schema_history`); got != strings.TrimSuffix(strings.Repeat("applied/1,", 10), ",") {
		t.Errorf("history = %s", got)
	}
	if e.advisoryLocks() != 0 {
		t.Error("a lock is left after every replica exited")
	}
}

func TestKilledHolderIsTakenOverWithoutPartialSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := writeDir(t,
		"001_effects.sql", "CREATE TABLE effects (version int NOT NULL);\nINSERT INTO effects VALUES (1);",
		// Only the victim sleeps: the survivor must not wait out 60 s.
		"002_slow.sql", "CREATE TABLE partial (id int);\nINSERT INTO effects VALUES (2);\n"+
			"SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'victim' THEN 60 ELSE 0 END);",
		"003_after.sql", "INSERT INTO effects VALUES (3);",
	)
	victim := startChild(t, e.url, dir, "victim", nil)
	testutil.Eventually(t, "the victim to sleep in migration 2", 30*time.Second, func() bool {
		return scalar[bool](e, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'victim'
			AND state = 'active' AND query LIKE '%pg_sleep%')`)
	})
	if e.tableExists("partial") {
		t.Fatal("migration 2's table is visible before it committed")
	}
	waiting := make(chan struct{})
	var once sync.Once
	survivor := startChild(t, e.url, dir, "survivor", func(s string) {
		if strings.Contains(s, childSignal) {
			once.Do(func() { close(waiting) })
		}
	})
	select {
	case <-waiting:
	case <-survivor.exited:
		t.Fatalf("survivor exited before waiting: %v\n%s", survivor.err, survivor.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("survivor never waited for the lock:\n%s", survivor.stderr.String())
	}

	killed := time.Now()
	victim.cmd.Process.Kill() // SIGKILL: no cleanup, the socket just closes
	if err := survivor.wait(t, 30*time.Second); err != nil {
		t.Fatalf("survivor: %v\n%s", err, survivor.stderr.String())
	}
	// PostgreSQL notices the dead client within client_connection_check_interval
	// (2 s) instead of when its 60 s sleep ends.
	if d := time.Since(killed); d > 20*time.Second {
		t.Errorf("takeover took %s after the kill", d)
	}
	if got := e.effects(); got != "1:1 2:1 3:1" {
		t.Errorf("side effects = %q, want each migration once", got)
	}
	r := e.record("app", "2")
	if r.Outcome != migrate.OutcomeApplied || r.Attempts != 1 || !strings.Contains(r.Runner, "app survivor") {
		t.Errorf("row 2 = %+v, want applied once by the survivor", r)
	}
}

func TestTerminatedHolderRollsBackAndRecordsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	started := make(chan uint32, 1)
	slow := func(ctx context.Context, db migrate.DB) error {
		if _, err := db.Exec(ctx, "CREATE TABLE half (id int)"); err != nil {
			return err
		}
		var pid uint32
		if err := db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return err
		}
		started <- pid
		_, err := db.Exec(ctx, "SELECT pg_sleep(60)")
		return err
	}
	first := migrate.GoMigration(1, "first", func(ctx context.Context, db migrate.DB) error {
		_, err := db.Exec(ctx, "CREATE TABLE first (id int)")
		return err
	}, nil)
	m := e.migrator(migrate.Config{}, migrate.Line{Name: "app", Migrations: []*migrate.Migration{first, migrate.GoMigration(2, "slow", slow, nil)}})
	done := make(chan error, 1)
	go func() {
		_, err := m.Up(ctx)
		done <- err
	}()
	pid := <-started
	if e.advisoryLocks() != 1 {
		t.Fatal("no lock held while migrating")
	}
	e.exec("SELECT pg_terminate_backend($1)", int64(pid))
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Up did not return after its session was terminated")
	}
	var pe *migrate.PartialError
	var me *migrate.MigrationError
	if !errors.As(err, &pe) || len(pe.Result.Applied) != 1 || !errors.As(err, &me) || me.Version != 2 || !me.Temporary() {
		t.Fatalf("Up = %v", err)
	}
	if status.IsAction(err) {
		t.Errorf("a lost session is retried, not a person's problem: %v", err)
	}
	if e.tableExists("half") {
		t.Error("migration 2's table survived its session")
	}
	if e.hasRecord("app", "2") {
		t.Errorf("migration 2 recorded: %+v", e.record("app", "2"))
	}
	if r := e.record("app", "1"); r.Outcome != migrate.OutcomeApplied {
		t.Errorf("row 1 = %+v", r)
	}
	// The terminated backend tells the client before it has finished
	// exiting, and it drops its locks on the way out.
	testutil.Eventually(t, "the terminated session's lock to go", 10*time.Second, func() bool { return e.advisoryLocks() == 0 })
	fast := migrate.GoMigration(2, "slow", func(ctx context.Context, db migrate.DB) error {
		_, err := db.Exec(ctx, "CREATE TABLE half (id int)")
		return err
	}, nil)
	m = e.migrator(migrate.Config{}, migrate.Line{Name: "app", Migrations: []*migrate.Migration{first, fast}})
	if res, err := m.Up(ctx); err != nil || len(res.Applied) != 1 {
		t.Fatalf("next Up = %+v, %v", res, err)
	}
}

func TestCancelWhileWaitingReturnsPromptlyHoldingNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	holder := connect(t, e.url)
	lock, err := pglock.Acquire(ctx, holder, pglock.Key(e.dbName(), migrate.DefaultSchema, migrate.DefaultTable), pglock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	var once sync.Once
	m := e.app(migrate.Config{Lock: pglock.Options{OnWait: func(pglock.Wait) { once.Do(func() { close(waiting) }) }}},
		files("001_a.sql", "CREATE TABLE a ();"))
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := m.Up(upCtx)
		done <- err
	}()
	<-waiting
	c := m.Check()
	want := fmt.Sprintf("waiting for lock held by pid %d (", holder.PgConn().PID())
	if !strings.HasPrefix(c.Detail, want) || c.Data["lock_holder"] == nil || c.Data["state"] != "waiting" {
		t.Errorf("Check while waiting = %+v, want detail %q...", c, want)
	}
	cancelled := time.Now()
	cancel()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Up did not return after cancel")
	}
	if d := time.Since(cancelled); d > time.Second {
		t.Errorf("Up returned %s after cancel, want < 1s", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Up = %v, want context.Canceled", err)
	}
	if n := e.advisoryLocks(); n != 1 {
		t.Errorf("%d advisory locks held, want only the holder's", n)
	}
	if e.tableExists("a") {
		t.Error("cancelled Up ran a migration")
	}
	lock.Release(ctx)
}

func TestConcurrentIndexBuildsWhileWaitersWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	entered := make(chan uint32, 1)
	release := make(chan struct{})
	var builds atomic.Int32
	build := func(ctx context.Context, db migrate.DB) error {
		conn, ok := db.(*pgx.Conn)
		if !ok {
			return fmt.Errorf("no-transaction Go migration got %T, want *pgx.Conn", db)
		}
		entered <- conn.PgConn().PID()
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		builds.Add(1)
		_, err := conn.Exec(ctx, "CREATE INDEX CONCURRENTLY big_x ON big (x)")
		return err
	}
	line := migrate.Line{Name: "app", Migrations: []*migrate.Migration{
		migrate.GoMigration(1, "big", func(ctx context.Context, db migrate.DB) error {
			_, err := db.Exec(ctx, "CREATE TABLE big (x int); INSERT INTO big SELECT generate_series(1, 20000)")
			return err
		}, nil),
		migrate.GoMigration(2, "index", build, nil, migrate.WithoutTransaction()),
	}}
	type outcome struct {
		res *migrate.Result
		err error
	}
	run := func(m *migrate.Migrator, out chan<- outcome) {
		res, err := m.Up(ctx)
		out <- outcome{res, err}
	}
	holder := e.migrator(migrate.Config{}, line)
	holderDone := make(chan outcome, 1)
	go run(holder, holderDone)
	pid := <-entered
	if d := holder.Check().Detail; d != "applying app 0002_index (2/2)" {
		t.Errorf("holder Check detail = %q", d)
	}

	const n = 5
	waiters := make([]*migrate.Migrator, n)
	waitersDone := make(chan outcome, n)
	for i := range waiters {
		waiters[i] = e.migrator(migrate.Config{}, line)
		go run(waiters[i], waitersDone)
	}
	testutil.Eventually(t, "5 waiters", 30*time.Second, func() bool {
		for _, w := range waiters {
			if w.Check().Data["state"] != "waiting" {
				return false
			}
		}
		return true
	})
	for _, w := range waiters {
		if d := w.Check().Detail; !strings.HasPrefix(d, fmt.Sprintf("waiting for lock held by pid %d ", pid)) {
			t.Errorf("waiter detail = %q, want the holder's pid %d", d, pid)
		}
	}
	close(release) // the index builds now, with 5 sessions polling for the lock

	select {
	case o := <-holderDone:
		if o.err != nil || len(o.res.Applied) != 2 {
			t.Fatalf("holder = %+v, %v", o.res, o.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("CREATE INDEX CONCURRENTLY did not finish while waiters waited")
	}
	for range n {
		// A waiter finds nothing left, with the lock (it took it first)
		// or without (another waiter had it when it looked again).
		o := <-waitersDone
		if o.err != nil || len(o.res.Applied) != 0 {
			t.Errorf("waiter = %+v, %v; want nothing applied", o.res, o.err)
		}
	}
	if builds.Load() != 1 {
		t.Errorf("the index migration ran %d times", builds.Load())
	}
	if !scalar[bool](e, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_x'::regclass") {
		t.Error("index big_x not valid")
	}
}

// TestConcurrentIndexBuildWhileWaiterProcessesWait is the test
// with real processes: a holder process applies a no-transaction
// migration's CREATE INDEX CONCURRENTLY while five other processes wait
// for the lock. The index build waits for every transaction that holds a
// snapshot, so it finishes only because waiting holds none. The holder is
// held at a gate (an advisory lock of the test's session, taken and
// released by the migration's first statements) until all five report
// that they wait.
func TestConcurrentIndexBuildWhileWaiterProcessesWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const gate = 424242
	dir := writeDir(t,
		"001_big.sql", "CREATE TABLE effects (version int NOT NULL);\n"+
			"CREATE TABLE big (x int);\nINSERT INTO big SELECT generate_series(1, 20000);\nINSERT INTO effects VALUES (1);",
		"002_index.sql", fmt.Sprintf("-- +goose NO TRANSACTION\n-- +goose Up\n"+
			"SELECT pg_advisory_lock(%d);\nSELECT pg_advisory_unlock(%d);\n"+
			"CREATE INDEX CONCURRENTLY big_x ON big (x);\nINSERT INTO effects VALUES (2);\n", gate, gate),
	)
	scalar[string](e, fmt.Sprintf("SELECT pg_advisory_lock(%d)::text", gate))
	holder := startChild(t, e.url, dir, "holder", nil)
	testutil.Eventually(t, "the holder at the gate", 30*time.Second, func() bool {
		return scalar[bool](e, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'holder'
			AND wait_event_type = 'Lock' AND wait_event = 'advisory')`)
	})

	const n = 5
	var waitingN atomic.Int32
	waiters := make([]*child, n)
	for i := range waiters {
		var once sync.Once
		waiters[i] = startChild(t, e.url, dir, fmt.Sprintf("waiter-%d", i), func(s string) {
			if strings.Contains(s, childSignal) {
				once.Do(func() { waitingN.Add(1) })
			}
		})
	}
	testutil.Eventually(t, "5 waiter processes waiting", 30*time.Second, func() bool { return waitingN.Load() == n })
	if held := scalar[int](e, `SELECT count(*)::int FROM pg_stat_activity
		WHERE application_name LIKE 'waiter-%' AND (backend_xmin IS NOT NULL OR state LIKE 'idle in transaction%')`); held != 0 {
		t.Errorf("%d waiting sessions hold a snapshot or a transaction", held)
	}
	scalar[string](e, fmt.Sprintf("SELECT pg_advisory_unlock(%d)::text", gate)) // the index builds now

	if err := holder.wait(t, 30*time.Second); err != nil {
		t.Fatalf("holder: %v\n%s", err, holder.stderr.String())
	}
	if got := strings.TrimSpace(holder.stdout.String()); got != "applied 2 locked true" {
		t.Errorf("holder: %q, want both migrations applied under the lock", got)
	}
	for i, w := range waiters {
		if err := w.wait(t, 30*time.Second); err != nil {
			t.Errorf("waiter %d: %v\n%s", i, err, w.stderr.String())
		}
		if got := w.stdout.String(); !strings.HasPrefix(got, "applied 0 ") {
			t.Errorf("waiter %d: %q, want nothing applied", i, got)
		}
	}
	if got := e.effects(); got != "1:1 2:1" {
		t.Errorf("side effects = %q, want each migration once", got)
	}
	if !scalar[bool](e, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_x'::regclass") {
		t.Error("index big_x not valid")
	}
	if e.advisoryLocks() != 0 {
		t.Error("a lock is left after every process exited")
	}
}

// A waiter that finds the work done when the lock changes hands leaves
// without taking the lock: here the lock passes from the migrating
// holder straight to the test's session, queued behind it, so the waiter,
// woken by the release, can only learn from the history that nothing is
// left. Its back-off is a minute: the release's NOTIFY wakes it.
func TestWaiterLeavesWithoutLockWhenWorkIsDone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	started, release := make(chan struct{}), make(chan struct{})
	line := migrate.Line{Name: "app", Migrations: []*migrate.Migration{
		migrate.GoMigration(1, "slow", func(ctx context.Context, db migrate.DB) error {
			close(started)
			<-release
			_, err := db.Exec(ctx, "CREATE TABLE slow (id int)")
			return err
		}, nil),
	}}
	type outcome struct {
		res *migrate.Result
		err error
	}
	holderDone := make(chan outcome, 1)
	go func() {
		res, err := e.migrator(migrate.Config{}, line).Up(ctx)
		holderDone <- outcome{res, err}
	}()
	<-started

	waiter := e.migrator(migrate.Config{Lock: pglock.Options{MinBackoff: time.Minute, MaxBackoff: time.Minute}}, line)
	waiterDone := make(chan outcome, 1)
	go func() {
		res, err := waiter.Up(ctx)
		waiterDone <- outcome{res, err}
	}()
	testutil.Eventually(t, "the waiter to wait", 30*time.Second, func() bool { return waiter.Check().Data["state"] == "waiting" })

	queued := connect(t, e.url)
	key := pglock.Key(e.dbName(), migrate.DefaultSchema, migrate.DefaultTable)
	granted := make(chan error, 1)
	go func() {
		_, err := queued.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		granted <- err
	}()
	testutil.Eventually(t, "the test's session to queue for the lock", 30*time.Second, func() bool {
		return scalar[bool](e, `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1)`,
			int64(queued.PgConn().PID()))
	})
	released := time.Now()
	close(release)
	if o := <-holderDone; o.err != nil || len(o.res.Applied) != 1 || !o.res.Locked {
		t.Fatalf("holder = %+v, %v", o.res, o.err)
	}
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-waiterDone:
		if o.err != nil || len(o.res.Applied) != 0 || o.res.Locked {
			t.Errorf("waiter = %+v, %v; want nothing applied and no lock taken", o.res, o.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiter did not leave while the lock was held by another session")
	}
	if d := time.Since(released); d > 10*time.Second {
		t.Errorf("the waiter left %s after the release; the NOTIFY should wake it at once", d)
	}
	if c := waiter.Check(); c.Data["state"] != "done" || c.Detail != "up to date" {
		t.Errorf("waiter Check = %+v", c)
	}
	if _, err := queued.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		t.Fatal(err)
	}
}
