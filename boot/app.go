package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uplinkhq/uplink/health"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// Log attribute keys, constant so that log queries keep working.
const (
	logPhase  = "phase"
	logFrom   = "from"
	logReason = "reason"
	logHint   = "hint"
	logErr    = "err"
	logAddr   = "addr"
	logMode   = "mode"
	logStep   = "step"
	logRetry  = "next_retry"
	logTry    = "attempt"
)

// App is one Uplink-managed service: its status endpoints, its database
// and everything started once that database is ready.
type App struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	listenOnce sync.Once
	ln         net.Listener
	listenErr  error
	running    atomic.Bool
	beat       atomic.Int64 // unix nanos of the main loop's last turn

	mu          sync.Mutex
	phase       status.Phase
	phaseSince  time.Time
	reason      string
	hint        string
	transitions []status.Transition
	mode        provision.Mode
	prov        provision.Provisioner
	checks      map[string]status.Check // checks boot owns itself
	retries     map[string]status.Check // steps waiting to retry, by check name
	dbDown      *status.Check           // set by the watch while the database is lost
	dsn         provision.DSN
	pool        *pgxpool.Pool
	early       *pgxpool.Pool // the pool before phase starting: see earlyPool
	services    []supervise.Service
	sup         *supervise.Supervisor
	mig         *migrate.Migrator
	jobs        *jobs.Service // the job queue: made by New, started after the pool

	tk taskState // startup tasks and hooks (tasks.go), under its own lock
}

// New checks cfg and returns an App that has not started anything yet.
// Mistakes an operator makes (an unknown mode, a bad URL) are not errors
// here: Run reports them in /status, phase error, with HTTP up.
func New(cfg Config) (*App, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	a := &App{
		cfg:        cfg,
		log:        cfg.Logger,
		started:    now,
		phase:      status.PhaseProvisioning,
		phaseSince: now,
		checks:     map[string]status.Check{},
		retries:    map[string]status.Check{},
	}
	a.transitions = []status.Transition{{Phase: a.phase, At: now, Reason: "process started"}}
	if err := a.initJobs(); err != nil {
		return nil, err
	}
	return a, nil
}

// Listen binds the HTTP address. Run calls it when the caller has not, so
// call it first only to learn Addr before Run (a test on ":0").
func (a *App) Listen() error {
	a.listenOnce.Do(func() {
		ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			hint := "set UPLINK_HTTP_ADDR (or --http) to a free address"
			if errors.Is(err, syscall.EADDRINUSE) {
				hint = fmt.Sprintf("another program listens on %s; stop it or %s", a.cfg.HTTPAddr, hint)
			}
			a.listenErr = &status.ActionError{Problem: "cannot serve HTTP on " + a.cfg.HTTPAddr, Hint: hint, Err: err}
			return
		}
		a.ln = ln
	})
	return a.listenErr
}

// Addr is the HTTP server's address once Listen succeeded, else nil.
func (a *App) Addr() net.Addr {
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Pool is the application's connection pool, nil until phase starting.
// Services started by boot may use it from their Start on.
func (a *App) Pool() *pgxpool.Pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pool
}

// DSN is the connection string boot provisioned, "" before. It carries
// the password: its String form is redacted.
func (a *App) DSN() provision.DSN {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dsn
}

