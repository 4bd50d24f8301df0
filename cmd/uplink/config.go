package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/migrate"
)

// envFlag ties a flag to the environment variable it mirrors. A flag given
// on the command line wins; an unset one takes the variable's value.
type envFlag struct{ flag, env string }

// envFlags lists every flag that has an environment variable, in one place
// so that help text and README stay true to each other.
var envFlags = []envFlag{
	{"mode", "UPLINK_MODE"},
	{"database-url", "DATABASE_URL"},
	{"database-ca-file", "UPLINK_DATABASE_CA_FILE"},
	{"data-dir", "UPLINK_DATA_DIR"},
	{"pg-bindir", "UPLINK_PG_BINDIR"},
	{"pg-install", "UPLINK_PG_INSTALL"},
	{"http", "UPLINK_HTTP_ADDR"},
	{"migrations", "UPLINK_MIGRATIONS_DIR"},
	{"migration-lock-timeout", "UPLINK_MIGRATION_LOCK_TIMEOUT"},
	{"migration-statement-timeout", "UPLINK_MIGRATION_STATEMENT_TIMEOUT"},
	{"pool-max-conns", "UPLINK_POOL_MAX_CONNS"},
	{"env", "UPLINK_ENV"},
	{"tasks", "UPLINK_TASKS_DIR"},
	{"post-start", "UPLINK_POST_START"},
	{"hooks", "UPLINK_HOOKS_DIR"},
	{"backup-interval", "UPLINK_BACKUP_INTERVAL"},
	{"backup-keep", "UPLINK_BACKUP_KEEP"},
	{"log-format", "UPLINK_LOG_FORMAT"},
	{"log-level", "UPLINK_LOG_LEVEL"},
}

// applyEnv fills the flags that were not given from their variables.
func (f *flags) applyEnv() error {
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, ef := range envFlags {
		if given[ef.flag] || f.Lookup(ef.flag) == nil {
			continue
		}
		if v := f.env.Getenv(ef.env); v != "" {
			if err := f.Set(ef.flag, v); err != nil {
				return fmt.Errorf("%s=%q: %w", ef.env, v, err)
			}
		}
	}
	return nil
}

// parseWithEnv is parse followed by applyEnv.
func (f *flags) parseWithEnv(args []string) (done bool, code int) {
	if done, code := f.parse(args); done {
		return done, code
	}
	if err := f.applyEnv(); err != nil {
		return f.fail(err.Error())
	}
	return false, exitOK
}

// bindMigrationTimeouts adds the flags for a migration's lock_timeout and
// statement_timeout to f.
func bindMigrationTimeouts(f *flags, cfg *boot.Config) {
	f.DurationVar(&cfg.MigrationLockTimeout, "migration-lock-timeout", migrate.DefaultLockTimeout,
		"PostgreSQL's lock_timeout while a migration runs (UPLINK_MIGRATION_LOCK_TIMEOUT); not the wait for the migration lock")
	f.DurationVar(&cfg.MigrationStatementTimeout, "migration-statement-timeout", migrate.DefaultStatementTimeout,
		"PostgreSQL's statement_timeout while a migration runs (UPLINK_MIGRATION_STATEMENT_TIMEOUT)")
}

// parseMixed is parseWithEnv for commands whose arguments may come before,
// between or after their flags (migrate accept 7 --line app, tasks run
// seed --tasks dir); it returns the arguments in order.
func (f *flags) parseMixed(args []string) (positional []string, done bool, code int) {
	for {
		if done, code := f.parse(args); done {
			return nil, done, code
		}
		if f.NArg() == 0 {
			break
		}
		positional = append(positional, f.Arg(0))
		args = f.Args()[1:]
	}
	if err := f.applyEnv(); err != nil {
		done, code := f.fail(err.Error())
		return nil, done, code
	}
	return positional, false, exitOK
}

// bindDatabase adds the flags that say which database to use to f and
// returns the config they fill.
func bindDatabase(f *flags, cfg *boot.Config) {
	// No defaults shown for the URL: --help must never print a password
	// that came from the environment.
	f.StringVar(&cfg.Mode, "mode", "auto", "auto, lite or pro (UPLINK_MODE); auto is pro when a database URL is set")
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "pro mode's PostgreSQL, URL or key=value (DATABASE_URL)")
	f.StringVar(&cfg.DatabaseCAFile, "database-ca-file", "", "PEM CA bundle for sslmode=verify-ca/verify-full (UPLINK_DATABASE_CA_FILE)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "lite mode's data directory (UPLINK_DATA_DIR; default /var/lib/uplink as root, else $XDG_DATA_HOME/uplink)")
	f.StringVar(&cfg.PGBinDir, "pg-bindir", "", "lite mode's PostgreSQL bin directory (UPLINK_PG_BINDIR; default: discovered)")
	f.StringVar(&cfg.PGInstall, "pg-install", "auto", "auto or never (UPLINK_PG_INSTALL): may lite mode install PostgreSQL as root")
}

// logFlags are the logging settings every long-running command takes.
type logFlags struct{ format, level string }

func bindLog(f *flags) *logFlags {
	l := &logFlags{}
	f.StringVar(&l.format, "log-format", "auto", "auto, json or text (UPLINK_LOG_FORMAT); auto is JSON unless the log goes to a terminal")
	f.StringVar(&l.level, "log-level", "info", "debug, info, warn or error (UPLINK_LOG_LEVEL)")
	return l
}

// logger builds the process logger: JSON for machines, text for people.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want auto, json or text", l.format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// backupInterval and backupKeep set lite mode's backups: --backup-interval takes a duration
// or "off"; --backup-keep a count, 0 keeping them all.
type backupInterval struct{ cfg *boot.Config }

func (b *backupInterval) String() string { return "" }

func (b *backupInterval) Set(v string) error {
	if strings.EqualFold(v, "off") {
		b.cfg.Backups.Interval = -1
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration such as 6h, or off")
	}
	b.cfg.Backups.Interval = d
	return nil
}

type backupKeep struct{ cfg *boot.Config }

func (b *backupKeep) String() string { return "" }

func (b *backupKeep) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("want a count: 1 or more, or 0 to keep them all")
	}
	if n == 0 {
		n = -1
	}
	b.cfg.Backups.Keep = n
	return nil
}

func bindBackups(f *flags, cfg *boot.Config) {
	f.Var(&backupInterval{cfg}, "backup-interval", "lite mode: time between pg_dump backups into <data-dir>/pg/backups, or off (UPLINK_BACKUP_INTERVAL; default 24h)")
	f.Var(&backupKeep{cfg}, "backup-keep", "lite mode: how many backups to keep; 0 keeps all (UPLINK_BACKUP_KEEP; default 7)")
}
