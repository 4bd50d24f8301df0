package boot

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/internal/backoff"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// walk takes the app from provisioning to ready, then watches the
// database. It returns when ctx ends or when a person must act.
// prov is nil when the configuration could not make one; err says why.
func (a *App) walk(ctx context.Context, prov provision.Provisioner, err error) {
	if err != nil {
		a.fail(err)
		return
	}
	a.log.Info("phase "+string(status.PhaseProvisioning), logPhase, string(status.PhaseProvisioning), logMode, string(prov.Mode()))

	dsn, err := prov.Provision(ctx)
	if err != nil {
		a.closeEarly() // a probe's, on a server that did not stay
		if ctx.Err() == nil {
			a.fail(err)
		}
		return
	}
	a.mu.Lock()
	a.dsn = dsn
	a.mu.Unlock()

	steps := []struct {
		phase status.Phase
		check string
		run   func(context.Context) error
	}{
		{status.PhaseMigrating, "migrations", a.checkFresh}, // before migrating: fresh tasks need to know
		{status.PhaseMigrating, "migrations", a.migrate},
		{status.PhaseTasks, "tasks", a.runTasks},
		{status.PhaseStarting, "services", a.startServices},
	}
	for _, s := range steps {
		a.setPhase(s.phase, "", "")
		if !a.retry(ctx, s.check, s.run) {
			a.closeEarly() // the walk ends here: nothing will take it
			return
		}
	}
	startHooks := a.postStart(ctx) // before ready: a stop from ready on runs the pre-stop hooks
	a.setPhase(status.PhaseReady, "", "")
	waitHooks := startHooks()
	a.recordInstance(ctx, true)
	a.watch(ctx, prov.Failed())
	waitHooks()
}

// provisioner builds the provisioner the configuration asks for.
func (a *App) provisioner() (provision.Provisioner, error) {
	if a.cfg.Provisioner != nil {
		return a.cfg.Provisioner, nil
	}
	mode, err := provision.ParseMode(a.cfg.Mode)
	if err != nil {
		return nil, err
	}
	if mode, err = mode.Resolve(a.cfg.DatabaseURL); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.mode = mode
	a.mu.Unlock()
	switch mode {
	case provision.ModePro:
		return a.newPro()
	default:
		if a.cfg.DatabaseURL != "" {
			// Asked for: lite was named. Said, since the URL looks meant.
			a.log.Warn("lite mode: DATABASE_URL is set and not used; unset it, or use UPLINK_MODE=pro (or auto) to use it")
		}
		return a.newLite()
	}
}

// retry runs one step until it succeeds, ctx ends (false) or it fails in
// a way a person must fix (false, phase error). Other failures are
// retried with capped, jittered back-off, shown in the step's check.
func (a *App) retry(ctx context.Context, check string, run func(context.Context) error) bool {
	defer a.setRetry(check, nil)
	for attempt := 1; ; attempt++ {
		err := run(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if status.IsAction(err) {
			a.fail(err)
			return false
		}
		wait := backoff.Exp(attempt, a.cfg.RetryMin, a.cfg.RetryMax)
		msg := provision.Redact(err.Error())
		a.setRetry(check, &status.Check{
			Status: status.Warn, Detail: "retrying after a failure that may fix itself",
			LastError: msg, LastErrorAt: time.Now(), Attempts: attempt, NextRetry: time.Now().Add(wait),
		})
		a.log.Warn(check+" failed; retrying", logStep, check, logErr, msg, logTry, attempt, logRetry, wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// fail moves to phase error: the walk stops until a person acts and
// restarts the process. It never exits the process (no crash loop).
func (a *App) fail(err error) {
	a.setPhase(status.PhaseError, err.Error(), status.HintOf(err))
}

// ping checks the pool once, and once more at once if that failed: the
// first try may only have found a connection the server closed while it
// restarted, which the pool drops.
func (a *App) ping(ctx context.Context, pool *pgxpool.Pool) error {
	try := func() error {
		ctx, cancel := context.WithTimeout(ctx, a.cfg.PingTimeout)
		defer cancel()
		return pool.Ping(ctx)
	}
	err := try()
	if err != nil && ctx.Err() == nil {
		err = try()
	}
	if err != nil && ctx.Err() == nil && busy(pool) {
		// Every connection is in use: the wait was for the pool, not the
		// database. Ask the database on a connection of its own, so that
		// a loaded replica is not reported as one that lost it.
		err = a.pingAlone(ctx, pool)
	}
	return err
}

// busy reports a pool whose every connection is taken.
func busy(pool *pgxpool.Pool) bool {
	st := pool.Stat()
	return st.AcquiredConns()+st.ConstructingConns() >= st.MaxConns()
}

// pingAlone checks the database on a new connection, outside the pool.
func (a *App) pingAlone(ctx context.Context, pool *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.PingTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// watch pings the database once ready: losing it → degraded within a few
// seconds; its return → ready, without restarting anything.
func (a *App) watch(ctx context.Context, failed <-chan error) {
	// While the database is lost it is pinged four times as often: each
	// ping is one refused connect, and the time back to ready is bounded
	// by the interval.
	downInterval := a.cfg.WatchInterval / 4
	t := time.NewTimer(a.cfg.WatchInterval)
	defer t.Stop()
	pool := a.Pool()
	a.mu.Lock()
	crashed := a.sup.Failed()
	a.mu.Unlock()
	var down *status.Check
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-failed:
			a.fail(status.NeedsAction(err, "see the database check in /status and its log; restart Uplink once fixed"))
			return
		case err := <-crashed:
			a.fail(status.NeedsAction(err, "see the services check in /status and the log; restart Uplink once fixed"))
			return
		case <-t.C:
		}
		err := a.ping(ctx, pool)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if err == nil {
			t.Reset(a.cfg.WatchInterval)
			if down != nil {
				a.mu.Lock()
				a.dbDown = nil
				a.mu.Unlock()
				a.setPhase(status.PhaseReady, fmt.Sprintf("database is back after %s", now.Sub(down.Since).Round(time.Millisecond)), "")
				down = nil
			}
			continue
		}
		msg := provision.Redact(err.Error())
		lost := down == nil
		if lost {
			down = &status.Check{Status: status.Fail, Since: now}
		}
		t.Reset(downInterval)
		down.Detail = "database unreachable; pinging every " + downInterval.String()
		down.LastError, down.LastErrorAt = msg, now
		down.Attempts++
		down.NextRetry = now.Add(downInterval)
		c := *down
		a.mu.Lock()
		a.dbDown = &c
		a.mu.Unlock()
		// After the check: whoever sees the phase sees why.
		if lost {
			a.setPhase(status.PhaseDegraded, "database unreachable: "+msg, "")
		}
	}
}
