package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/status"
)

func TestUpRecordsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	fsys := files(
		"001_users.sql", "CREATE TABLE users (id int PRIMARY KEY, name text);",
		"002_seed.up.sql", "INSERT INTO users VALUES (1, 'a');\nINSERT INTO users VALUES (2, 'b');",
		"002_seed.down.sql", "DELETE FROM users;",
	)
	m := e.app(migrate.Config{}, fsys)

	plan, err := m.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if steps := plan.Steps(); len(steps) != 2 || steps[0].Version != 1 || steps[1].Version != 2 {
		t.Fatalf("Plan steps = %+v", steps)
	}
	if e.tableExists("uplink.schema_history") {
		t.Fatal("Plan created the history table")
	}

	res, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 2 || !res.Locked {
		t.Fatalf("Up = %+v", res)
	}
	if n := scalar[int](e, "SELECT count(*)::int FROM users"); n != 2 {
		t.Fatalf("users = %d rows, want 2", n)
	}
	r := e.record("app", "2")
	if r.Outcome != migrate.OutcomeApplied || r.Version != 2 || r.Name != "seed" || r.Attempts != 1 ||
		r.Checksum != sum("INSERT INTO users VALUES (1, 'a');\nINSERT INTO users VALUES (2, 'b');") ||
		r.AppliedAt.IsZero() || r.Duration <= 0 || !strings.Contains(r.Runner, "uplink-migrate") {
		t.Errorf("history row = %+v", r)
	}
	host, _ := os.Hostname()
	if !strings.Contains(r.Runner, host) {
		t.Errorf("runner %q does not name the host %q", r.Runner, host)
	}

	// Again: nothing pending, so no lock and nothing run.
	res, err = m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || res.Locked {
		t.Fatalf("second Up = %+v, want nothing applied and no lock", res)
	}
	c := m.Check()
	if c.Status != status.Pass || c.Detail != "up to date" {
		t.Errorf("Check = %+v", c)
	}
	if b, _ := json.Marshal(c.Data["lines"]); string(b) != `[{"line":"app","current":2,"target":2}]` {
		t.Errorf("Check lines = %s", b)
	}

	rep, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := rep.Lines[0]; l.Current != 2 || l.Target != 2 || len(rep.Pending()) != 0 {
		t.Errorf("Status = %+v", rep.Lines)
	}

	// Down reverts the newest; DownTo 0 the rest.
	if res, err := m.Down(ctx, "app"); err != nil || len(res.Applied) != 1 || res.Applied[0].Version != 2 {
		t.Fatalf("Down = %+v, %v", res, err)
	}
	if n := scalar[int](e, "SELECT count(*)::int FROM users"); n != 0 || e.hasRecord("app", "2") {
		t.Fatalf("after Down: %d users, history row 2 present %v", n, e.hasRecord("app", "2"))
	}
	if b, _ := json.Marshal(m.Check().Data["lines"]); string(b) != `[{"line":"app","current":1,"target":2}]` {
		t.Errorf("Check lines after Down = %s", b)
	}
	_, err = m.DownTo(ctx, "app", 0)
	var ae *status.ActionError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "001_users.sql: app migration 1 has no down migration") {
		t.Fatalf("DownTo past a migration without down = %v", err)
	}
	if !e.tableExists("users") {
		t.Fatal("a refused DownTo changed the schema")
	}
}

