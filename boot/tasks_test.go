package boot_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

// TestTasksAndHooks walks two boots of a new database through the tasks
// phase and the hooks: a Go task and a tasks directory, the fresh
// condition judged before migrating, post-start hooks after ready (one
// failing, which only warns) and pre-stop hooks first when stopping.
func TestTasksAndHooks(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	migs, tasks := t.TempDir(), t.TempDir()
	testutil.WriteFiles(t, migs, map[string]string{"0001_effects.sql": "CREATE TABLE effects (task text);"})
	testutil.WriteFiles(t, tasks, map[string]string{
		"10_restore.sql": "-- uplink: fresh\nINSERT INTO effects VALUES ('restore');",
		"20_seed.sql":    "INSERT INTO effects VALUES ('seed');",
	})
	var mu sync.Mutex
	var preStop []string
	var app *boot.App
	cfg := func() boot.Config {
		return boot.Config{
			Provisioner: newOpenGate(url), MigrationsDir: migs, TasksDir: tasks, ShutdownTimeout: 5 * time.Second,
			Tasks: []starttask.Task{{Name: "go-always", Policy: starttask.Always, Func: func(ctx context.Context, db migrate.DB) error {
				_, err := db.Exec(ctx, "INSERT INTO effects VALUES ('go-always')")
				return err
			}}},
			PostStart: []starttask.Hook{
				{Name: "breaks", Command: starttask.ShellCommand(`echo "cannot reach $DATABASE_URL"; exit 4`)},
			},
			PreStop: []starttask.Hook{{Name: "drain", Func: func(ctx context.Context) error {
				// Pre-stop runs first: phase stopping, the pool still open.
				mu.Lock()
				defer mu.Unlock()
				preStop = append(preStop, string(app.Phase()))
				if err := app.Pool().Ping(ctx); err != nil {
					preStop = append(preStop, "pool closed: "+err.Error())
				}
				return nil
			}}},
		}
	}

	s := start(t, cfg())
	app = s.app
	s.waitPhase(t, status.PhaseReady, 20*time.Second)
	var snap status.Snapshot
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		snap = s.snapshot(t)
		if snap.Checks["hooks"].Status == status.Warn || time.Now().After(deadline) {
			break
		}
	}
	hooks := snap.Checks["hooks"]
	if hooks.Status != status.Warn || !strings.Contains(hooks.LastError, "exit status 4") || snap.Phase != status.PhaseReady || snap.Status != status.Warn {
		t.Errorf("a failing post-start hook: phase %s, status %s, hooks %+v", snap.Phase, snap.Status, hooks)
	}
	b, _ := json.Marshal(snap)
	if pw := strings.SplitN(strings.SplitN(url, "@", 2)[0], ":", 3)[2]; strings.Contains(string(b), pw) {
		t.Error("/status shows the database password")
	}
	if !strings.Contains(string(b), "cannot reach postgres://postgres:xxxxx@") {
		t.Errorf("the hook's output tail is not in /status: %s", b)
	}
	tc := snap.Checks["tasks"]
	if tc.Status != status.Pass || !strings.Contains(tc.Detail, "3 ran") {
		t.Errorf("tasks check: %+v", tc)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if strings.Join(preStop, ",") != "stopping" {
		t.Errorf("pre-stop hook saw %v; want it first in stopping, with the pool open", preStop)
	}
	mu.Unlock()

	s = start(t, cfg())
	app = s.app
	s.waitPhase(t, status.PhaseReady, 20*time.Second)
	s.stop()
	for task, want := range map[string]int{"restore": 1, "seed": 1, "go-always": 2} {
		if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM effects WHERE task = $1", task); n != want {
			t.Errorf("%s ran %d times over two boots, want %d", task, n, want)
		}
	}
}

func TestRequiredTaskFailureIsPhaseError(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"10_broken.sql": "-- uplink: always\nSELECT * FROM missing_table;"})
	s := start(t, boot.Config{Provisioner: newOpenGate(url), TasksDir: dir})
	s.waitPhase(t, status.PhaseError, 20*time.Second)
	snap := s.snapshot(t)
	file := filepath.Join(dir, "10_broken.sql")
	if !strings.Contains(snap.Reason, file+":2: task broken") || !strings.Contains(snap.Reason, "42P01") || !strings.Contains(snap.Hint, "fix "+file) {
		t.Errorf("reason %q, hint %q", snap.Reason, snap.Hint)
	}
	if c := snap.Checks["tasks"]; c.Status != status.Fail || c.Hint == "" {
		t.Errorf("tasks check: %+v", c)
	}
}

func TestBadTasksDirIsPhaseError(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"10_a.sql": "-- uplink: policy=twice\n"})
	if err := os.WriteFile(filepath.Join(dir, "20_b.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, boot.Config{Provisioner: newOpenGate(url), TasksDir: dir})
	s.waitPhase(t, status.PhaseError, 20*time.Second)
	snap := s.snapshot(t)
	for _, want := range []string{`10_a.sql:1: unknown policy "twice"`, "20_b.sh: not executable"} {
		if !strings.Contains(snap.Reason, want) {
			t.Errorf("reason %q lacks %q", snap.Reason, want)
		}
	}
	if c := snap.Checks["tasks"]; c.Status != status.Fail {
		t.Errorf("tasks check: %+v", c)
	}
	// Nothing half-recorded: the history has no task rows.
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.schema_history WHERE line = 'tasks'"); n != 0 {
		t.Errorf("%d task rows recorded", n)
	}
}

func TestGoTasksAreCheckedByNew(t *testing.T) {
	_, err := boot.New(boot.Config{Tasks: []starttask.Task{{Name: "x", Policy: "sometimes", SQL: "SELECT 1"}}})
	if !status.IsAction(err) || !strings.Contains(err.Error(), `unknown policy "sometimes"`) {
		t.Errorf("err = %v", err)
	}
	var ae *status.ActionError
	if !errors.As(err, &ae) {
		t.Error("not an ActionError")
	}
}

// A database that adopts Uplink has no history yet but has the
// application's tables: it is not fresh, and a fresh task (a restore)
// must not run over its data.
func TestDatabaseWithTablesIsNotFresh(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(context.Background(), "CREATE TABLE customers (id int); CREATE TABLE effects (task text)")
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	migs, tasks := t.TempDir(), t.TempDir()
	testutil.WriteFiles(t, migs, map[string]string{"0001_orders.sql": "CREATE TABLE orders (id int);"})
	testutil.WriteFiles(t, tasks, map[string]string{"10_restore.sql": "-- uplink: fresh\nINSERT INTO effects VALUES ('restore');"})
	s := start(t, boot.Config{Provisioner: newOpenGate(url), MigrationsDir: migs, TasksDir: tasks})
	s.waitPhase(t, status.PhaseReady, 20*time.Second)
	s.stop()
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM effects"); n != 0 {
		t.Errorf("the fresh task ran on a database that has the application's tables")
	}
}
