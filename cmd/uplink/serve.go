package main

import (
	"context"
	"fmt"

	"github.com/uplinkhq/uplink/boot"
)

func init() {
	register(command{name: "serve", order: 10, summary: "run: status at once, then database, migrations, tasks, services", run: runServe})
}

// Main is `uplink serve` as a value, so tests can run it in-process (on
// ":0") exactly as the binary does: ParseFlags, Run, Close.
type Main struct {
	Env    *Env
	Config boot.Config
	app    *boot.App
}

// ParseFlags reads flags and environment into m.Config. done=true means
// the command ends here with code (help, or a mistake already reported).
func (m *Main) ParseFlags(args []string) (done bool, code int) {
	f := newFlags("serve", "serve [flags]", m.Env)
	bindDatabase(f, &m.Config)
	f.StringVar(&m.Config.HTTPAddr, "http", boot.DefaultHTTPAddr, "address for /livez, /readyz, /status and /metrics (UPLINK_HTTP_ADDR)")
	f.StringVar(&m.Config.MigrationsDir, "migrations", "", "directory of the app's migration files, applied as line \"app\" (UPLINK_MIGRATIONS_DIR)")
	f.BoolVar(&m.Config.AllowOutOfOrder, "allow-out-of-order", false, "apply pending migrations older than the newest applied one instead of stopping in phase error")
	bindMigrationTimeouts(f, &m.Config)
	f.IntVar(&m.Config.PoolMaxConns, "pool-max-conns", 0, "size of the app's connection pool (UPLINK_POOL_MAX_CONNS); 0: 4 or the number of CPUs")
	f.StringVar(&m.Config.Env, "env", boot.EnvProd, "dev, test or prod (UPLINK_ENV): picks which startup tasks run")
	bindTasks(f, &m.Config)
	bindBackups(f, &m.Config)
	logs := bindLog(f)
	if done, code := f.parseWithEnv(args); done {
		return done, code
	}
	if done, code := f.noArgs(); done {
		return done, code
	}
	switch m.Config.Env {
	case boot.EnvDev, boot.EnvTest, boot.EnvProd:
	default:
		return f.fail(fmt.Sprintf("environment %q: want dev, test or prod (--env or UPLINK_ENV)", m.Config.Env))
	}
	log, err := logs.logger(m.Env.Stdout)
	if err != nil {
		return f.fail(err.Error())
	}
	m.Config.Logger = log
	return false, exitOK
}

// Run serves until ctx ends, then stops in order.
func (m *Main) Run(ctx context.Context) error {
	app, err := boot.New(m.Config)
	if err != nil {
		return err
	}
	m.app = app
	return app.Run(ctx)
}

// App is the running app, nil before Run.
func (m *Main) App() *boot.App { return m.app }

// Close releases what Run did not; Run already stops everything it
// started when its context ends, so there is nothing left today.
func (m *Main) Close() error { return nil }

func runServe(ctx context.Context, env *Env, args []string) int {
	m := &Main{Env: env}
	if done, code := m.ParseFlags(args); done {
		return code
	}
	defer m.Close()
	if err := m.Run(ctx); err != nil {
		return reportError(env, "serve", err)
	}
	return exitOK
}