func TestSyntaxErrorIsLocatedRecordedAndRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	broken := "CREATE TABLE ok (id int);\n\n-- a comma is missing on line 5\nINSERT INTO ok VALUES (1\n  2);\nCREATE TABLE never (id int);\n"
	m := e.app(migrate.Config{}, files("001_first.sql", "CREATE TABLE first (id int);", "002_broken.sql", broken))

	res, err := m.Up(ctx)
	var pe *migrate.PartialError
	if !errors.As(err, &pe) || len(pe.Result.Applied) != 1 || len(res.Applied) != 1 {
		t.Fatalf("Up = %+v, %v; want a PartialError after 1 migration", res, err)
	}
	var me *migrate.MigrationError
	if !errors.As(err, &me) {
		t.Fatalf("no MigrationError in %v", err)
	}
	want := migrate.MigrationError{Line: "app", Version: 2, Name: "broken", Direction: migrate.DirUp, File: "002_broken.sql",
		Statement: 2, Statements: 3, FileLine: 5, FileCol: 3, SQLState: "42601", Message: `syntax error at or near "2"`}
	got := *me
	got.Err = nil
	if got.Line != want.Line || got.Version != want.Version || got.Name != want.Name || got.File != want.File ||
		got.Statement != want.Statement || got.Statements != want.Statements || got.FileLine != want.FileLine ||
		got.FileCol != want.FileCol || got.SQLState != want.SQLState || got.Message != want.Message {
		t.Errorf("MigrationError = %+v\nwant %+v", got, want)
	}
	if !strings.HasPrefix(err.Error(), `002_broken.sql:5:3: app migration 2 (broken), statement 2 of 3: syntax error at or near "2" (SQLSTATE 42601)`) {
		t.Errorf("error text = %s", err)
	}
	if !status.IsAction(err) || !strings.Contains(status.HintOf(err), "fix 002_broken.sql and run again (restart); the failure is recorded in uplink.schema_history") {
		t.Errorf("not an ActionError with a hint: %v (hint %q)", err, status.HintOf(err))
	}
	if e.tableExists("ok") {
		t.Error("statement 1 of the failed migration was not rolled back")
	}
	r := e.record("app", "2")
	if r.Outcome != migrate.OutcomeFailed || r.FailedStatement != 2 || r.SQLState != "42601" ||
		!strings.Contains(r.Message, "syntax error") || r.Attempts != 1 || !r.AppliedAt.IsZero() {
		t.Errorf("failure row = %+v", r)
	}
	c := m.Check()
	if c.Status != status.Fail || !strings.Contains(c.LastError, "42601") || c.Hint == "" || c.Detail != "failed: app 0002_broken" {
		t.Errorf("Check after failure = %+v", c)
	}
	rep, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Lines[0].Entries[1].State; s != migrate.StateFailed {
		t.Errorf("Status state = %s, want failed", s)
	}

	// Fixed file: the next run retries, no force needed.
	fixed := strings.Replace(broken, "(1\n  2)", "(1\n  )", 1)
	m = e.app(migrate.Config{}, files("001_first.sql", "CREATE TABLE first (id int);", "002_broken.sql", fixed))
	res, err = m.Up(ctx)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Attempt != 2 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	r = e.record("app", "2")
	if r.Outcome != migrate.OutcomeApplied || r.Attempts != 2 || r.FailedStatement != 0 || r.SQLState != "" || r.Message != "" {
		t.Errorf("row after retry = %+v", r)
	}
	if !e.tableExists("never") {
		t.Error("retry did not run the whole migration")
	}
	if c := m.Check(); c.Status != status.Pass || c.LastError != "" {
		t.Errorf("Check after retry = %+v", c)
	}
}

func TestChecksumDriftAndAccept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	v1 := "CREATE TABLE t (id int);"
	if _, err := e.app(migrate.Config{}, files("001_t.sql", v1)).Up(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := "-- now with a comment\nCREATE TABLE t (id int);"
	m := e.app(migrate.Config{}, files("001_t.sql", v2, "002_u.sql", "CREATE TABLE u (id int);"))
	_, err := m.Up(ctx)
	var de *migrate.DriftError
	if !errors.As(err, &de) || de.File != "001_t.sql" || de.Recorded != sum(v1) || de.Current != sum(v2) {
		t.Fatalf("Up on a changed file = %v", err)
	}
	for _, want := range []string{"001_t.sql", sum(v1), sum(v2)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("drift error lacks %q: %v", want, err)
		}
	}
	if !status.IsAction(err) || !strings.Contains(status.HintOf(err), "uplink migrate accept --line app 1") {
		t.Errorf("drift hint = %q", status.HintOf(err))
	}
	if e.tableExists("u") {
		t.Fatal("Up ran migrations despite drift")
	}
	if _, err := m.Plan(ctx); !errors.As(err, &de) {
		t.Errorf("Plan does not report the drift: %v", err)
	}
	if c := m.Check(); c.Status != status.Fail || c.Detail != "refused: app migration 1 changed after it was applied" {
		t.Errorf("Check after refusal = %+v", c)
	}
	if err := m.Accept(ctx, "app", 1); err != nil {
		t.Fatal(err)
	}
	if r := e.record("app", "1"); r.Checksum != sum(v2) || r.AppliedAt.IsZero() {
		t.Errorf("row after Accept = %+v", r)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("Up after Accept: %v", err)
	}
	if !e.tableExists("u") {
		t.Fatal("migration 2 not applied after Accept")
	}
	if err := m.Accept(ctx, "app", 3); err == nil || !status.IsAction(err) {
		t.Errorf("Accept of an unknown version = %v", err)
	}
}

func TestOutOfOrderRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	if _, err := e.app(migrate.Config{}, files("001_a.sql", "CREATE TABLE a ();", "003_c.sql", "CREATE TABLE c ();")).Up(ctx); err != nil {
		t.Fatal(err)
	}
	late := files("001_a.sql", "CREATE TABLE a ();", "002_b.sql", "CREATE TABLE b ();", "003_c.sql", "CREATE TABLE c ();",
		"004_d.sql", "CREATE TABLE d ();")
	_, err := e.app(migrate.Config{}, late).Up(ctx)
	var oe *migrate.OutOfOrderError
	if !errors.As(err, &oe) || oe.Newest != 3 || len(oe.Pending) != 1 || oe.Pending[0].Version != 2 {
		t.Fatalf("Up with an older pending migration = %v", err)
	}
	if !strings.Contains(err.Error(), "002_b.sql") || !status.IsAction(err) {
		t.Errorf("error does not list the file or is not an ActionError: %v", err)
	}
	if e.tableExists("b") || e.tableExists("d") {
		t.Fatal("Up ran migrations despite the refusal")
	}
	res, err := e.app(migrate.Config{AllowOutOfOrder: true}, late).Up(ctx)
	if err != nil || len(res.Applied) != 2 || res.Applied[0].Version != 2 || res.Applied[1].Version != 4 {
		t.Fatalf("Up with AllowOutOfOrder = %+v, %v", res, err)
	}
}

func TestDatabaseAheadIsReportedNotRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	newer := files("001_a.sql", "CREATE TABLE a ();", "002_b.sql", "CREATE TABLE b ();")
	if _, err := e.app(migrate.Config{}, newer).Up(ctx); err != nil {
		t.Fatal(err)
	}
	older := e.app(migrate.Config{}, files("001_a.sql", "CREATE TABLE a ();"))
	res, err := older.Up(ctx)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("older binary Up = %+v, %v", res, err)
	}
	rep, err := older.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Lines[0]
	if l.Current != 2 || l.Target != 1 || len(l.Entries) != 2 || l.Entries[1].State != migrate.StateUnknown || l.Entries[1].Name != "b" {
		t.Fatalf("Status = %+v", l)
	}
	if _, err := older.Down(ctx, "app"); err == nil || !strings.Contains(err.Error(), "unknown to this binary") {
		t.Errorf("Down of an unknown migration = %v", err)
	}
}

func TestSessionSettingsDoNotLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	e.exec("CREATE ROLE leaky_role")
	e.exec("CREATE SCHEMA elsewhere")
	type seen struct {
		searchPath, role, lockTimeout, stmtTimeout, checkInterval, workMem string
		temp                                                               bool
	}
	var got []seen
	look := func(ctx context.Context, db migrate.DB) error {
		var s seen
		err := db.QueryRow(ctx, `SELECT current_setting('search_path'), current_user, current_setting('lock_timeout'),
			current_setting('statement_timeout'), current_setting('client_connection_check_interval'),
			current_setting('work_mem'), to_regclass('pg_temp.scratch') IS NOT NULL`).
			Scan(&s.searchPath, &s.role, &s.lockTimeout, &s.stmtTimeout, &s.checkInterval, &s.workMem, &s.temp)
		got = append(got, s)
		return err
	}
	migs := load(t, files(
		"001_dirty.sql", "SET search_path = elsewhere;\nSET work_mem = '7MB';\nCREATE TEMP TABLE scratch (x int);\nSET ROLE leaky_role;",
		"003_dirty_notx.sql", "-- migrate:up transaction:false\nSET search_path = elsewhere;\nSET lock_timeout = '1min';\nCREATE TEMP TABLE scratch (x int);",
	))
	migs = append(migs,
		migrate.GoMigration(2, "look", look, nil),
		migrate.GoMigration(4, "look_again", look, nil),
		migrate.GoMigration(5, "look_notx", look, nil, migrate.WithoutTransaction()))
	m := e.migrator(migrate.Config{LockTimeout: 1500 * time.Millisecond, StatementTimeout: 42 * time.Second},
		migrate.Line{Name: "app", Migrations: migs})
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	want := seen{searchPath: `"$user", public`, role: "postgres", lockTimeout: "1500ms", stmtTimeout: "42s", checkInterval: "2s", workMem: "4MB"}
	if len(got) != 3 {
		t.Fatalf("Go migrations ran %d times, want 3", len(got))
	}
	for i, s := range got {
		if s != want {
			t.Errorf("migration %d saw %+v, want %+v", i, s, want)
		}
	}
}

