package boot_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/uplinkhq/uplink/backup"
	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/provision/lite"
	"github.com/uplinkhq/uplink/status"
)

// tickArgs is a job that only says it ran.
type tickArgs struct{}

func (tickArgs) Kind() string { return "tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	ledger *ledger
}

func (w *tickWorker) Work(ctx context.Context, job *river.Job[tickArgs]) error {
	w.ledger.ran(job.ID)
	return nil
}

// ledger keeps the jobs whose insert committed and how often each ran.
type ledger struct {
	mu        sync.Mutex
	committed []int64
	runs      map[int64]int
}

func newLedger() *ledger { return &ledger{runs: map[int64]int{}} }

func (l *ledger) ran(id int64) {
	l.mu.Lock()
	l.runs[id]++
	l.mu.Unlock()
}

func (l *ledger) commit(id int64) {
	l.mu.Lock()
	l.committed = append(l.committed, id)
	l.mu.Unlock()
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed)
}

func (l *ledger) hasRun(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs[id] > 0
}

// missing lists committed jobs that have not run; twice those that ran
// more than once.
func (l *ledger) missing() (missing, twice []int64, committed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range l.committed {
		if l.runs[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range l.runs {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	slices.Sort(twice)
	return missing, twice, len(l.committed)
}

// insertLoop inserts tick jobs, about 200 a second, until ctx ends,
// recording those whose insert committed; failures (the database is
// away) are expected and skipped.
func insertLoop(ctx context.Context, app *boot.App, l *ledger) {
	for ctx.Err() == nil {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		if c := app.Jobs(); c != nil {
			// A few per transaction, so that more jobs are in flight when
			// the database goes.
			batch := []river.InsertManyParams{{Args: tickArgs{}}, {Args: tickArgs{}}, {Args: tickArgs{}}, {Args: tickArgs{}}}
			if res, err := c.InsertMany(ictx, batch); err == nil {
				for _, r := range res {
					l.commit(r.Job.ID)
				}
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startInserts runs insertLoop until the function it returns is called;
// that function waits for the loop to end and may be called again.
func startInserts(app *boot.App, l *ledger) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		insertLoop(ctx, app, l)
	}()
	return func() { cancel(); <-done }
}

// running is an App under test whose logs go to a buffer only: a run of
// twenty outages would drown the test log.
type running struct {
	app  *boot.App
	logs *testutil.Buffer
	stop func() error
}

func run(t *testing.T, cfg boot.Config, setup func(*boot.App)) *running {
	t.Helper()
	logs := &testutil.Buffer{}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Logger = testutil.JSONLogger(logs)
	app, err := boot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(app)
	}
	if err := app.Listen(); err != nil {
		t.Fatal(err)
	}
	r := &running{app: app, logs: logs, stop: runInBackground(app)}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			// The whole log, for a failure that began long before the end.
			path := filepath.Join(os.TempDir(), t.Name()+".log")
			os.WriteFile(path, []byte(logs.String()), 0o644)
			t.Logf("logs in %s; the end:\n%s", path, tailString(logs.String(), 5000))
		}
	})
	return r
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func phaseIs(app *boot.App, p status.Phase) func() bool {
	return func() bool { return app.Phase() == p }
}

// fastJobs polls often: a cycle of the outage tests lasts a few seconds.
// Its capacity is far above the insert loop's rate, so that a job inserted
// after an outage is not stuck behind a backlog.
func fastJobs() jobs.Config {
	return jobs.Config{
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 50}},
		River:  river.Config{FetchPollInterval: 100 * time.Millisecond, FetchCooldown: 20 * time.Millisecond},
	}
}

func addTick(t *testing.T, l *ledger) func(*boot.App) {
	return func(app *boot.App) {
		if err := boot.AddWorker(app, &tickWorker{ledger: l}); err != nil {
			t.Fatal(err)
		}
	}
}

