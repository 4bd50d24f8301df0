package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// Add registers services to start, in order, once the database is ready
// and migrated; they stop in reverse order before the pool closes. A
// service reaches the database through App.Pool from its Start on. Add
// must be called before Run.
func (a *App) Add(services ...supervise.Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services = append(a.services, services...)
}

// startServices opens the pool and starts the app's services after it,
// under one supervisor: started in order, stopped in reverse, restarted
// with back-off when they fail, a database outage not counted as a crash.
func (a *App) startServices(ctx context.Context) error {
	a.mu.Lock()
	services := append([]supervise.Service{&poolService{app: a}, a.jobs}, a.services...)
	a.mu.Unlock()
	sup, err := supervise.New(supervise.Config{
		MinBackoff: a.cfg.RetryMin, MaxBackoff: a.cfg.RetryMax,
		IsOutage: a.isOutage, Logger: a.log,
	}, services...)
	if err != nil {
		return &status.ActionError{Problem: "the app's services are misconfigured", Err: err, Hint: "fix the services given to boot.App.Add"}
	}
	if err := sup.Start(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	a.sup = sup
	a.mu.Unlock()
	return nil
}

// stopServices stops the supervisor, if one started: services in reverse
// order, the pool last.
func (a *App) stopServices(ctx context.Context) error {
	a.mu.Lock()
	sup := a.sup
	a.mu.Unlock()
	if sup == nil {
		return nil
	}
	return sup.Stop(ctx)
}

// servicesCheck sums the services up for /status: one check, with each
// service's own check in Data so that /status lists them all.
func servicesCheck(sup *supervise.Supervisor) status.Check {
	checks := sup.Checks()
	c := status.Check{Status: status.Pass, Detail: fmt.Sprintf("%d running", len(checks))}
	data := make(map[string]any, len(checks))
	var down []string
	for name, sc := range checks {
		data[name] = sc
		c.Status = status.Worse(c.Status, sc.Status)
		if sc.Status != status.Pass {
			down = append(down, name)
		}
		if sc.LastErrorAt.After(c.LastErrorAt) {
			c.LastError, c.LastErrorAt = sc.LastError, sc.LastErrorAt
		}
	}
	if len(down) > 0 {
		c.Detail = fmt.Sprintf("%d of %d not running: %v", len(down), len(checks), down)
	}
	c.Data = data
	return c
}

// poolService is the application's connection pool as a service: first to
// start, last to stop.
type poolService struct {
	app  *App
	once sync.Once
	pool *pgxpool.Pool
}

func (p *poolService) Name() string { return "pool" }

func (p *poolService) Start(ctx context.Context) error {
	a := p.app
	pool := a.takeEarly()
	if pool == nil { // a restart, or the migrating phase made none
		var err error
		if pool, err = a.newPool(ctx, a.DSN()); err != nil {
			return err
		}
	}
	if err := a.ping(ctx, pool); err != nil {
		pool.Close()
		return fmt.Errorf("first ping of the pool: %w", err)
	}
	p.pool = pool
	a.mu.Lock()
	a.pool = pool
	a.mu.Unlock()
	return nil
}

// newPool makes the application's pool for dsn, without connecting.
func (a *App) newPool(ctx context.Context, dsn provision.DSN) (*pgxpool.Pool, error) {
	cfg, err := provision.PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "uplink"
	}
	if a.cfg.PoolMaxConns > 0 {
		cfg.MaxConns = int32(a.cfg.PoolMaxConns)
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// earlyPool is the application's pool before phase starting, made on
// first use: the migrating phase borrows a connection from it for its
// first look at the history (see App.migrate), and poolService.Start
// takes it over with that connection open, so that a warm boot opens one
// session fewer. Nobody else sees it before then; a boot that never gets
// there closes it with closeEarly.
func (a *App) earlyPool(ctx context.Context) (*pgxpool.Pool, error) {
	a.mu.Lock()
	pool := a.early
	a.mu.Unlock()
	if pool != nil {
		return pool, nil
	}
	pool, err := a.newPool(ctx, a.DSN()) // only the walk calls this: no race to make two
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.early = pool
	a.mu.Unlock()
	return pool, nil
}

// probe is the provisioner's readiness check (provision.Probe): it makes
// the early pool for dsn and asks the server for its version on the
// pool's first connection, which stays open for the migrating phase.
// The provisioner calls it on the walk's goroutine, within Provision,
// before anything else uses the early pool.
func (a *App) probe(ctx context.Context, dsn provision.DSN) (int, error) {
	pool, err := a.newPool(ctx, dsn)
	if err != nil {
		return 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return 0, err
	}
	num, err := provision.ServerVersionNum(ctx, conn)
	conn.Release()
	if err != nil {
		pool.Close()
		return 0, err
	}
	a.closeEarly() // an earlier attempt's, if Provision started over
	a.mu.Lock()
	a.early = pool
	a.mu.Unlock()
	return num, nil
}

// takeEarly hands over the pool earlyPool made, if any, and forgets it.
func (a *App) takeEarly() *pgxpool.Pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	pool := a.early
	a.early = nil
	return pool
}

// closeEarly closes the pool earlyPool made, if no service took it.
func (a *App) closeEarly() {
	if pool := a.takeEarly(); pool != nil {
		pool.Close()
	}
}

func (p *poolService) Stop(ctx context.Context) error {
	if p.pool != nil {
		p.once.Do(p.pool.Close)
	}
	return nil
}

// isOutage is IsOutage confirmed by the database itself: an error that
// looks like a lost connection (an EOF, a deadline) is an outage only
// when the database does not answer now either. Otherwise it is the
// service's own failure, and counts towards giving up: a service that
// keeps failing on, say, a feed's EOF ends in phase error instead of
// being restarted forever.
func (a *App) isOutage(err error) bool {
	if !IsOutage(err) {
		return false
	}
	pool := a.Pool()
	if pool == nil {
		return true // the pool itself failed to start: nothing to ask
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*a.cfg.PingTimeout+time.Second)
	defer cancel()
	return a.ping(ctx, pool) != nil
}

// IsOutage reports whether err comes from losing the database (it went
// away, refused, timed out) rather than from a bug: supervised services
// failing with it are restarted without counting towards giving up.
func IsOutage(err error) bool {
	if err == nil {
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return true
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	case errors.As(err, &pgErr):
		// 57P01-03: admin shutdown, crash shutdown, cannot connect now;
		// 08: connection exceptions; 53300: too many connections.
		return pgErr.Code == "53300" || pgErr.Code[:2] == "08" || pgErr.Code[:3] == "57P"
	}
	return false
}