func TestLockTimeoutIsTemporary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	e.exec("CREATE TABLE busy (id int)")
	blocker := connect(t, e.url)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE busy IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	fsys := files("001_alter.sql", "ALTER TABLE busy ADD COLUMN x int;")
	start := time.Now()
	_, err = e.app(migrate.Config{LockTimeout: 200 * time.Millisecond}, fsys).Up(ctx)
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.SQLState != "55P03" || !me.Temporary() {
		t.Fatalf("Up behind a lock = %v", err)
	}
	if status.IsAction(err) {
		t.Errorf("a lock timeout needs no person, but is an ActionError: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("lock_timeout 200ms took %s", d)
	}
	if r := e.record("app", "1"); r.Outcome != migrate.OutcomeFailed || r.SQLState != "55P03" {
		t.Errorf("row = %+v", r)
	}
	tx.Rollback(ctx)
	if _, err := e.app(migrate.Config{LockTimeout: 200 * time.Millisecond}, fsys).Up(ctx); err != nil {
		t.Fatalf("retry after the lock went: %v", err)
	}
}

func TestGoMigrationsGetTheLockedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	var lockedPID uint32
	var kinds []string
	kind := func(db migrate.DB) string {
		switch db.(type) {
		case pgx.Tx:
			return "tx"
		case *pgx.Conn:
			return "conn"
		}
		return "other"
	}
	pid := func(ctx context.Context, db migrate.DB) uint32 {
		var p uint32
		db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p)
		return p
	}
	m := e.migrator(migrate.Config{}, migrate.Line{Name: "app", Migrations: []*migrate.Migration{
		migrate.GoMigration(1, "tx", func(ctx context.Context, db migrate.DB) error {
			kinds = append(kinds, kind(db))
			lockedPID = pid(ctx, db)
			_, err := db.Exec(ctx, "CREATE TABLE from_go (id int)")
			return err
		}, nil),
		migrate.GoMigration(2, "fails", func(ctx context.Context, db migrate.DB) error {
			kinds = append(kinds, kind(db))
			if p := pid(ctx, db); p != lockedPID {
				t.Errorf("migration 2 ran on pid %d, migration 1 on %d", p, lockedPID)
			}
			if _, err := db.Exec(ctx, "CREATE TABLE rolled_back (id int)"); err != nil {
				return err
			}
			return errors.New("refusing on purpose")
		}, nil),
	}})
	_, err := m.Up(ctx)
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.Version != 2 || !strings.Contains(me.Message, "refusing on purpose") || !status.IsAction(err) {
		t.Fatalf("Up = %v", err)
	}
	if strings.Join(kinds, ",") != "tx,tx" {
		t.Errorf("Go migrations got %v, want tx,tx", kinds)
	}
	if !e.tableExists("from_go") || e.tableExists("rolled_back") {
		t.Error("Go migration 1 not committed, or the failing 2 not rolled back")
	}
	if r := e.record("app", "2"); r.Outcome != migrate.OutcomeFailed || r.FailedStatement != 1 {
		t.Errorf("row = %+v", r)
	}
}

