package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/status"
)

// Config tunes a Supervisor. A zero field takes the default it names.
type Config struct {
	// MinBackoff is the wait before the first restart after a failure;
	// each further failure in a row doubles it, up to MaxBackoff. Every
	// wait is drawn at random from [d/2, d], so replicas that lost the
	// same database do not retry in step. A run that lasted longer than
	// MaxBackoff starts the doubling over. Defaults: 1 s and 30 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxRestarts is how many crashes of one service within Window are
	// restarted; the next one within Window makes it fail for good.
	// Defaults: 5 within 10 minutes.
	MaxRestarts int
	Window      time.Duration
	// IsOutage reports whether an error comes from a dependency outage
	// (the database is unreachable) rather than from the service. Such a
	// failure is retried with the same back-off but is not a crash, so an
	// outage never makes the supervisor give up. Panics are always
	// crashes. Default: no error is an outage.
	IsOutage func(error) bool
	// Logger receives starts and stops (Debug), outages (Warn), crashes
	// and give-ups (Error). Default: slog.Default().
	Logger *slog.Logger
	// Now tells the time for crash windows and checks. Default: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.MinBackoff < 0 || c.MaxBackoff < 0 || c.MaxRestarts < 0 || c.Window < 0 {
		return c, errors.New("supervise: negative MinBackoff, MaxBackoff, MaxRestarts or Window")
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.MinBackoff > c.MaxBackoff {
		return c, fmt.Errorf("supervise: MinBackoff %s is above MaxBackoff %s", c.MinBackoff, c.MaxBackoff)
	}
	if c.MaxRestarts == 0 {
		c.MaxRestarts = 5
	}
	if c.Window == 0 {
		c.Window = 10 * time.Minute
	}
	if c.IsOutage == nil {
		c.IsOutage = func(error) bool { return false }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// CrashLoopError is why a service was given up on. Failed delivers it
// wrapped in a *status.ActionError, since only a person can fix the cause.
type CrashLoopError struct {
	Service string
	Crashes int
	Window  time.Duration
	// Err is the last crash.
	Err error
}

func (e *CrashLoopError) Error() string {
	return fmt.Sprintf("service %s crashed %d times within %s: %v", e.Service, e.Crashes, e.Window, e.Err)
}

func (e *CrashLoopError) Unwrap() error { return e.Err }

const crashLoopHint = "the log holds each crash (with the stack for a panic); fix the cause and restart uplink"

// Supervisor starts services in order, restarts those that fail, and stops
// them in reverse order. Its methods are safe for concurrent use.
type Supervisor struct {
	cfg      Config
	units    []*unit
	failed   chan error
	failOnce sync.Once
	stopOnce sync.Once

	mu          sync.Mutex
	phase       phase
	cancelStart context.CancelFunc
	startDone   chan struct{}
}

type phase int

const (
	idle phase = iota
	starting
	started
	stopped
)

// New checks cfg and the services (named, names unique) and returns a
// supervisor that has not started them yet.
func New(cfg Config, services ...Service) (*Supervisor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, failed: make(chan error, 1)}
	seen := make(map[string]bool, len(services))
	now := cfg.Now()
	for i, svc := range services {
		if svc == nil {
			return nil, fmt.Errorf("supervise: service %d is nil", i)
		}
		name := svc.Name()
		switch {
		case name == "":
			return nil, fmt.Errorf("supervise: service %d has no name", i)
		case seen[name]:
			return nil, fmt.Errorf("supervise: two services named %q", name)
		}
		seen[name] = true
		s.units = append(s.units, &unit{
			sup:   s,
			svc:   svc,
			name:  name,
			log:   cfg.Logger.With(logKeyService, name),
			state: StateStopped,
			note:  "not started",
			since: now,
		})
	}
	return s, nil
}

// Start starts the services in order, each once the one before it runs.
// If one fails to start (or panics, or ctx ends first), Start stops those
// already started in reverse order, bounded by ctx, and returns why. Start
// runs once; later calls return an error.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.phase != idle {
		s.mu.Unlock()
		return errors.New("supervise: Start called twice or after Stop")
	}
	// Stop may cut a Start short: it cancels startCtx and waits for
	// startDone.
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.phase, s.cancelStart, s.startDone = starting, cancel, make(chan struct{})
	defer close(s.startDone)
	s.mu.Unlock()

	for i, u := range s.units {
		if err := u.start(startCtx); err != nil {
			err = fmt.Errorf("supervise: starting %s: %w", u.name, err)
			s.rollback(ctx, s.units[:i])
			return err
		}
	}
	// Checked under mu: Stop cancels startCtx only while the phase is
	// starting, so either Stop sees started or we see the cancel.
	s.mu.Lock()
	if err := startCtx.Err(); err != nil {
		s.mu.Unlock()
		s.rollback(ctx, s.units)
		return fmt.Errorf("supervise: starting: %w", context.Cause(startCtx))
	}
	s.phase = started
	s.mu.Unlock()
	return nil
}

func (s *Supervisor) rollback(ctx context.Context, started []*unit) {
	if err := stopAll(ctx, started); err != nil {
		s.cfg.Logger.Error("supervise: rolling back a failed start", logKeyErr, err)
	}
	s.mu.Lock()
	s.phase = stopped
	s.mu.Unlock()
}

// Stop stops the services in reverse order. Each service's Stop gets ctx,
// then its run context is cancelled. When ctx ends first, Stop still walks
// the rest, whose Stop sees the ended ctx (stop now) and gets a second to
// return, and it returns an error naming each service that did not stop
// in time. A service whose Stop ignores ctx keeps one goroutine of ours
// until its Stop returns. A Start in progress is cancelled and waited for.
// Calls after the first return nil.
func (s *Supervisor) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		ph, startDone := s.phase, s.startDone
		if ph == starting {
			s.cancelStart()
		}
		s.mu.Unlock()
		if ph == starting {
			// Start rolls back by itself once it sees the cancel.
			if !await(ctx, startDone) {
				err = fmt.Errorf("supervise: stopping: Start still running: %w", context.Cause(ctx))
			}
			return
		}
		s.mu.Lock()
		s.phase = stopped
		s.mu.Unlock()
		if ph == started {
			err = stopAll(ctx, s.units)
		}
	})
	return err
}

func stopAll(ctx context.Context, units []*unit) error {
	var errs []error
	for i := len(units) - 1; i >= 0; i-- {
		errs = append(errs, units[i].stop(ctx))
	}
	return errors.Join(errs...)
}

// Failed delivers one error, once, when a service crashed more than
// MaxRestarts times within Window: a *status.ActionError wrapping a
// *CrashLoopError. The service is stopped; the others keep running until
// Stop.
func (s *Supervisor) Failed() <-chan error { return s.failed }

func (s *Supervisor) fail(err error) {
	s.failOnce.Do(func() { s.failed <- err })
}

// Checks reports each service by name for /status: Data holds "state" (a
// State) and "restarts"; NextRetry is set while a restart waits.
func (s *Supervisor) Checks() map[string]status.Check {
	checks := make(map[string]status.Check, len(s.units))
	for _, u := range s.units {
		checks[u.name] = u.check()
	}
	return checks
}

// Log attribute keys.
const (
	logKeyService = "service"
	logKeyErr     = "err"
	logKeyStack   = "stack"
	logKeyRetryIn = "retry_in"
	logKeyAttempt = "attempt"
	logKeyOutage  = "outage"
)
