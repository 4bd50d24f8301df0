package jobqueue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/status"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// jobsPerRun is how many jobs one throughput run works.
const jobsPerRun = 20000

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// queues and riverConfig are shared by both sides, so that the only
// difference is Uplink's wiring.
var queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}}

func riverConfig() river.Config {
	return river.Config{FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond}
}

// BenchmarkThroughputRiver works jobsPerRun no-op jobs with River's client
// used directly.
func BenchmarkThroughputRiver(b *testing.B) {
	for range b.N {
		b.StopTimer()
		url := pgtest.Shared(b).NewDatabase(b)
		pool := newPool(b, url)
		rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rm.Migrate(context.Background(), rivermigrate.DirectionUp, nil); err != nil {
			b.Fatal(err)
		}
		var done atomic.Int64
		workers := river.NewWorkers()
		river.AddWorker(workers, &noopWorker{done: &done})
		cfg := riverConfig()
		cfg.Queues, cfg.Workers, cfg.Logger = queues, workers, slog.New(slog.DiscardHandler)
		client, err := river.NewClient(riverpgxv5.New(pool), &cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := client.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		work(b, client, pool)
		b.StopTimer()
		client.Stop(context.Background())
	}
}

// BenchmarkThroughputUplink works the same jobs through an Uplink app:
// boot in pro mode on the same server, River's schema migrated by
// Uplink's migrator, the client run by the jobs service.
func BenchmarkThroughputUplink(b *testing.B) {
	for range b.N {
		b.StopTimer()
		url := pgtest.Shared(b).NewDatabase(b)
		var done atomic.Int64
		app, stop := runApp(b, boot.Config{DatabaseURL: url, Jobs: jobs.Config{Queues: queues, River: riverConfig()}},
			func(app *boot.App) error { return boot.AddWorker(app, &noopWorker{done: &done}) })
		b.StartTimer()
		work(b, app.Jobs(), app.Pool())
		b.StopTimer()
		stop()
	}
}

// work inserts jobsPerRun jobs in batches and waits until River has
// recorded every one of them completed; it reports jobs per second.
func work(b *testing.B, client *river.Client[pgx.Tx], pool *pgxpool.Pool) {
	ctx := context.Background()
	t0 := time.Now()
	batch := make([]river.InsertManyParams, 1000)
	for i := range batch {
		batch[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	for range jobsPerRun / len(batch) {
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == jobsPerRun {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			b.Fatalf("only %d of %d jobs completed in 5 minutes", n, jobsPerRun)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ReportMetric(jobsPerRun/time.Since(t0).Seconds(), "jobs/s")
}

// BenchmarkBackToReady stops and starts the app's PostgreSQL 20 times
// and reports the time from the server accepting connections again to
// the app's phase ready: median and max. Uplink's defaults apply (the
// database is pinged every second).
func BenchmarkBackToReady(b *testing.B) {
	const outages = 20
	for range b.N {
		db := pgtest.Start(b)
		app, stop := runApp(b, boot.Config{DatabaseURL: db.URL("postgres")}, nil)
		var took []time.Duration
		for range outages {
			if err := db.Stop(); err != nil {
				b.Fatal(err)
			}
			waitPhase(b, app, status.PhaseDegraded, 10*time.Second)
			// The watch pings every second: without a random pause the
			// server would come back at the same point of that second
			// each time, and the numbers would show that point only.
			time.Sleep(rand.N(time.Second))
			if err := db.Start(); err != nil { // returns once it accepts connections
				b.Fatal(err)
			}
			t0 := time.Now()
			waitPhase(b, app, status.PhaseReady, 30*time.Second)
			took = append(took, time.Since(t0))
		}
		stop()
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
		b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	}
}

func runApp(b *testing.B, cfg boot.Config, setup func(*boot.App) error) (*boot.App, func()) {
	b.Helper()
	cfg.HTTPAddr = "127.0.0.1:0"
	app, err := boot.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if setup != nil {
		if err := setup(app); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	waitPhase(b, app, status.PhaseReady, time.Minute)
	return app, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("stopping the app: %v", err)
		}
	}
}

func waitPhase(b *testing.B, app *boot.App, p status.Phase, bound time.Duration) {
	b.Helper()
	for t0 := time.Now(); app.Phase() != p; time.Sleep(5 * time.Millisecond) {
		if time.Since(t0) > bound {
			b.Fatalf("phase %s not reached within %s: %s", p, bound, app.Status().Reason)
		}
	}
}

func newPool(b *testing.B, url string) *pgxpool.Pool {
	b.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}
