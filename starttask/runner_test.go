package starttask_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/pglock"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

// testDB is a fresh database with an effects table that tasks write to,
// so that tests count what tasks did, not only history rows.
type testDB struct {
	t   *testing.T
	url string
	cc  *pgx.ConnConfig
}

func newTestDB(t *testing.T) *testDB {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := &testDB{t: t, url: url, cc: cc}
	db.exec("CREATE TABLE effects (task text, at timestamptz DEFAULT now())")
	return db
}

func (db *testDB) conn() *pgx.Conn {
	db.t.Helper()
	conn, err := pgx.Connect(context.Background(), db.url)
	if err != nil {
		db.t.Fatal(err)
	}
	db.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (db *testDB) exec(sql string) {
	db.t.Helper()
	if _, err := db.conn().Exec(context.Background(), sql); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

func (db *testDB) count(sql string, args ...any) int {
	db.t.Helper()
	return pgtest.QueryInt(db.t, db.url, sql, args...)
}

func (db *testDB) effects(task string) int {
	return db.count("SELECT count(*) FROM effects WHERE task = $1", task)
}

func (db *testDB) runner(cfg starttask.Config, tasks ...starttask.Task) *starttask.Runner {
	db.t.Helper()
	m, err := migrate.New(db.cc, migrate.Config{})
	if err != nil {
		db.t.Fatal(err)
	}
	r, err := starttask.New(m, db.cc, cfg, tasks...)
	if err != nil {
		db.t.Fatal(err)
	}
	return r
}

func (db *testDB) history(task string) migrate.Record {
	db.t.Helper()
	rec, ok, err := migrate.NewHistory(migrate.DefaultSchema, migrate.DefaultTable).Get(context.Background(), db.conn(), starttask.Line, task)
	if err != nil || !ok {
		db.t.Fatalf("history of %s: found %v, %v", task, ok, err)
	}
	return rec
}

func insert(task string) string { return "INSERT INTO effects (task) VALUES ('" + task + "');" }

func outcomes(r *starttask.Runner) map[string]starttask.Outcome {
	out := map[string]starttask.Outcome{}
	for _, res := range r.Results() {
		out[res.Name] = res.Outcome
	}
	return out
}

func TestPoliciesAndConditions(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	var goRuns int
	tasks := func(version string) []starttask.Task {
		return []starttask.Task{
			{Name: "once", SQL: insert("once")},
			{Name: "always", Policy: starttask.Always, SQL: insert("always")},
			{Name: "change", Policy: starttask.OnChange, Version: version, Func: func(ctx context.Context, db migrate.DB) error {
				goRuns++
				_, err := db.Exec(ctx, insert("change"))
				return err
			}},
			{Name: "dev-only", Env: []string{starttask.EnvDev}, SQL: insert("dev-only")},
			{Name: "fresh", Fresh: true, SQL: insert("fresh")},
		}
	}
	boot := func(cfg starttask.Config, version string) *starttask.Runner {
		t.Helper()
		r := db.runner(cfg, tasks(version)...)
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := boot(starttask.Config{Env: starttask.EnvProd, Fresh: true}, "v1")
	want := map[string]starttask.Outcome{"once": "ran", "always": "ran", "change": "ran", "dev-only": "skipped", "fresh": "ran"}
	if got := outcomes(r); !maps.Equal(got, want) {
		t.Errorf("first boot: %v, want %v", got, want)
	}
	r = boot(starttask.Config{Env: starttask.EnvProd}, "v1")
	want = map[string]starttask.Outcome{"once": "done", "always": "ran", "change": "done", "dev-only": "skipped", "fresh": "done"}
	if got := outcomes(r); !maps.Equal(got, want) {
		t.Errorf("second boot: %v, want %v", got, want)
	}
	r = boot(starttask.Config{Env: starttask.EnvDev}, "v2")
	want = map[string]starttask.Outcome{"once": "done", "always": "ran", "change": "ran", "dev-only": "ran", "fresh": "done"}
	if got := outcomes(r); !maps.Equal(got, want) {
		t.Errorf("third boot (dev, version v2): %v, want %v", got, want)
	}
	for task, n := range map[string]int{"once": 1, "always": 3, "change": 2, "dev-only": 1, "fresh": 1} {
		if got := db.effects(task); got != n {
			t.Errorf("%s ran %d times, want %d", task, got, n)
		}
	}
	if goRuns != 2 {
		t.Errorf("Go task called %d times, want 2", goRuns)
	}
	if rec := db.history("always"); rec.Attempts != 3 || rec.Outcome != migrate.OutcomeApplied || rec.Name != "go" {
		t.Errorf("history of always: %+v", rec)
	}
	c := r.Check()
	if c.Status != status.Pass || !strings.Contains(c.Detail, "3 ran, 0 failed, 2 done before, 0 skipped") {
		t.Errorf("check: %+v", c)
	}

	// A fresh task on a database that was not fresh: skipped, not recorded.
	db2 := newTestDB(t)
	r = db2.runner(starttask.Config{}, starttask.Task{Name: "fresh", Fresh: true, SQL: insert("fresh")})
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(r)["fresh"]; got != starttask.OutcomeSkipped || db2.effects("fresh") != 0 {
		t.Errorf("fresh task on a database that is not: %s, %d effects", got, db2.effects("fresh"))
	}
}

// With nothing due, a run takes no lock: it passes while another session
// holds it.
func TestNothingDueTakesNoLock(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	tasks := []starttask.Task{{Name: "once", SQL: insert("once")}, {Name: "dev", Env: []string{"dev"}, SQL: insert("dev")}}
	if err := db.runner(starttask.Config{}, tasks...).Run(ctx); err != nil {
		t.Fatal(err)
	}
	holder := db.conn()
	var dbname string
	holder.QueryRow(ctx, "SELECT current_database()").Scan(&dbname)
	if _, err := pglock.Acquire(ctx, holder, pglock.Key(dbname, migrate.DefaultSchema, migrate.DefaultTable), pglock.Options{}); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.runner(starttask.Config{}, tasks...).Run(tctx); err != nil {
		t.Fatalf("a boot with nothing due waited for the lock: %v", err)
	}
	// An always-task is always due: it needs the lock, and waits for it.
	always := starttask.Task{Name: "always", Policy: starttask.Always, SQL: insert("always")}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	r := db.runner(starttask.Config{}, always)
	err := r.Run(short)
	if !errors.Is(err, context.DeadlineExceeded) || db.effects("always") != 0 {
		t.Errorf("always-task while the lock is held elsewhere: %v, %d effects", err, db.effects("always"))
	}
}

func TestRequiredFailureIsRecordedAndRetried(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	bad := starttask.Task{Name: "seed", File: "tasks/10_seed.sql", SQL: insert("seed") + "\nSELEC oops;\n"}
	after := starttask.Task{Name: "after", SQL: insert("after")}
	r := db.runner(starttask.Config{}, bad, after)
	err := r.Run(ctx)
	var te *starttask.TaskError
	if !status.IsAction(err) || !errors.As(err, &te) {
		t.Fatalf("err = %v, want an ActionError with a TaskError", err)
	}
	t.Logf("error: %v\nhint: %s", err, status.HintOf(err))
	if te.Line != 2 || te.SQLState != "42601" || !strings.Contains(err.Error(), "tasks/10_seed.sql:2: task seed") {
		t.Errorf("task error %+v", te)
	}
	if !strings.Contains(status.HintOf(err), "fix tasks/10_seed.sql") {
		t.Errorf("hint %q", status.HintOf(err))
	}
	if db.effects("seed") != 0 || db.effects("after") != 0 {
		t.Error("the failed task's insert was kept, or the run went on after a required failure")
	}
	rec := db.history("seed")
	if rec.Outcome != migrate.OutcomeFailed || rec.SQLState != "42601" || rec.Attempts != 1 {
		t.Errorf("history: %+v", rec)
	}
	if c := r.Check(); c.Status != status.Fail || c.Hint == "" {
		t.Errorf("check: %+v", c)
	}

	bad.SQL = insert("seed")
	r = db.runner(starttask.Config{}, bad, after)
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := db.history("seed"); rec.Outcome != migrate.OutcomeApplied || rec.Attempts != 2 || db.effects("seed") != 1 {
		t.Errorf("after the fix: %+v, %d effects", rec, db.effects("seed"))
	}
}

func TestBestEffortFailureGoesOn(t *testing.T) {
	db := newTestDB(t)
	r := db.runner(starttask.Config{},
		starttask.Task{Name: "flaky", OnFailure: starttask.BestEffort, Func: func(ctx context.Context, db migrate.DB) error {
			if _, err := db.Exec(ctx, insert("flaky")); err != nil {
				return err
			}
			return errors.New("the control plane did not answer")
		}},
		starttask.Task{Name: "next", SQL: insert("next")},
	)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if db.effects("flaky") != 0 || db.effects("next") != 1 {
		t.Errorf("effects: flaky %d (its transaction must roll back), next %d", db.effects("flaky"), db.effects("next"))
	}
	c := r.Check()
	if c.Status != status.Warn || !strings.Contains(c.LastError, "control plane did not answer") {
		t.Errorf("check: %+v", c)
	}
	if rec := db.history("flaky"); rec.Outcome != migrate.OutcomeFailed || !strings.Contains(rec.Message, "control plane") {
		t.Errorf("history: %+v", rec)
	}
}

// A task past its timeout is cancelled on the server; the session, and so
// the lock, survive: the failure is recorded and the next task runs.
func TestTimeoutCancelsTheStatementNotTheSession(t *testing.T) {
	db := newTestDB(t)
	var refused error
	r := db.runner(starttask.Config{},
		starttask.Task{Name: "sleepy", OnFailure: starttask.BestEffort, Timeout: 200 * time.Millisecond, SQL: insert("sleepy") + " SELECT pg_sleep(30);"},
		starttask.Task{Name: "loops", OnFailure: starttask.BestEffort, Timeout: 200 * time.Millisecond, NoTransaction: true,
			Func: func(ctx context.Context, db migrate.DB) error {
				for {
					if _, err := db.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
						refused = err
						return err
					}
				}
			}},
		starttask.Task{Name: "next", SQL: insert("next")},
	)
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	res := r.Results()
	if res[0].Outcome != starttask.OutcomeFailed || !strings.Contains(res[0].Error, "timeout of 200ms") || !strings.Contains(res[0].Hint, "timeout") {
		t.Errorf("sleepy: %+v", res[0])
	}
	if res[1].Outcome != starttask.OutcomeFailed || refused == nil {
		t.Errorf("loops: %+v, last statement error %v", res[1], refused)
	}
	if res[2].Outcome != starttask.OutcomeRan || db.effects("next") != 1 || db.effects("sleepy") != 0 {
		t.Errorf("next: %+v; effects next %d sleepy %d", res[2], db.effects("next"), db.effects("sleepy"))
	}
	if rec := db.history("sleepy"); rec.Outcome != migrate.OutcomeFailed {
		t.Errorf("history: %+v", rec)
	}
}

func TestCommandTask(t *testing.T) {
	db := newTestDB(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"10_env.sh*": "#!/bin/sh\n# uplink: always\necho \"$DATABASE_URL|$UPLINK_TASK|$UPLINK_FRESH|$(pwd)\" > " + filepath.Join(dir, "seen") + "\necho ok\n",
		"20_fails*":  "#!/bin/sh\n# uplink: best-effort\necho about to fail\necho \"$DATABASE_URL\" >&2\nexit 7\n",
	})
	tasks, err := starttask.LoadTasks(dir)
	if err != nil {
		t.Fatal(err)
	}
	pw := db.cc.Password
	r := db.runner(starttask.Config{Fresh: true, Exec: starttask.Exec{Vars: []string{"DATABASE_URL=" + db.url}, Secrets: []string{pw}}}, tasks...)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen, _ := os.ReadFile(filepath.Join(dir, "seen"))
	if got := strings.TrimSpace(string(seen)); got != db.url+"|env|true|"+dir {
		t.Errorf("the task saw %q", got)
	}
	res := r.Results()
	if res[0].Outcome != starttask.OutcomeRan || res[0].Output != "ok" {
		t.Errorf("env task: %+v", res[0])
	}
	f := res[1]
	if f.Outcome != starttask.OutcomeFailed || !strings.Contains(f.Error, "exit status 7") || !strings.Contains(f.Output, "about to fail") {
		t.Errorf("failing task: %+v", f)
	}
	if strings.Contains(f.Output+f.Error, pw) || strings.Contains(db.history("fails").Message, pw) {
		t.Errorf("the password shows: %+v", f)
	}
}

func TestRunNowAndStatus(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	tasks := []starttask.Task{
		{Name: "seed", SQL: insert("seed")},
		{Name: "demo", Env: []string{"dev"}, SQL: insert("demo")},
		{Name: "restore", Fresh: true, SQL: insert("restore")},
	}
	r := db.runner(starttask.Config{}, tasks...)
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Run by hand: a once-task that already ran, and a fresh task on a
	// database that is not fresh, run anyway and are recorded.
	for _, name := range []string{"seed", "restore"} {
		res, err := r.RunNow(ctx, name)
		if err != nil || res.Outcome != starttask.OutcomeRan {
			t.Errorf("RunNow %s: %+v, %v", name, res, err)
		}
	}
	if db.effects("seed") != 2 || db.effects("restore") != 1 || db.history("seed").Attempts != 2 {
		t.Errorf("effects: seed %d, restore %d", db.effects("seed"), db.effects("restore"))
	}
	if _, err := r.RunNow(ctx, "demo"); !status.IsAction(err) || !strings.Contains(status.HintOf(err), "--env dev") {
		t.Errorf("a dev task run by hand in prod: %v (hint %q)", err, status.HintOf(err))
	}
	if _, err := r.RunNow(ctx, "nope"); !status.IsAction(err) || !strings.Contains(status.HintOf(err), "[demo restore seed]") {
		t.Errorf("unknown task: %v (hint %q)", err, status.HintOf(err))
	}

	// A task that is gone still shows, from its history row.
	list, err := db.runner(starttask.Config{}, tasks[1]).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Name != "demo" || list[0].Outcome != starttask.OutcomeSkipped || list[0].Last != nil {
		t.Fatalf("listing: %+v", list)
	}
	for _, l := range list[1:] {
		if l.Last == nil || l.Outcome != "" || !strings.Contains(l.Reason, "no such task") {
			t.Errorf("gone task: %+v", l)
		}
	}
}

// A Go task that ignores its context would hold the cluster lock, and
// every replica's boot, forever: after its timeout and a grace it is
// abandoned, its session closed (the lock with it), and the run stops
// for a person, the next task not run.
func TestGoTaskIgnoringItsContextIsAbandoned(t *testing.T) {
	db := newTestDB(t)
	stuck := make(chan struct{})
	defer close(stuck) // lets the abandoned function end with the test
	r := db.runner(starttask.Config{},
		starttask.Task{Name: "stuck", Timeout: 100 * time.Millisecond, Func: func(ctx context.Context, _ migrate.DB) error {
			<-stuck
			return nil
		}},
		starttask.Task{Name: "next", SQL: insert("next")},
	)
	start := time.Now()
	err := r.Run(context.Background())
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %s", took)
	}
	if !status.IsAction(err) || !strings.Contains(err.Error(), "did not return") || !strings.Contains(status.HintOf(err), "stuck") {
		t.Fatalf("Run = %v (hint %q); want an ActionError naming the stuck task", err, status.HintOf(err))
	}
	if res := r.Results(); res[0].Outcome != starttask.OutcomeFailed || res[1].Outcome == starttask.OutcomeRan || db.effects("next") != 0 {
		t.Errorf("results %+v; next ran %d times", res, db.effects("next"))
	}
	// The lock went with the session: another runner takes it at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.runner(starttask.Config{}, starttask.Task{Name: "after", SQL: insert("after")}).Run(ctx); err != nil || db.effects("after") != 1 {
		t.Errorf("a runner after the abandoned one: %v, effects %d", err, db.effects("after"))
	}
}
