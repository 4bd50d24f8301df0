package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/internal/backoff"
	"github.com/uplinkhq/uplink/status"
)

// State is where one service stands.
type State string

const (
	StateStopped    State = "stopped"
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed"
)

// errStopped is the cause of a run context cancelled by a stop.
var errStopped = errors.New("supervise: service stopped")

// unit is one service under supervision. Its runs are started and ended by
// Supervisor.Start, then by its own watch goroutine, then by Supervisor.Stop,
// never two of them at once: Stop ends the watch goroutine and waits for it
// before it touches the service.
type unit struct {
	sup  *Supervisor
	svc  Service
	name string
	log  *slog.Logger

	mu        sync.Mutex
	state     State
	note      string // Detail in the check
	hint      string
	since     time.Time
	restarts  int
	failures  int         // in a row: drives the back-off
	crashes   []time.Time // within Window: drives the give-up
	lastErr   string
	lastErrAt time.Time
	nextRetry time.Time
	runCancel context.CancelCauseFunc // the current run's context; nil when none runs
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

func (u *unit) setState(st State, note string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.setStateLocked(st, note)
}

func (u *unit) setStateLocked(st State, note string) {
	if u.state != st {
		u.since = u.sup.cfg.Now()
	}
	u.state, u.note = st, note
	if st != StateRestarting {
		u.nextRetry = time.Time{}
	}
}

// start runs the service for the first time and, if it can end on its own,
// starts the goroutine that watches it.
func (u *unit) start(ctx context.Context) error {
	done, err := u.run(ctx)
	if err != nil {
		u.mu.Lock()
		u.lastErr, u.lastErrAt = err.Error(), u.sup.cfg.Now()
		u.setStateLocked(StateFailed, "failed to start")
		u.mu.Unlock()
		u.logErr("supervise: service failed to start", err)
		return err
	}
	if done == nil {
		return nil
	}
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	u.mu.Lock()
	u.stopWatch, u.watchDone = stopWatch, make(chan struct{})
	watchDone := u.watchDone
	u.mu.Unlock()
	go func() {
		defer close(watchDone)
		u.watch(watchCtx, done)
	}()
	return nil
}

// run starts one run of the service, bounded by bound. The run's own
// context outlives bound (it is the service's lifetime) unless bound ends
// while Start is still running. A failed start is cleaned up with Stop.
func (u *unit) run(bound context.Context) (done <-chan error, err error) {
	u.setState(StateStarting, "starting")
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(bound))
	unbind := context.AfterFunc(bound, func() { cancel(context.Cause(bound)) })
	err = protect(func() error { return u.svc.Start(ctx) })
	if !unbind() && err == nil {
		err = context.Cause(bound) // the run's context is already cancelled
	}
	if err != nil {
		if stopErr := protect(func() error { return u.svc.Stop(bound) }); stopErr != nil {
			u.log.Warn("supervise: cleaning up after a failed start", logKeyErr, stopErr)
		}
		cancel(errStopped)
		return nil, err
	}
	if w, ok := u.svc.(Watched); ok {
		done = w.Done()
	}
	u.mu.Lock()
	u.runCancel = cancel
	u.setStateLocked(StateRunning, "running")
	u.mu.Unlock()
	u.log.Debug("supervise: service started")
	return done, nil
}

// endRun stops the current run, then cancels its context.
func (u *unit) endRun(ctx context.Context) error {
	err := protect(func() error { return u.svc.Stop(ctx) })
	u.cancelRun()
	return err
}

func (u *unit) cancelRun() {
	u.mu.Lock()
	cancel := u.runCancel
	u.runCancel = nil
	u.mu.Unlock()
	if cancel != nil {
		cancel(errStopped)
	}
}

// watch restarts the service each time a run ends on its own, until ctx
// ends or the service crashed too often.
func (u *unit) watch(ctx context.Context, done <-chan error) {
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case err = <-done:
		}
		if err == nil {
			err = ErrExited
		}
		u.mu.Lock()
		ranFor := u.sup.cfg.Now().Sub(u.since)
		u.mu.Unlock()
		if stopErr := u.endRun(ctx); stopErr != nil {
			u.log.Warn("supervise: stopping a service that ended", logKeyErr, stopErr)
		}
		for {
			wait, giveUp := u.failure(err, ranFor)
			if giveUp {
				return
			}
			if !sleep(ctx, wait) {
				return
			}
			u.mu.Lock()
			u.restarts++
			u.mu.Unlock()
			if done, err = u.run(ctx); err == nil {
				break
			}
			if ctx.Err() != nil {
				return // Stop cut the restart short: not a crash
			}
			ranFor = 0
		}
	}
}