// flowing inserts one job and waits until it ran.
func flowing(t *testing.T, app *boot.App, l *ledger, bound time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	var id int64
	testutil.Eventually(t, "a job inserted", bound, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		res, err := app.Jobs().Insert(ctx, tickArgs{}, nil)
		if err != nil {
			return false
		}
		id = res.Job.ID
		return true
	})
	for !l.hasRun(id) {
		if time.Since(t0) > bound {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			row, err := app.Jobs().JobGet(ctx, id)
			if err != nil {
				t.Fatalf("job %d did not run within %s (and cannot be read: %v)", id, bound, err)
			}
			var avail, running int
			var now time.Time
			app.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'available'), count(*) FILTER (WHERE state = 'running'), now() FROM river_job`).Scan(&avail, &running, &now)
			t.Fatalf("job %d did not run within %s: state %s, queue %s, scheduled %s (db now %s), attempt %d, attempted by %v, errors %v; %d available, %d running",
				id, bound, row.State, row.Queue, row.ScheduledAt, now, row.Attempt, row.AttemptedBy, row.Errors, avail, running)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}

// settle waits until every committed job ran, then reports jobs run twice.
func settle(t *testing.T, l *ledger, bound time.Duration) {
	t.Helper()
	t0 := time.Now()
	for {
		missing, twice, n := l.missing()
		if len(missing) == 0 {
			t.Logf("%d committed jobs all ran; %d ran twice %v", n, len(twice), twice)
			return
		}
		if time.Since(t0) > bound {
			t.Fatalf("%d of %d committed jobs never ran (first: %v)", len(missing), n, missing[:min(10, len(missing))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quietFetchErrors checks that River's fetch errors were logged once per
// back-off step, not once per poll: with a 100ms poll an outage of a
// second or two would otherwise log ten or twenty.
func quietFetchErrors(t *testing.T, logs string, outages int) {
	t.Helper()
	n := strings.Count(logs, `"msg":"producer: Error fetching jobs"`)
	t.Logf("River's fetch errors logged %d times over %d outages", n, outages)
	if n > 2*outages+5 {
		t.Errorf("fetch errors logged %d times over %d outages: not tamed", n, outages)
	}
}

func TestJobsSurvivePostgresKilledInLiteMode(t *testing.T) {
	const cycles = 20
	leaks := goleak.IgnoreCurrent()
	dir := pgtest.BaseDir(t)
	pgtest.Binaries(t)
	l, err := lite.New(lite.Config{
		DataDir: dir, Logger: slog.New(slog.DiscardHandler),
		// Twenty crashes in a minute is the test, not a broken server.
		RestartBackoffMin: 20 * time.Millisecond, RestartBackoffMax: 200 * time.Millisecond, MaxRestarts: 10 * cycles,
	})
	if err != nil {
		t.Fatal(err)
	}
	led := newLedger()
	r := run(t, boot.Config{
		Provisioner: l, WatchInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		Jobs: fastJobs(), Backups: backup.Config{Interval: -1},
	}, addTick(t, led))
	app := r.app
	testutil.Eventually(t, "ready", 60*time.Second, phaseIs(app, status.PhaseReady))

	stopInserts := startInserts(app, led)
	defer stopInserts()
	flowing(t, app, led, 10*time.Second)
	baseline := runtime.NumGoroutine()

	var degradedIn, readyIn, flowIn []time.Duration
	var goroutines []int
	const perCycle = 40 // jobs committed since the last outage, before the next
	for i := range cycles {
		before := led.count()
		testutil.Eventually(t, "jobs inserted since the last outage", 10*time.Second, func() bool { return led.count() >= before+perCycle })
		ci, err := lite.ReadConnInfo(dir)
		if err != nil || ci.PID == 0 {
			t.Fatalf("cycle %d: no postmaster pid: %v", i, err)
		}
		killed := time.Now()
		if err := syscall.Kill(ci.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		degradedIn = append(degradedIn, testutil.Eventually(t, "degraded after kill", 5*time.Second, phaseIs(app, status.PhaseDegraded)))
		// Back: lite has restarted postgres and it accepts connections.
		testutil.Eventually(t, "postgres back", 30*time.Second-time.Since(killed), func() bool { return accepts(dir) })
		readyIn = append(readyIn, testutil.Eventually(t, "ready after postgres is back", 10*time.Second, phaseIs(app, status.PhaseReady)))
		t.Logf("cycle %d: back", i)
		flowIn = append(flowIn, flowing(t, app, led, 10*time.Second))
		goroutines = append(goroutines, runtime.NumGoroutine())
	}
	stopInserts()
	settle(t, led, 20*time.Second)
	t.Logf("%d jobs committed over %d outages", led.count(), cycles)
	t.Logf("degraded after kill: max %s; ready after postgres back: max %s; a job flowing after postgres back: max %s",
		slices.Max(degradedIn), slices.Max(readyIn), slices.Max(flowIn))
	t.Logf("goroutines: %d before, per cycle %v", baseline, goroutines)
	if g := slices.Max(goroutines); g > baseline+40 {
		t.Errorf("goroutines grew from %d to %d over %d outages", baseline, g, cycles)
	}
	snap := app.Status()
	if c := snap.Checks["services"]; c.Status != status.Pass {
		t.Errorf("services after the outages: %+v", c)
	}
	if jobsSvc, _ := snap.Checks["services"].Data["jobs"].(status.Check); jobsSvc.Data["restarts"] != 0 {
		t.Errorf("the job queue was restarted: %+v", jobsSvc)
	}
	if err := r.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	quietFetchErrors(t, r.logs.String(), cycles)
	goleak.VerifyNone(t, leaks)
}

// accepts reports whether the lite server of dir takes connections.
func accepts(dir string) bool {
	ci, err := lite.ReadConnInfo(dir)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	conn, err := pgx.Connect(ctx, ci.SocketDSN().Secret())
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func TestJobsSurviveServerStoppedInProMode(t *testing.T) {
	const cycles = 3
	leaks := goleak.IgnoreCurrent()
	db := pgtest.Start(t)
	// The throwaway server commits asynchronously for speed; the kill
	// below must not lose commits, as a production server would not.
	g := newOpenGate(db.URL("postgres") + "&synchronous_commit=on")
	led := newLedger()
	r := run(t, boot.Config{
		Provisioner: g, WatchInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		Jobs: fastJobs(),
	}, addTick(t, led))
	app := r.app
	testutil.Eventually(t, "ready", 30*time.Second, phaseIs(app, status.PhaseReady))
	stopInserts := startInserts(app, led)
	defer stopInserts()
	flowing(t, app, led, 10*time.Second)
	base := "http://" + app.Addr().String()

	for i := range cycles {
		if i == cycles-1 {
			db.Kill() // and once as a crash
		} else if err := db.Stop(); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "degraded", 5*time.Second, phaseIs(app, status.PhaseDegraded))
		if i == 0 {
			checkEndpointsWhileDown(t, base)
		}
		if err := db.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "ready after the server is back", 10*time.Second, phaseIs(app, status.PhaseReady))
		flowing(t, app, led, 10*time.Second)
	}
	stopInserts()
	settle(t, led, 20*time.Second)
	checkEndpointsWhileUp(t, base)
	if err := r.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	quietFetchErrors(t, r.logs.String(), cycles)
	db.Stop()
	goleak.VerifyNone(t, leaks)
}

// checkEndpointsWhileDown: /status answers at once with the services, the
// pool and the last queue depth, without waiting on the database.
func checkEndpointsWhileDown(t *testing.T, base string) {
	t.Helper()
	t0 := time.Now()
	code, snap := getStatus(t, base)
	if took := time.Since(t0); took > 500*time.Millisecond {
		t.Errorf("/status took %s while the database is down", took)
	}
	if code != http.StatusServiceUnavailable || snap.Phase != status.PhaseDegraded {
		t.Errorf("/status while down = %d, phase %s", code, snap.Phase)
	}
	for _, name := range []string{"pool", "jobs"} {
		if _, ok := snap.Checks["services"].Data[name]; !ok {
			t.Errorf("services check lacks %s while down: %+v", name, snap.Checks["services"])
		}
	}
	if _, ok := snap.Checks["queues"].Data["queues"]; !ok {
		t.Errorf("queues check while down: %+v", snap.Checks["queues"])
	}
	if _, ok := snap.Checks["pool"].Data["max_conns"]; !ok {
		t.Errorf("pool check while down: %+v", snap.Checks["pool"])
	}
}

// checkEndpointsWhileUp: /status and /metrics show each service's state
// and restarts, queue depth per queue and state, and the pool's numbers.
func checkEndpointsWhileUp(t *testing.T, base string) {
	t.Helper()
	// The queue depth is counted every 5s by default; wait for a count
	// made after the outages.
	var snap status.Snapshot
	testutil.Eventually(t, "a fresh queue count", 10*time.Second, func() bool {
		_, snap = getStatus(t, base)
		return snap.Checks["queues"].Status == status.Pass
	})
	svc, _ := snap.Checks["services"].Data["jobs"].(map[string]any)["data"].(map[string]any)
	if svc["state"] != "running" || svc["restarts"] != float64(0) {
		t.Errorf("jobs service = %+v; want running, never restarted", svc)
	}
	queues := snap.Checks["queues"].Data["queues"].(map[string]any)
	def, ok := queues["default"].(map[string]any)
	if !ok || def["available"] == nil || def["running"] == nil {
		t.Errorf("queue depth = %+v; want the default queue by state", queues)
	}
	if pool := snap.Checks["pool"].Data; pool["total_conns"] == nil || pool["acquire_count"] == nil {
		t.Errorf("pool check = %+v", pool)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`uplink_service_state{service="jobs",state="running"} 1`,
		`uplink_service_restarts_total{service="pool"} 0`,
		`uplink_jobs{queue="default",state="available"}`,
		`uplink_jobs_running_here`,
		`uplink_pool_connections{state="total"}`,
		`uplink_pool_acquires_total`,
		`uplink_check_status{check="queues"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestLiteBacksUpWithRetention(t *testing.T) {
	dir := pgtest.BaseDir(t)
	bin := pgtest.Binaries(t)
	l, err := lite.New(lite.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, boot.Config{Provisioner: l, Backups: backup.Config{Interval: time.Second, Keep: 2}}, nil)
	testutil.Eventually(t, "ready", 60*time.Second, phaseIs(r.app, status.PhaseReady))
	bdir := backup.Dir(dir)
	testutil.Eventually(t, "a first backup", 20*time.Second, func() bool { n, _ := backup.List(bdir); return len(n) > 0 })
	// Files that are not Uplink's backups are never touched.
	foreign := []string{"notes.txt", "uplink-manual.dump"}
	for _, f := range foreign {
		if err := os.WriteFile(filepath.Join(bdir, f), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "three more backups", 20*time.Second, func() bool {
		return strings.Count(r.logs.String(), `"msg":"backup written"`) >= 4
	})
	// The worker prunes right after it logs the write: wait for that too.
	var names []string
	testutil.Eventually(t, "the 2 newest backups kept", 10*time.Second, func() bool {
		names, err = backup.List(bdir)
		return err == nil && len(names) == 2
	})
	for _, f := range foreign {
		if _, err := os.Stat(filepath.Join(bdir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// A backup is a whole pg_dump archive.
	out, err := exec.Command(bin.Path("pg_restore"), "--list", names[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "river_job") {
		t.Errorf("pg_restore --list %s: %v\n%s", names[1], err, out)
	}
	if snap := r.app.Status(); snap.Checks["queues"].Data["queues"].(map[string]map[string]int64)[backup.Queue] == nil {
		t.Errorf("the backup queue is not in the queue depth: %+v", snap.Checks["queues"])
	}
}
