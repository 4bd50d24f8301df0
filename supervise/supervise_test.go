package supervise_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// Leaked goroutines fail the package. Most tests also run in a synctest
// bubble, which fails on a goroutine still blocked when the test ends and
// runs back-off waits on a fake clock, so minutes of back-off take no time.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// recorder keeps the lifecycle calls of a group of services, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(event string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// fake is a Service that records its calls; start and stop, when set, say
// how its Start and Stop behave after recording.
type fake struct {
	name  string
	rec   *recorder
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error

	mu     sync.Mutex
	runCtx context.Context
}

func (f *fake) Name() string { return f.name }

func (f *fake) Start(ctx context.Context) error {
	f.rec.add("start " + f.name)
	f.mu.Lock()
	f.runCtx = ctx
	f.mu.Unlock()
	if f.start != nil {
		return f.start(ctx)
	}
	return nil
}

func (f *fake) Stop(ctx context.Context) error {
	f.rec.add("stop " + f.name)
	if f.stop != nil {
		return f.stop(ctx)
	}
	return nil
}

func (f *fake) lastRunCtx() context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runCtx
}

// watchedFake can end on its own: a test sends the reason on done.
type watchedFake struct {
	*fake
	done chan error
}

func (w *watchedFake) Done() <-chan error { return w.done }

func fakes(rec *recorder, names ...string) []*fake {
	var fs []*fake
	for _, n := range names {
		fs = append(fs, &fake{name: n, rec: rec})
	}
	return fs
}

func services(fs []*fake) []supervise.Service {
	var ss []supervise.Service
	for _, f := range fs {
		ss = append(ss, f)
	}
	return ss
}

func testConfig(t *testing.T) supervise.Config {
	return supervise.Config{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func newSupervisor(t *testing.T, cfg supervise.Config, services ...supervise.Service) *supervise.Supervisor {
	t.Helper()
	s, err := supervise.New(cfg, services...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// started returns a supervisor that has started services.
func started(t *testing.T, cfg supervise.Config, services ...supervise.Service) *supervise.Supervisor {
	t.Helper()
	s := newSupervisor(t, cfg, services...)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantEvents(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

func wantState(t *testing.T, s *supervise.Supervisor, name string, want supervise.State) status.Check {
	t.Helper()
	c, ok := s.Checks()[name]
	if !ok {
		t.Fatalf("no check for %s in %v", name, s.Checks())
	}
	if got := c.Data["state"]; got != string(want) {
		t.Errorf("%s: state %v, want %s (check %+v)", name, got, want, c)
	}
	return c
}

// failure waits for Failed; in a bubble the day passes in no time.
func failure(t *testing.T, s *supervise.Supervisor) error {
	t.Helper()
	select {
	case err := <-s.Failed():
		return err
	case <-time.After(24 * time.Hour):
		t.Fatal("Failed delivered nothing in a day")
		return nil
	}
}

func wantNoFailure(t *testing.T, s *supervise.Supervisor) {
	t.Helper()
	select {
	case err := <-s.Failed():
		t.Fatalf("Failed delivered %v", err)
	default:
	}
}

func stop(t *testing.T, s *supervise.Supervisor) {
	t.Helper()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestStartInOrderStopInReverse(t *testing.T) {
	rec := &recorder{}
	s := newSupervisor(t, testConfig(t), services(fakes(rec, "pool", "jobs", "app"))...)
	for _, name := range []string{"pool", "jobs", "app"} {
		if c := wantState(t, s, name, supervise.StateStopped); c.Detail != "not started" {
			t.Errorf("%s before Start: detail %q", name, c.Detail)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pool", "jobs", "app"} {
		if c := wantState(t, s, name, supervise.StateRunning); c.Status != status.Pass {
			t.Errorf("%s running: status %s", name, c.Status)
		}
	}
	stop(t, s)
	wantEvents(t, rec, "start pool", "start jobs", "start app", "stop app", "stop jobs", "stop pool")
	for _, name := range []string{"pool", "jobs", "app"} {
		wantState(t, s, name, supervise.StateStopped)
	}
}

func TestFailedStartRollsBackInReverse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(context.Context) error
		check func(t *testing.T, err error)
	}{
		{
			name:  "error",
			start: func(context.Context) error { return errBoom },
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errBoom) {
					t.Errorf("Start = %v, want %v", err, errBoom)
				}
			},
		},
		{
			name:  "panic",
			start: func(context.Context) error { panic("half-open") },
			check: func(t *testing.T, err error) {
				var pe *supervise.PanicError
				if !errors.As(err, &pe) || pe.Value != "half-open" || len(pe.Stack) == 0 {
					t.Errorf("Start = %v, want a PanicError with value and stack", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			fs := fakes(rec, "a", "b", "c", "d")
			fs[2].start = tc.start
			s := newSupervisor(t, testConfig(t), services(fs)...)
			err := s.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), "starting c") {
				t.Fatalf("Start = %v, want an error naming c", err)
			}
			tc.check(t, err)
			// c is stopped too: Stop cleans up what a failed Start left.
			wantEvents(t, rec, "start a", "start b", "start c", "stop c", "stop b", "stop a")
			if c := wantState(t, s, "c", supervise.StateFailed); c.Status != status.Fail || c.LastError == "" {
				t.Errorf("c: %+v, want fail with last error", c)
			}
			wantState(t, s, "a", supervise.StateStopped)
			wantState(t, s, "d", supervise.StateStopped)
			for _, f := range fs[:2] {
				if f.lastRunCtx().Err() == nil {
					t.Errorf("%s: run context still live after rollback", f.name)
				}
			}
			stop(t, s)
			if n := len(rec.get()); n != 6 {
				t.Errorf("Stop after a failed Start called services again: %q", rec.get())
			}
		})
	}
}

func TestStartCancelledRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(ctx context.Context) error
	}{
		{"service returns the ctx error", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}},
		// A Start that returns nil although its ctx ended did not start a
		// service the supervisor can keep: its run context is gone.
		{"service ignores the cancel", func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				fs := fakes(rec, "a", "b", "c")
				fs[1].start = tc.start
				s := newSupervisor(t, testConfig(t), services(fs)...)
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error)
				go func() { errc <- s.Start(ctx) }()
				synctest.Wait()
				cancel()
				if err := <-errc; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "starting b") {
					t.Errorf("Start = %v, want context.Canceled naming b", err)
				}
				wantEvents(t, rec, "start a", "start b", "stop b", "stop a")
			})
		})
	}
}

func TestStopCancelsAStartInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		fs := fakes(rec, "a", "b")
		fs[1].start = func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}
		s := newSupervisor(t, testConfig(t), services(fs)...)
		errc := make(chan error)
		go func() { errc <- s.Start(context.Background()) }()
		synctest.Wait()
		stop(t, s)
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Start = %v, want context.Canceled", err)
		}
		wantEvents(t, rec, "start a", "start b", "stop b", "stop a")
	})
}

// The context a service gets in Start is its lifetime: the caller's Start
// context ending must not stop services behind the ordered Stop's back.
func TestRunContextLastsUntilStop(t *testing.T) {
	rec := &recorder{}
	fs := fakes(rec, "jobs")
	s := newSupervisor(t, testConfig(t), services(fs)...)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	run := fs[0].lastRunCtx()
	if run.Err() != nil {
		t.Fatal("run context ended with Start's context")
	}
	stop(t, s)
	if run.Err() == nil {
		t.Fatal("run context still live after Stop")
	}
}

func TestFuncRestartedWithBackoffUntilCrashLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs []time.Time
		worker := supervise.Func("worker", func(ctx context.Context) error {
			runs = append(runs, time.Now())
			return errBoom
		})
		s := newSupervisor(t, testConfig(t), worker) // defaults: 1 s → 30 s, 5 restarts in 10 min
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		err := failure(t, s)

		// Each wait is drawn from [d/2, d], d doubling from 1 s.
		if len(runs) != 6 {
			t.Fatalf("%d runs, want 6 (5 restarts)", len(runs))
		}
		for i := 1; i < len(runs); i++ {
			d := time.Second << (i - 1)
			if gap := runs[i].Sub(runs[i-1]); gap < d/2 || gap > d {
				t.Errorf("wait before restart %d: %s, want within [%s, %s]", i, gap, d/2, d)
			}
		}

		var loop *supervise.CrashLoopError
		if !errors.As(err, &loop) || loop.Service != "worker" || loop.Crashes != 6 || !errors.Is(err, errBoom) {
			t.Fatalf("Failed = %v, want a crash loop of worker after 6 crashes of boom", err)
		}
		if !status.IsAction(err) || status.HintOf(err) == "" {
			t.Errorf("Failed = %v, want an action error with a hint", err)
		}
		c := wantState(t, s, "worker", supervise.StateFailed)
		if c.Status != status.Fail || c.Data["restarts"] != 5 || c.LastError != errBoom.Error() || c.Hint == "" {
			t.Errorf("check %+v, want fail, 5 restarts, last error boom, a hint", c)
		}
		stop(t, s)
		wantState(t, s, "worker", supervise.StateFailed) // stays visible through shutdown
	})
}

func TestFuncEndingWithoutErrorIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runs := 0
		worker := supervise.Func("worker", func(ctx context.Context) error {
			runs++
			if runs == 1 {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		})
		s := started(t, testConfig(t), worker)
		time.Sleep(time.Second) // the longest first back-off
		synctest.Wait()
		c := wantState(t, s, "worker", supervise.StateRunning)
		if runs != 2 || c.Data["restarts"] != 1 || c.LastError != supervise.ErrExited.Error() {
			t.Errorf("runs %d, check %+v; want 2 runs, 1 restart, last error %q", runs, c, supervise.ErrExited)
		}
		stop(t, s)
	})
}

func TestBackoffStartsOverAfterALongRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ends []time.Time
		var starts []time.Time
		worker := supervise.Func("worker", func(ctx context.Context) error {
			starts = append(starts, time.Now())
			if len(starts) == 4 {
				time.Sleep(time.Minute) // longer than MaxBackoff: healthy
			}
			if len(starts) == 6 {
				<-ctx.Done()
				return ctx.Err()
			}
			ends = append(ends, time.Now())
			return errBoom
		})
		cfg := testConfig(t)
		cfg.MaxRestarts = 100
		s := started(t, cfg, worker)
		time.Sleep(time.Hour)
		synctest.Wait()
		if len(starts) != 6 {
			t.Fatalf("%d runs, want 6", len(starts))
		}
		// Before the long run the waits grew to [2 s, 4 s]; after it, the
		// first wait is back to [0.5 s, 1 s].
		if gap := starts[3].Sub(ends[2]); gap < 2*time.Second {
			t.Errorf("third wait %s, want at least 2 s", gap)
		}
		if gap := starts[4].Sub(ends[3]); gap < time.Second/2 || gap > time.Second {
			t.Errorf("wait after a long run %s, want within [0.5 s, 1 s]", gap)
		}
		stop(t, s)
	})
}

func TestPanickingFuncIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		runs := 0
		worker := supervise.Func("worker", func(ctx context.Context) error {
			runs++
			if runs == 1 {
				panicInWorker()
			}
			<-ctx.Done()
			return ctx.Err()
		})
		cfg := testConfig(t)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		s := started(t, cfg, worker)
		time.Sleep(time.Second)
		synctest.Wait()
		c := wantState(t, s, "worker", supervise.StateRunning)
		if runs != 2 || c.Data["restarts"] != 1 || c.LastError != "panic: worker is broken" {
			t.Errorf("runs %d, check %+v; want 2 runs, 1 restart, the panic as last error", runs, c)
		}
		stop(t, s)
		if out := logs.String(); !strings.Contains(out, "stack=") || !strings.Contains(out, "panicInWorker") {
			t.Errorf("crash log has no stack naming the panicking function:\n%s", out)
		}
		wantNoFailure(t, s)
	})
}

func panicInWorker() { panic("worker is broken") }

func TestRepeatedPanicsFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		worker := supervise.Func("worker", func(ctx context.Context) error { panic(errBoom) })
		cfg := testConfig(t)
		cfg.MaxRestarts = 2
		// A panic is a bug even when its value looks like an outage.
		cfg.IsOutage = func(err error) bool { return errors.Is(err, errBoom) }
		s := started(t, cfg, worker)
		err := failure(t, s)
		var loop *supervise.CrashLoopError
		var pe *supervise.PanicError
		if !errors.As(err, &loop) || loop.Crashes != 3 || !errors.As(err, &pe) || !errors.Is(err, errBoom) {
			t.Fatalf("Failed = %v, want a crash loop after 3 panics with boom", err)
		}
		if !strings.Contains(err.Error(), "panic: boom") {
			t.Errorf("Failed = %q, want the panic as the reason", err)
		}
		if c := wantState(t, s, "worker", supervise.StateFailed); c.Status != status.Fail {
			t.Errorf("check %+v, want fail", c)
		}
		stop(t, s)
	})
}

func TestOutagesDoNotCountAsCrashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errOutage := errors.New("database unreachable")
		// Two crashes, the limit, among many outages; an outage that
		// counted would make it give up.
		reasons := []error{errOutage, errOutage, errBoom, errOutage, errOutage, errOutage, errBoom, errOutage, errOutage}
		runs := 0
		worker := supervise.Func("worker", func(ctx context.Context) error {
			runs++
			if runs <= len(reasons) {
				return reasons[runs-1]
			}
			<-ctx.Done()
			return ctx.Err()
		})
		cfg := testConfig(t)
		cfg.MaxRestarts = 2
		cfg.IsOutage = func(err error) bool { return errors.Is(err, errOutage) }
		s := started(t, cfg, worker)
		time.Sleep(5 * time.Minute) // back-off is capped at 30 s
		synctest.Wait()
		wantNoFailure(t, s)
		c := wantState(t, s, "worker", supervise.StateRunning)
		if c.Data["restarts"] != len(reasons) {
			t.Errorf("check %+v, want %d restarts", c, len(reasons))
		}
		stop(t, s)
	})
}

func TestOutageCheckWhileRestarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errOutage := errors.New("database unreachable")
		worker := supervise.Func("worker", func(ctx context.Context) error { return errOutage })
		cfg := testConfig(t)
		cfg.IsOutage = func(err error) bool { return errors.Is(err, errOutage) }
		s := started(t, cfg, worker)
		synctest.Wait()
		c := wantState(t, s, "worker", supervise.StateRestarting)
		if c.Status != status.Warn || c.Detail != "restarting after an outage" || c.Attempts != 1 ||
			c.LastError != errOutage.Error() || c.NextRetry.Before(time.Now()) {
			t.Errorf("check %+v, want warn, outage detail, 1 attempt, the error and a next retry", c)
		}
		stop(t, s)
	})
}

func TestCrashesOutsideTheWindowDoNotCount(t *testing.T) {
	for _, tc := range []struct {
		spacing time.Duration
		fails   bool
	}{
		{spacing: 2 * time.Minute, fails: false},
		{spacing: 10 * time.Second, fails: true},
	} {
		t.Run(tc.spacing.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A clock of our own, through Config.Now: each crash
				// happens tc.spacing after the one before.
				var mu sync.Mutex
				now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
				clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
				runs := 0
				worker := supervise.Func("worker", func(ctx context.Context) error {
					runs++
					if runs <= 5 {
						mu.Lock()
						now = now.Add(tc.spacing)
						mu.Unlock()
						return errBoom
					}
					<-ctx.Done()
					return ctx.Err()
				})
				cfg := testConfig(t)
				cfg.MaxRestarts, cfg.Window, cfg.Now = 1, time.Minute, clock
				s := started(t, cfg, worker)
				time.Sleep(time.Hour)
				synctest.Wait()
				if tc.fails {
					if err := failure(t, s); !strings.Contains(err.Error(), "crashed 2 times within 1m0s") {
						t.Errorf("Failed = %v, want 2 crashes within 1m0s", err)
					}
					wantState(t, s, "worker", supervise.StateFailed)
				} else {
					wantNoFailure(t, s)
					if c := wantState(t, s, "worker", supervise.StateRunning); c.Since != clock() {
						t.Errorf("since %s, want the injected clock's %s", c.Since, clock())
					}
				}
				stop(t, s)
			})
		})
	}
}

func TestWatchedServiceIsStoppedBeforeRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		w := &watchedFake{fake: &fake{name: "jobs", rec: rec}, done: make(chan error, 1)}
		s := started(t, testConfig(t), w)
		first := w.lastRunCtx()
		w.done <- errBoom
		time.Sleep(time.Second)
		synctest.Wait()
		wantEvents(t, rec, "start jobs", "stop jobs", "start jobs")
		if first.Err() == nil {
			t.Error("the ended run's context is still live")
		}
		if c := wantState(t, s, "jobs", supervise.StateRunning); c.Data["restarts"] != 1 {
			t.Errorf("check %+v, want 1 restart", c)
		}
		stop(t, s)
		wantEvents(t, rec, "start jobs", "stop jobs", "start jobs", "stop jobs")
	})
}

func TestStopDuringBackoffReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runs := 0
		worker := supervise.Func("worker", func(ctx context.Context) error {
			runs++
			return errBoom
		})
		cfg := testConfig(t)
		cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
		s := started(t, cfg, worker)
		synctest.Wait()
		c := wantState(t, s, "worker", supervise.StateRestarting)
		if wait := time.Until(c.NextRetry); wait < 30*time.Minute || wait > time.Hour {
			t.Errorf("next retry in %s, want within [30m, 1h]", wait)
		}
		begin := time.Now()
		stop(t, s)
		if took := time.Since(begin); took > 0 {
			t.Errorf("Stop took %s of fake time, want none", took)
		}
		if runs != 1 {
			t.Errorf("%d runs, want 1", runs)
		}
		wantState(t, s, "worker", supervise.StateStopped)
	})
}

func TestStopIsIdempotent(t *testing.T) {
	rec := &recorder{}
	s := started(t, testConfig(t), services(fakes(rec, "a", "b"))...)
	stop(t, s)
	stop(t, s)
	wantEvents(t, rec, "start a", "start b", "stop b", "stop a")
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestStopBeforeStart(t *testing.T) {
	rec := &recorder{}
	s := newSupervisor(t, testConfig(t), services(fakes(rec, "a"))...)
	stop(t, s)
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
	wantEvents(t, rec)
}

func TestStopIsBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		fs := fakes(rec, "a", "b", "c")
		release, returned := make(chan struct{}), make(chan struct{})
		fs[1].stop = func(context.Context) error { // ignores ctx
			defer close(returned)
			<-release
			return nil
		}
		s := started(t, testConfig(t), services(fs)...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		begin := time.Now()
		err := s.Stop(ctx)
		if took := time.Since(begin); took != 5*time.Second {
			t.Errorf("Stop took %s, want the 5 s of its ctx", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stopping b") {
			t.Errorf("Stop = %v, want a deadline error naming b", err)
		}
		if strings.Contains(err.Error(), "stopping a") || strings.Contains(err.Error(), "stopping c") {
			t.Errorf("Stop = %v, blames services that stopped", err)
		}
		// a is still stopped after b, with the ended ctx; b's run context
		// is cancelled: the hard stop.
		wantEvents(t, rec, "start a", "start b", "start c", "stop c", "stop b", "stop a")
		if fs[1].lastRunCtx().Err() == nil {
			t.Error("b's run context is still live")
		}
		close(release)
		<-returned
		synctest.Wait() // the goroutine left waiting on b's Stop is gone
	})
}

func TestNewRejects(t *testing.T) {
	rec := &recorder{}
	for _, tc := range []struct {
		name     string
		cfg      supervise.Config
		services []supervise.Service
		want     string
	}{
		{"nil service", supervise.Config{}, []supervise.Service{nil}, "service 0 is nil"},
		{"no name", supervise.Config{}, services(fakes(rec, "")), "has no name"},
		{"duplicate", supervise.Config{}, services(fakes(rec, "a", "a")), `two services named "a"`},
		{"backoff", supervise.Config{MinBackoff: time.Minute, MaxBackoff: time.Second}, nil, "above MaxBackoff"},
		{"negative", supervise.Config{MaxRestarts: -1}, nil, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := supervise.New(tc.cfg, tc.services...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