// failure records why a run ended (or a restart failed) and decides what
// follows: a wait before the next start, or giving up.
func (u *unit) failure(err error, ranFor time.Duration) (wait time.Duration, giveUp bool) {
	cfg := &u.sup.cfg
	var pe *PanicError
	panicked := errors.As(err, &pe)
	outage := !panicked && cfg.IsOutage(err)
	now := cfg.Now()

	u.mu.Lock()
	if ranFor > cfg.MaxBackoff {
		u.failures = 0
	}
	u.failures++
	attempt := u.failures
	u.lastErr, u.lastErrAt = err.Error(), now
	var loop *CrashLoopError
	if !outage {
		recent := u.crashes[:0]
		for _, t := range u.crashes {
			if now.Sub(t) < cfg.Window {
				recent = append(recent, t)
			}
		}
		u.crashes = append(recent, now)
		if len(u.crashes) > cfg.MaxRestarts {
			loop = &CrashLoopError{Service: u.name, Crashes: len(u.crashes), Window: cfg.Window, Err: err}
			u.setStateLocked(StateFailed, fmt.Sprintf("gave up after %d crashes within %s", len(u.crashes), cfg.Window))
			u.hint = crashLoopHint
		}
	}
	if loop == nil {
		wait = backoff.Exp(attempt, cfg.MinBackoff, cfg.MaxBackoff)
		note := "restarting after a crash"
		if outage {
			note = "restarting after an outage"
		}
		u.setStateLocked(StateRestarting, note)
		u.nextRetry = now.Add(wait)
	}
	u.mu.Unlock()

	attrs := []any{logKeyErr, err, logKeyAttempt, attempt}
	if panicked {
		attrs = append(attrs, logKeyStack, string(pe.Stack))
	}
	switch {
	case loop != nil:
		u.log.Error("supervise: service crashed too often, giving up", attrs...)
		u.sup.fail(&status.ActionError{Problem: "giving up on a service", Hint: crashLoopHint, Err: loop})
		return 0, true
	case outage:
		u.log.Warn("supervise: service lost a dependency, restarting", append(attrs, logKeyRetryIn, wait, logKeyOutage, true)...)
	default:
		u.log.Error("supervise: service crashed, restarting", append(attrs, logKeyRetryIn, wait)...)
	}
	return wait, false
}

func (u *unit) logErr(msg string, err error) {
	attrs := []any{logKeyErr, err}
	if pe := (*PanicError)(nil); errors.As(err, &pe) {
		attrs = append(attrs, logKeyStack, string(pe.Stack))
	}
	u.log.Error(msg, attrs...)
}

// stop ends the watch goroutine, then the current run, bounded by ctx.
func (u *unit) stop(ctx context.Context) error {
	u.mu.Lock()
	stopWatch, watchDone := u.stopWatch, u.watchDone
	u.mu.Unlock()
	if stopWatch != nil {
		stopWatch()
		if !await(ctx, watchDone) {
			// The watch goroutine is stuck in the service's Start or Stop;
			// cancelling the run's context is all that is left to try.
			u.cancelRun()
			return fmt.Errorf("supervise: stopping %s: %w", u.name, context.Cause(ctx))
		}
	}
	u.mu.Lock()
	running := u.runCancel != nil
	u.mu.Unlock()
	var err error
	if running {
		err = bounded(ctx, func() error { return u.endRun(ctx) })
		u.cancelRun()
	}
	u.mu.Lock()
	if u.state != StateFailed {
		u.setStateLocked(StateStopped, "stopped")
	}
	u.mu.Unlock()
	if err != nil {
		u.logErr("supervise: service did not stop cleanly", err)
		return fmt.Errorf("supervise: stopping %s: %w", u.name, err)
	}
	if running {
		u.log.Debug("supervise: service stopped")
	}
	return nil
}

func (u *unit) check() status.Check {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := status.Check{
		Status:      status.Warn,
		Detail:      u.note,
		Since:       u.since,
		LastError:   u.lastErr,
		LastErrorAt: u.lastErrAt,
		Data:        map[string]any{"state": string(u.state), "restarts": u.restarts},
	}
	switch u.state {
	case StateRunning:
		c.Status = status.Pass
	case StateRestarting:
		c.Attempts, c.NextRetry = u.failures, u.nextRetry
	case StateFailed:
		c.Status, c.Hint = status.Fail, u.hint
	}
	return c
}

// lateGrace is how long a service told to stop after Stop's ctx ended may
// take. Its Stop sees the ended ctx and should return at once; the grace
// only lets it run, so that the services after a hung one are still
// stopped (the pool closed after a stuck job client) before Stop returns.
const lateGrace = time.Second

// bounded returns fn's result, or ctx's cause if ctx ends first (see
// lateGrace); fn then finishes in the background.
func bounded(ctx context.Context, fn func() error) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = fn()
	}()
	if !await(ctx, done) {
		return context.Cause(ctx)
	}
	return err
}

// await waits for done until ctx ends, or for lateGrace if it already had,
// and reports whether done closed.
func await(ctx context.Context, done <-chan struct{}) bool {
	if ctx.Err() != nil {
		t := time.NewTimer(lateGrace)
		defer t.Stop()
		select {
		case <-done:
			return true
		case <-t.C:
			return false
		}
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		// Both may be ready; a service that made it counts as stopped.
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
