package boot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

// tableReader is a service that needs the migrated schema when it starts.
type tableReader struct {
	app  *boot.App
	rows int
}

func (r *tableReader) Name() string { return "reader" }
func (r *tableReader) Start(ctx context.Context) error {
	return r.app.Pool().QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&r.rows)
}
func (r *tableReader) Stop(context.Context) error { return nil }

func TestMigrationsApplyBeforeServices(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"0001_widgets.sql":   "CREATE TABLE widgets (id int PRIMARY KEY, name text);",
		"0002_seed.up.sql":   "INSERT INTO widgets VALUES (1, 'one'), (2, 'two');",
		"0002_seed.down.sql": "DELETE FROM widgets;",
		"0003_index.sql":     "-- +goose Up\n-- +goose NO TRANSACTION\nCREATE INDEX CONCURRENTLY widgets_name ON widgets (name);\n",
	})
	g := newGate(url, &events{})
	close(g.open)
	app, err := boot.New(boot.Config{Provisioner: g, HTTPAddr: "127.0.0.1:0", MigrationsDir: dir, Version: "test-1"})
	if err != nil {
		t.Fatal(err)
	}
	reader := &tableReader{app: app}
	app.Add(reader)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	waitApp(t, app, status.PhaseReady, 20*time.Second)

	if reader.rows != 2 {
		t.Errorf("service saw %d widgets at start; want the 2 the migrations seeded", reader.rows)
	}
	m := app.Status().Checks["migrations"]
	if m.Status != status.Pass {
		t.Errorf("migrations check = %+v", m)
	}
	// The row is written just after the phase turns ready.
	testutil.Eventually(t, "one ready row for this process in uplink.instances", 5*time.Second, func() bool {
		return pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.instances WHERE version = 'test-1' AND ready_at IS NOT NULL AND stopped_at IS NULL") == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.instances WHERE stopped_at IS NOT NULL"); n != 1 {
		t.Errorf("stopping did not record stopped_at (%d rows)", n)
	}

	// A second boot finds nothing pending and takes no lock: the walk to
	// ready changes no history.
	before := pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.schema_history")
	app2, _ := boot.New(boot.Config{Provisioner: newOpenGate(url), HTTPAddr: "127.0.0.1:0", MigrationsDir: dir})
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- app2.Run(ctx2) }()
	waitApp(t, app2, status.PhaseReady, 20*time.Second)
	cancel2()
	<-done2
	if after := pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.schema_history"); after != before {
		t.Errorf("history rows %d → %d on a boot with nothing pending", before, after)
	}
}

func newOpenGate(url string) *gate {
	g := newGate(url, &events{})
	close(g.open)
	return g
}

func TestFailedMigrationIsErrorAndRetriedOnNextStart(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"0001_ok.sql":     "CREATE TABLE gadgets (id int);",
		"0002_broken.sql": "CREATE TABLE more (id int);\nINSERT INTO gadgets VALUES (1);\nSELEC oops;",
	})
	run := func() (*boot.App, func()) {
		app, err := boot.New(boot.Config{Provisioner: newOpenGate(url), HTTPAddr: "127.0.0.1:0", MigrationsDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		return app, func() { cancel(); <-done }
	}
	app, stop := run()
	waitApp(t, app, status.PhaseError, 20*time.Second)
	snap := app.Status()
	t.Logf("reason: %s\nhint: %s", snap.Reason, snap.Hint)
	for _, want := range []string{"0002_broken.sql", "42601"} {
		if !strings.Contains(snap.Reason+snap.Checks["migrations"].LastError, want) {
			t.Errorf("error does not name %s: reason %q, check %+v", want, snap.Reason, snap.Checks["migrations"])
		}
	}
	if snap.Hint == "" {
		t.Error("no hint for a failed migration")
	}
	// The pool the migrating phase borrowed from is closed with the walk:
	// an app in phase error holds no connection of the app's.
	deadline := time.Now().Add(5 * time.Second)
	for pgtest.QueryInt(t, url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'uplink'") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("phase error, and the app still holds pool connections")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM pg_tables WHERE tablename = 'more'"); n != 0 {
		t.Error("the failed migration left part of its work behind")
	}

	testutil.WriteFiles(t, dir, map[string]string{"0002_broken.sql": "CREATE TABLE more (id int);\nINSERT INTO gadgets VALUES (1);"})
	app, stop = run()
	defer stop()
	waitApp(t, app, status.PhaseReady, 20*time.Second)
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM gadgets"); n != 1 {
		t.Errorf("gadgets has %d rows after the fixed migration; want 1", n)
	}
}

func TestMissingMigrationsDirIsError(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	app, _ := boot.New(boot.Config{Provisioner: newOpenGate(url), HTTPAddr: "127.0.0.1:0", MigrationsDir: "/nonexistent/migrations"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitApp(t, app, status.PhaseError, 10*time.Second)
	if s := app.Status(); !strings.Contains(s.Reason, "/nonexistent/migrations") || !strings.Contains(s.Hint, "--migrations") {
		t.Errorf("reason %q hint %q", s.Reason, s.Hint)
	}
}

// The database stops on its own clock: an app that spent its whole
// ShutdownTimeout (here in a pre-stop hook) still gives the provisioner
// time for a clean stop, instead of a context already over, which lite
// would answer with SIGQUIT and crash recovery at the next start.
func TestDatabaseStopIsNotCutByTheAppsBudget(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	g := newOpenGate(url)
	app, err := boot.New(boot.Config{Provisioner: g, HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second,
		PreStop: []starttask.Hook{{Name: "slow", Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}})
	if err != nil {
		t.Fatal(err)
	}
	// And the hook, hanging, leaves the services half the budget.
	var serviceLeft time.Duration
	app.Add(stopRecorder{left: &serviceLeft})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	waitApp(t, app, status.PhaseReady, 20*time.Second)
	cancel()
	<-done
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped || g.stopLeft < 30*time.Second {
		t.Fatalf("provisioner stopped %v with %v left; want a budget of its own (%v)", g.stopped, g.stopLeft, time.Minute)
	}
	if serviceLeft < 500*time.Millisecond {
		t.Errorf("a service's Stop had %v left after a hanging pre-stop hook; want about half of 2s", serviceLeft)
	}
}

// stopRecorder is a service that notes how much of its Stop's deadline
// was left.
type stopRecorder struct{ left *time.Duration }

func (stopRecorder) Name() string                { return "stop-recorder" }
func (stopRecorder) Start(context.Context) error { return nil }
func (r stopRecorder) Stop(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		*r.left = time.Until(dl)
	}
	return nil
}
