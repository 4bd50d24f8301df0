package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/migrate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func migrator(t *testing.T, url string) *migrate.Migrator {
	t.Helper()
	line, err := jobs.MigrationLine("")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.New(cc, migrate.Config{}, line)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// riverValid asks River's own migrator whether River's schema is complete.
func riverValid(t *testing.T, pool *pgxpool.Pool) bool {
	t.Helper()
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rm.Validate(testCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.OK
}

func TestMigrationLineIsRiversSchemaAndBookkeeping(t *testing.T) {
	ctx := testCtx(t)
	url := pgtest.Shared(t).NewDatabase(t)
	pool := newPool(t, url)
	m := migrator(t, url)
	res, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := jobs.MigrationLine("")
	if len(res.Applied) != len(line.Migrations) || len(line.Migrations) < 6 {
		t.Fatalf("applied %d of %d River migrations", len(res.Applied), len(line.Migrations))
	}
	if !riverValid(t, pool) {
		t.Error("River's migrator finds its schema incomplete after Uplink's run")
	}
	if res, err := m.Up(ctx); err != nil || len(res.Applied) != 0 || res.Locked {
		t.Errorf("second Up = %+v, %v; want nothing to do and no lock", res, err)
	}
	// All the way down, as River's down migrations go.
	if _, err := m.DownTo(ctx, jobs.LineName, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'river%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d River tables left after reverting the line (%v)", n, err)
	}
}

func TestMigrationLineAdoptsWhatRiversMigratorApplied(t *testing.T) {
	ctx := testCtx(t)
	url := pgtest.Shared(t).NewDatabase(t)
	pool := newPool(t, url)
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: 5}); err != nil {
		t.Fatal(err)
	}
	res, err := migrator(t, url).Up(ctx)
	if err != nil {
		t.Fatalf("Up over a database River's CLI migrated to 5: %v", err)
	}
	if len(res.Applied) < 6 || !riverValid(t, pool) {
		t.Errorf("applied %+v; River valid %v", res.Applied, riverValid(t, pool))
	}
}

// waitArgs is a job that takes Millis, or until its context ends when
// Millis is 0.
type waitArgs struct{ Millis int }

func (waitArgs) Kind() string { return "wait" }

type waitWorker struct {
	river.WorkerDefaults[waitArgs]
	started   chan int64
	cancelled chan int64
}

func (w *waitWorker) Work(ctx context.Context, job *river.Job[waitArgs]) error {
	w.started <- job.ID
	wait := time.Hour
	if job.Args.Millis > 0 {
		wait = time.Duration(job.Args.Millis) * time.Millisecond
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		w.cancelled <- job.ID
		return ctx.Err()
	}
}

func TestStopGivesJobsTheSoftTimeoutThenCancels(t *testing.T) {
	ctx := testCtx(t)
	url := pgtest.Shared(t).NewDatabase(t)
	if _, err := migrator(t, url).Up(ctx); err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, url)
	svc, err := jobs.New(func() *pgxpool.Pool { return pool }, jobs.Config{
		SoftStopTimeout: 500 * time.Millisecond, DepthInterval: 50 * time.Millisecond,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 5}},
		River:  river.Config{FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &waitWorker{started: make(chan int64, 10), cancelled: make(chan int64, 10)}
	if err := jobs.AddWorker(svc, w); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	quick, err := svc.Client().Insert(ctx, waitArgs{Millis: 200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := svc.Client().Insert(ctx, waitArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A job in a queue nobody here works: it shows in the depth only.
	if _, err := svc.Client().Insert(ctx, waitArgs{}, &river.InsertOpts{Queue: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		<-w.started
	}
	if svc.Running() != 2 {
		t.Errorf("Running = %d; want 2", svc.Running())
	}
	waitDepth(t, svc, "elsewhere", "available", 1)

	t0 := time.Now()
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	took := time.Since(t0)
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("Stop took %s; want the 500ms soft timeout, then the cancel", took)
	}
	select {
	case id := <-w.cancelled:
		if id != stuck.Job.ID {
			t.Errorf("cancelled job %d; want the stuck one, %d", id, stuck.Job.ID)
		}
	default:
		t.Error("the stuck job was not cancelled")
	}
	if st := jobState(t, pool, quick.Job.ID); st != rivertype.JobStateCompleted {
		t.Errorf("the quick job is %s after Stop; want completed within the soft timeout", st)
	}
	// River puts a job cancelled by a stop back for a later attempt.
	if st := jobState(t, pool, stuck.Job.ID); st == rivertype.JobStateRunning || st == rivertype.JobStateCompleted {
		t.Errorf("the cancelled job is %s after Stop; want it back in the queue", st)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if c := svc.Check(); c.Data["client"] != "insert-only" && c.Data["client"] != "stopped" {
		t.Errorf("check after Stop = %+v", c)
	}
}

func waitDepth(t *testing.T, svc *jobs.Service, queue, state string, want int64) {
	t.Helper()
	for t0 := time.Now(); svc.Depth().Queues[queue][state] != want; time.Sleep(20 * time.Millisecond) {
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("depth of %s/%s never reached %d: %+v (check %+v)", queue, state, want, svc.Depth(), svc.Check())
		}
	}
}

func jobState(t *testing.T, pool *pgxpool.Pool, id int64) rivertype.JobState {
	t.Helper()
	var st string
	if err := pool.QueryRow(context.Background(), `SELECT state FROM river_job WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return rivertype.JobState(st)
}

func TestConfigMistakesAreRefused(t *testing.T) {
	pool := func() *pgxpool.Pool { return nil }
	for name, cfg := range map[string]jobs.Config{
		"logger in River":  {River: river.Config{Logger: slog.Default()}},
		"negative timeout": {SoftStopTimeout: -1},
		"quiet inverted":   {QuietMin: time.Minute, QuietMax: time.Second},
	} {
		if _, err := jobs.New(pool, cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	svc, err := jobs.New(pool, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Start without a pool = %v; want an error", err)
	}
}

// River's start is not awaited (see Service.Start): when it fails, the
// run ends through Done with an error the supervisor sees as an outage,
// and a Stop after it returns at once.
func TestRiverStartFailureEndsTheRun(t *testing.T) {
	ctx := testCtx(t)
	url := fmt.Sprintf("postgres://nobody:pw@127.0.0.1:%d/none?sslmode=disable&connect_timeout=2", pgtest.FreePort(t))
	pool := newPool(t, url) // connects on first use: nothing listens there
	svc, err := jobs.New(func() *pgxpool.Pool { return pool }, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.AddWorker(svc, &waitWorker{started: make(chan int64, 1), cancelled: make(chan int64, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start = %v; want nil, River's start failing later", err)
	}
	select {
	case err := <-svc.Done():
		if err == nil || !strings.Contains(err.Error(), "starting River") || !boot.IsOutage(err) {
			t.Fatalf("Done = %v; want River's failed start, an outage", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("River's failed start did not end the run")
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := svc.Stop(stopCtx); err != nil {
		t.Fatalf("Stop after a failed start = %v", err)
	}
}