// Run serves HTTP, walks the boot phases and, once ctx ends, stops
// everything in reverse order and returns. It returns an error only when
// it cannot serve at all (the HTTP address is taken) or when stopping did
// not finish cleanly within Config.ShutdownTimeout. Run may be called once.
func (a *App) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("boot: Run called twice")
	}
	if err := a.Listen(); err != nil {
		a.log.Error(err.Error(), logHint, status.HintOf(err))
		return err
	}
	a.beat.Store(time.Now().UnixNano())
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	httpDone := make(chan error, 1)

	// Chosen before serving, so that the first /status already names the
	// mode and shows the provisioner's progress.
	prov, err := a.provisioner()
	if err == nil {
		a.mu.Lock()
		a.prov, a.mode = prov, prov.Mode()
		a.mu.Unlock()
	}
	go func() { httpDone <- srv.Serve(a.ln) }()
	a.log.Info("serving status", logAddr, a.ln.Addr().String())

	bootCtx, cancelBoot := context.WithCancel(ctx)
	defer cancelBoot()
	bootDone := make(chan struct{})
	go func() {
		defer close(bootDone)
		a.walk(bootCtx, prov, err)
	}()

	// The main loop: its heartbeat is what /livez reports. It never waits
	// on the database; the walk runs beside it.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-httpDone:
			serveErr = fmt.Errorf("boot: HTTP server stopped: %w", err)
			a.log.Error(serveErr.Error())
			break loop
		case <-tick.C:
			a.beat.Store(time.Now().UnixNano())
		}
	}
	return errors.Join(serveErr, a.stop(ctx, srv, cancelBoot, bootDone))
}

// dbStopLimit bounds the database's stop, whose own stages take longer
// than the app's ShutdownTimeout (lite: 30 s, then 10 s, then SIGKILL).
const dbStopLimit = time.Minute

// stop is the stopping phase: readiness off first (the phase change does
// it), then pre-stop hooks, HTTP drained, the walk ended, services in
// reverse, the pool, and the database last.
func (a *App) stop(ctx context.Context, srv *http.Server, cancelBoot context.CancelFunc, bootDone <-chan struct{}) error {
	a.setPhase(status.PhaseStopping, "shutting down", "")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	// First, within half the budget: the service may still need what
	// follows, and a hook that hangs must leave HTTP, the jobs' soft
	// stop and the pool the other half.
	hookCtx, hookCancel := context.WithTimeout(stopCtx, a.cfg.ShutdownTimeout/2)
	a.preStop(hookCtx)
	hookCancel()
	var errs []error
	if err := srv.Shutdown(stopCtx); err != nil {
		errs = append(errs, fmt.Errorf("drain HTTP: %w", err))
		srv.Close()
	}
	cancelBoot()
	select {
	case <-bootDone:
	case <-stopCtx.Done():
		errs = append(errs, errors.New("boot sequence did not end in time"))
	}
	a.recordInstance(stopCtx, false)
	if err := a.stopServices(stopCtx); err != nil {
		errs = append(errs, fmt.Errorf("stop services: %w", err))
	}
	a.closeEarly()
	a.mu.Lock()
	prov := a.prov
	a.mu.Unlock()
	if prov != nil {
		// Not within the app's budget: the database stops on its own
		// clock (lite: SIGINT, up to StopTimeout for the shutdown
		// checkpoint, then SIGQUIT), so that a slow checkpoint is not
		// cut short into crash recovery at the next start. A second
		// signal still ends the process at once.
		dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dbStopLimit)
		defer cancel()
		if err := prov.Stop(dbCtx); err != nil {
			errs = append(errs, fmt.Errorf("stop database: %w", err))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		a.log.Error("stopped with errors", logErr, err.Error())
	} else {
		a.log.Info("stopped")
	}
	return err
}

func (a *App) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.collectors()...)
	h := health.Handler(a, reg)
	mux := http.NewServeMux()
	for _, p := range health.Paths {
		mux.Handle(p, h)
	}
	app := a.cfg.Handler
	if app == nil {
		app = http.NotFoundHandler()
	}
	mux.Handle("/", app)
	return mux
}

// Alive reports whether the main loop turned recently; /livez uses it.
func (a *App) Alive() error {
	last := time.Unix(0, a.beat.Load())
	if !a.running.Load() {
		return nil // not running yet: nothing to be stuck
	}
	if age := time.Since(last); age > 10*time.Second {
		return fmt.Errorf("main loop has not turned for %s", age.Round(time.Second))
	}
	return nil
}

var _ health.Source = (*App)(nil)
