package boot

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/uplinkhq/uplink/backup"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/starttask"
)

// Config tunes an App. The zero value is a working lite-mode service on
// 127.0.0.1:4080; each field says its default. The environment variables
// named here are read by cmd/uplink, not by this package: a library reads
// no environment behind its caller's back.
type Config struct {
	// Mode is auto, lite or pro (UPLINK_MODE). Default auto: pro when
	// DatabaseURL is set, lite otherwise.
	Mode string
	// DatabaseURL is the pro-mode server (DATABASE_URL), URL or key=value.
	DatabaseURL string
	// DatabaseCAFile is a PEM CA bundle for sslmode=verify-ca/verify-full
	// (UPLINK_DATABASE_CA_FILE).
	DatabaseCAFile string
	// DataDir holds lite mode's cluster (UPLINK_DATA_DIR). Default
	// /var/lib/uplink as root, else $XDG_DATA_HOME/uplink.
	DataDir string
	// PGBinDir pins lite mode's PostgreSQL binaries (UPLINK_PG_BINDIR).
	// Default: discovered.
	PGBinDir string
	// PGInstall is auto or never (UPLINK_PG_INSTALL): whether lite mode may
	// install PostgreSQL with the OS package manager when it runs as root.
	// Default auto.
	PGInstall string
	// Env is dev, test or prod (UPLINK_ENV); startup tasks use it to pick
	// what runs. Default prod, so that demo data never lands anywhere by
	// omission.
	Env string

	// HTTPAddr is where the status endpoints and Handler are served
	// (UPLINK_HTTP_ADDR). Default 127.0.0.1:4080; ":0" picks a free port.
	HTTPAddr string
	// Handler serves everything but the status endpoints; nil answers 404.
	Handler http.Handler

	// Version is reported in /status and metrics. Default: the main
	// module's version from the build info.
	Version string
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger

	// Migrations are the app's migration lines, applied in order after
	// Uplink's own line "uplink" and River's line "river", under one
	// cluster-wide lock, exactly once however many replicas boot together.
	// Default none.
	Migrations []migrate.Line
	// MigrationsDir, when set (--migrations), is a directory of migration
	// files (plain, up/down pairs, goose or dbmate; see package migrate)
	// applied as the line "app", after Migrations. It is read when the
	// migrating phase begins; a mistake in it is phase error.
	MigrationsDir string
	// AllowOutOfOrder lets a pending migration older than the newest
	// applied one of its line run, instead of stopping boot in phase error.
	// Default false.
	AllowOutOfOrder bool
	// MigrationLockTimeout and MigrationStatementTimeout are PostgreSQL's
	// lock_timeout and statement_timeout while a migration runs (not the
	// wait for the migration lock, which lasts as long as its holder
	// lives). Defaults migrate.DefaultLockTimeout (10s) and
	// migrate.DefaultStatementTimeout (1h).
	MigrationLockTimeout, MigrationStatementTimeout time.Duration
	// PoolMaxConns, when above 0, sizes the app's connection pool (what
	// pool_max_conns in DATABASE_URL does in pro mode; lite has no URL of
	// the user's). Default pgxpool's: 4 or the number of CPUs.
	PoolMaxConns int

	// Tasks are startup tasks given in Go (see package starttask), run in
	// order in the tasks phase, once per cluster under the migrations'
	// lock, before TasksDir's. Default none.
	Tasks []starttask.Task
	// TasksDir, when set (--tasks), is a directory of startup tasks: .sql
	// files and executables, each configured by a header comment (see
	// package starttask). It is read when the migrating phase begins; a
	// mistake in it is phase error.
	TasksDir string
	// PostStart hooks run once, in order, after the first ready; PreStop
	// hooks run first when stopping, within ShutdownTimeout. A failing hook
	// shows in /status and stops nothing. Default none.
	PostStart, PreStop []starttask.Hook
	// HooksDir, when set (--hooks), adds the executables of its post-start/
	// and pre-stop/ subdirectories after PostStart and PreStop.
	HooksDir string

	// Jobs tunes the job queue (River): queues, soft-stop timeout, River's
	// own options. Register workers with AddWorker. River's schema is
	// migrated as the line "river" after Uplink's own. Defaults: see
	// jobs.Config.
	Jobs jobs.Config
	// Backups tunes lite mode's periodic pg_dump into <DataDir>/pg/backups.
	// Default daily, keeping 7; Interval < 0 turns it off. Pro mode never
	// backs up: its server is someone else's to back up.
	Backups backup.Config

	// Provisioner, when set, is used instead of the one Mode selects (an
	// app with its own way to get a database, or a test).
	Provisioner provision.Provisioner

	// ShutdownTimeout bounds stopping the app after Run's context ends:
	// pre-stop hooks, HTTP, services, the pool. Default 10s. The database
	// then stops on its own clock (lite: a fast shutdown, which may wait
	// up to 30 s for its checkpoint before SIGQUIT).
	ShutdownTimeout time.Duration
	// WatchInterval is how often the database is pinged once ready.
	// Default 1s.
	WatchInterval time.Duration
	// PingTimeout bounds one ping of the watch. Default 1s.
	PingTimeout time.Duration
	// RetryMin and RetryMax bound the back-off between retries of a step
	// that failed for a reason that may fix itself. Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
}

// Env words.
const (
	EnvDev  = "dev"
	EnvTest = "test"
	EnvProd = "prod"
)

// DefaultHTTPAddr is where Uplink listens unless told otherwise: loopback,
// because /status is for the machine's operators and its load balancer.
const DefaultHTTPAddr = "127.0.0.1:4080"

func (c Config) withDefaults() (Config, error) {
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.Env == "" {
		c.Env = EnvProd
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.PoolMaxConns < 0 {
		return c, errors.New("boot: PoolMaxConns is negative")
	}
	if c.ShutdownTimeout < 0 || c.WatchInterval < 0 || c.PingTimeout < 0 || c.RetryMin < 0 || c.RetryMax < c.RetryMin {
		return c, errors.New("boot: negative durations, or RetryMax below RetryMin")
	}
	if err := starttask.Validate(c.Tasks...); err != nil {
		return c, err
	}
	return c, nil
}