func TestLinesRunInOrderAndTasksShareTheTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	var order []string
	step := func(name string) migrate.GoFunc {
		return func(ctx context.Context, db migrate.DB) error { order = append(order, name); return nil }
	}
	m := e.migrator(migrate.Config{Schema: "meta", Table: "history"},
		migrate.Line{Name: "uplink", Migrations: []*migrate.Migration{migrate.GoMigration(2, "u2", step("uplink 2"), nil), migrate.GoMigration(1, "u1", step("uplink 1"), nil)}},
		migrate.Line{Name: "app", Migrations: []*migrate.Migration{migrate.GoMigration(1, "a1", step("app 1"), nil)}},
	)
	if _, err := m.UpTo(ctx, "uplink", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ", "); got != "uplink 1, uplink 2, app 1" {
		t.Errorf("order = %s", got)
	}
	if !e.tableExists("meta.history") || e.tableExists("uplink.schema_history") {
		t.Error("history table not where Config put it")
	}

	// A startup task: its own line, keyed by name, under the same lock.
	h := m.History()
	err := m.WithLock(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		var held bool
		if err := conn.QueryRow(ctx, `SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()`).Scan(&held); err != nil || !held {
			t.Errorf("WithLock: lock held on this session = %v, %v", held, err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "CREATE TABLE seeded (id int)"); err != nil {
			return err
		}
		if err := h.Put(ctx, tx, migrate.Record{Line: "tasks", Key: "seed-demo", Name: "seed-demo", Checksum: "abc",
			Outcome: migrate.OutcomeApplied, Attempts: 1, Duration: 1500 * time.Millisecond, Runner: "test",
			Message: `it's a \ and a '' and a \'`}); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := h.Records(ctx, e.db, "tasks")
	if err != nil || len(recs) != 1 {
		t.Fatalf("tasks records = %+v, %v", recs, err)
	}
	if r := recs[0]; r.Key != "seed-demo" || r.Version != 0 || r.Duration != 1500*time.Millisecond || r.AppliedAt.IsZero() || r.Checksum != "abc" ||
		r.Message != `it's a \ and a '' and a \'` {
		t.Errorf("task row = %+v", r)
	}
	if e.advisoryLocks() != 0 {
		t.Error("WithLock left the lock held")
	}
	rep, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Lines {
		if l.Line == "tasks" {
			t.Error("Status reports the tasks line as migrations")
		}
	}
	if _, err := m.UpTo(ctx, "nope", 1); err == nil {
		t.Error("UpTo of an unknown line succeeded")
	}
}

// A fresh database must not start its life with errors in the server's
// log: reading a history table that does not exist yet is asked about
// first, not tried and failed.
func TestFreshDatabaseLogsNoErrors(t *testing.T) {
	srv := pgtest.Start(t)
	e := &env{t: t, url: srv.URL("postgres")}
	e.db = connect(t, e.url)
	m := e.app(migrate.Config{}, files("0001_a.sql", "CREATE TABLE a (id int);"))
	ctx := testContext(t)
	if _, err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Plan(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(srv.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "ERROR:") {
			t.Errorf("server log: %s", line)
		}
	}
}

// Load only lists files; a run reads them, and refuses before running
// anything when one it needs cannot be read or one it would run does not
// parse.
func TestRunChecksFilesBeforeRunningAnything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	fsys := files(
		"001_a.sql", "CREATE TABLE a (id int);",
		"002_b.sql", "-- +goose Up\nCREATE TABLE b (id int)", // no ';' at the end
	)
	m := e.app(migrate.Config{}, fsys)
	_, err := m.Up(ctx)
	if err == nil || !status.IsAction(err) || !strings.Contains(err.Error(), "002_b.sql:2: statement does not end with ';'") {
		t.Fatalf("Up with a malformed pending file = %v", err)
	}
	if e.tableExists("a") {
		t.Error("Up ran migration 1 before refusing migration 2")
	}
	if _, err := m.Plan(ctx); err == nil || !strings.Contains(err.Error(), "002_b.sql:2") {
		t.Errorf("Plan = %v, want the same refusal", err)
	}

	fsys["002_b.sql"].Data = []byte("CREATE TABLE b (id int);")
	if _, err := e.app(migrate.Config{}, fsys).Up(ctx); err != nil {
		t.Fatal(err)
	}
	m = e.app(migrate.Config{}, fsys)
	delete(fsys, "001_a.sql") // applied, listed, then unreadable: its checksum cannot be checked
	_, err = m.Up(ctx)
	if err == nil || !status.IsAction(err) || !strings.Contains(err.Error(), "001_a.sql: open 001_a.sql: file does not exist") {
		t.Fatalf("Up with an unreadable applied file = %v", err)
	}
}

// A Go migration that commits its own transaction cannot get its history
// row written apart from its work (what it committed stays committed):
// the write fails, and the migration is recorded as failed.
func TestMigrationThatEndsItsTransactionIsNotRecordedApplied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	m := e.migrator(migrate.Config{}, migrate.Line{Name: "app", Migrations: []*migrate.Migration{
		migrate.GoMigration(1, "commits", func(ctx context.Context, db migrate.DB) error {
			_, err := db.Exec(ctx, "CREATE TABLE early (id int); COMMIT")
			return err
		}, nil),
	}})
	_, err := m.Up(ctx)
	var me *migrate.MigrationError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "the migration ended its transaction") {
		t.Fatalf("Up = %v", err)
	}
	if r := e.record("app", "1"); r.Outcome != migrate.OutcomeFailed {
		t.Errorf("row = %+v, want failed", r)
	}
}

// A migration's history row says how long it ran, though the row is
// queued with the migration, before it runs.
func TestHistoryDurationIsTheMigrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	if _, err := e.app(migrate.Config{}, files("001_slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(0.2);")).Up(ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.record("app", "1").Duration; d < 200*time.Millisecond || d > 10*time.Second {
		t.Errorf("recorded duration %v; the migration slept 200ms", d)
	}
}
