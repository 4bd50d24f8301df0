package boot

import (
	"context"
	"embed"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// UplinkLine is the name of Uplink's own migration line.
const UplinkLine = "uplink"

var (
	uplinkLineOnce sync.Once
	uplinkLine     migrate.Line
	uplinkLineErr  error
)

// ownLine is Uplink's embedded schema, loaded once: it cannot change under
// a running binary.
func ownLine() (migrate.Line, error) {
	uplinkLineOnce.Do(func() {
		ms, err := migrate.Load(schemaFS, "schema")
		uplinkLine, uplinkLineErr = migrate.Line{Name: UplinkLine, Migrations: ms}, err
	})
	return uplinkLine, uplinkLineErr
}

// AppLine is the name of the line read from Config.MigrationsDir.
const AppLine = "app"

// lines are all the migration lines boot applies, in order: Uplink's own,
// those the app gave (its schema, its job queue's), then MigrationsDir.
func (a *App) lines() ([]migrate.Line, error) {
	own, err := ownLine()
	if err != nil {
		return nil, fmt.Errorf("uplink's embedded schema: %w", err)
	}
	river, err := a.jobsLine()
	if err != nil {
		return nil, err
	}
	lines := append([]migrate.Line{own, river}, a.cfg.Migrations...)
	if dir := a.cfg.MigrationsDir; dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, &status.ActionError{Problem: "cannot read the migrations directory " + dir, Err: err,
				Hint: "point --migrations (UPLINK_MIGRATIONS_DIR) at a directory of .sql migration files"}
		}
		ms, err := migrate.Load(os.DirFS(dir), ".")
		if err != nil {
			return nil, err
		}
		lines = append(lines, migrate.Line{Name: AppLine, Migrations: ms})
	}
	return lines, nil
}

// migrator builds the migrator for the provisioned database, once; tasks
// and the CLI share its history table and lock.
func (a *App) migrator() (*migrate.Migrator, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mig != nil {
		return a.mig, nil
	}
	cc, err := provision.ConnConfig(a.dsn)
	if err != nil {
		return nil, err
	}
	lines, err := a.lines()
	if err != nil {
		return nil, err
	}
	m, err := migrate.New(cc, migrate.Config{Logger: a.log, AllowOutOfOrder: a.cfg.AllowOutOfOrder,
		LockTimeout: a.cfg.MigrationLockTimeout, StatementTimeout: a.cfg.MigrationStatementTimeout}, lines...)
	if err != nil {
		return nil, err
	}
	a.mig = m
	return m, nil
}

// migrate brings every line up to date under the cluster lock. With
// nothing pending it takes no lock at all, so replicas that boot after the
// first pass straight through; it then looks at the history on a
// connection of the app's pool-to-be, which stays open for the services.
func (a *App) migrate(ctx context.Context) error {
	m, err := a.migrator()
	if err != nil {
		return err
	}
	pool, err := a.earlyPool(ctx)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	res, err := m.UpPeeking(ctx, conn)
	conn.Release()
	if err != nil {
		return err
	}
	if n := len(res.Applied); n > 0 {
		a.log.Info("migrations applied", "count", n)
	}
	return nil
}

// migrationsCheck is the migrator's own report, or nothing before the
// migrating phase.
func (a *App) migrationsCheck() (status.Check, bool) {
	a.mu.Lock()
	m := a.mig
	a.mu.Unlock()
	if m == nil {
		return status.Check{}, false
	}
	return m.Check(), true
}

// instanceID names this process in uplink.instances.
func (a *App) instanceID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), a.started.UnixNano())
}

// recordInstance notes in Uplink's own schema that this process is ready,
// or stopped. It is bookkeeping: a failure is logged, never fatal.
func (a *App) recordInstance(ctx context.Context, ready bool) {
	pool := a.Pool()
	if pool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	var err error
	if ready {
		_, err = pool.Exec(ctx, `INSERT INTO uplink.instances (id, hostname, pid, version, mode, started_at, ready_at)
			VALUES ($1, $2, $3, $4, $5, $6, now())
			ON CONFLICT (id) DO UPDATE SET ready_at = now()`,
			a.instanceID(), host, os.Getpid(), a.cfg.Version, string(a.mode), a.started)
	} else {
		_, err = pool.Exec(ctx, `UPDATE uplink.instances SET stopped_at = now() WHERE id = $1`, a.instanceID())
	}
	if err != nil {
		a.log.Warn("could not record this instance in uplink.instances", logErr, provision.Redact(err.Error()))
	}
}
