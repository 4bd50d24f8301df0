package lite

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// Install policies for Config.Install (UPLINK_PG_INSTALL).
const (
	// InstallAuto installs PostgreSQL through the OS package manager when
	// no server binaries are found and Uplink runs as root.
	InstallAuto = "auto"
	// InstallNever never installs; missing binaries stop boot with the
	// command a person should run.
	InstallNever = "never"
)

// Config tunes a Lite provisioner. The zero value is usable: New applies
// the defaults named on each field.
type Config struct {
	// DataDir holds everything Uplink keeps (UPLINK_DATA_DIR). Default:
	// DefaultDataDir().
	DataDir string
	// BinDir, when set (UPLINK_PG_BINDIR), is the only place PostgreSQL
	// binaries are looked for, and nothing is installed.
	BinDir string
	// Install is InstallAuto (default) or InstallNever (UPLINK_PG_INSTALL).
	Install string
	// Database and User are the application database and the role that
	// owns it, created on first start. Default "uplink" for both.
	Database, User string
	// Logger receives Uplink's own lines and the server's warnings and
	// errors. Default slog.Default().
	Logger *slog.Logger

	// RestartBackoffMin and RestartBackoffMax bound the wait before
	// restarting a server that died: it doubles from Min up to Max, with
	// jitter. Defaults 1s and 30s.
	RestartBackoffMin, RestartBackoffMax time.Duration
	// MaxRestarts is how many times the server may die within
	// RestartWindow and be restarted; one more failure gives up (Failed
	// delivers, Status fails). Defaults 5 and 10 minutes.
	MaxRestarts   int
	RestartWindow time.Duration
	// StartTimeout bounds a start that neither accepts connections nor
	// reports crash recovery. Recovery itself is never timed out: it takes
	// as long as the WAL it replays. Default 60s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGINT (fast shutdown)
	// before SIGQUIT (immediate shutdown), and QuitTimeout how long after
	// SIGQUIT before SIGKILL of the whole process group. Defaults 30s, 10s.
	StopTimeout, QuitTimeout time.Duration
	// LogMaxBytes is the size at which pg/log/postgres.log is rotated, and
	// LogKeep how many rotated files are kept. Defaults 10 MiB and 3.
	LogMaxBytes int64
	LogKeep     int

	// Probe, when set, is how a start on an existing cluster proves the
	// database ready (see provision.Probe): called with the application's
	// DSN as soon as the server accepts connections; boot's makes it the
	// first connection of its pool. An error with SQLSTATE 28P01, 28000
	// (the role or its password) or 3D000 (no database) makes Provision
	// log in as the superuser and repair the role or database; other
	// errors are retried like any failed readiness check. Default: a login
	// of Provision's own, closed again. First starts, and restarts after a
	// crash, always check as the superuser.
	Probe provision.Probe
}

// DefaultDataDir is /var/lib/uplink for root, else $XDG_DATA_HOME/uplink
// (~/.local/share/uplink).
func DefaultDataDir() string {
	if runas.IsRoot() {
		return "/var/lib/uplink"
	}
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "uplink")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".local", "share", "uplink")
}

// WithDefaults returns c with defaults applied, or an error naming the
// first setting that cannot work.
func (c Config) WithDefaults() (Config, error) {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, err
	}
	c.DataDir = abs
	switch c.Install = strings.ToLower(strings.TrimSpace(c.Install)); c.Install {
	case "":
		c.Install = InstallAuto
	case InstallAuto, InstallNever:
	default:
		return c, &status.ActionError{
			Problem: fmt.Sprintf("UPLINK_PG_INSTALL=%q", c.Install),
			Hint:    "set UPLINK_PG_INSTALL to auto or never",
		}
	}
	if c.Database == "" {
		c.Database = "uplink"
	}
	if c.User == "" {
		c.User = "uplink"
	}
	for _, n := range []struct{ what, v string }{{"database", c.Database}, {"user", c.User}} {
		if len(n.v) > 63 || strings.ContainsRune(n.v, 0) {
			return c, &status.ActionError{Problem: fmt.Sprintf("%s name %q", n.what, n.v), Hint: "PostgreSQL names are at most 63 bytes, without NUL"}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	setDefault(&c.RestartBackoffMin, time.Second)
	setDefault(&c.RestartBackoffMax, 30*time.Second)
	setDefault(&c.RestartWindow, 10*time.Minute)
	setDefault(&c.StartTimeout, 60*time.Second)
	setDefault(&c.StopTimeout, 30*time.Second)
	setDefault(&c.QuitTimeout, 10*time.Second)
	setDefault(&c.LogMaxBytes, 10<<20)
	setDefault(&c.MaxRestarts, 5)
	setDefault(&c.LogKeep, 3)
	if c.RestartBackoffMax < c.RestartBackoffMin {
		return c, fmt.Errorf("lite: RestartBackoffMax %s is below RestartBackoffMin %s", c.RestartBackoffMax, c.RestartBackoffMin)
	}
	return c, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
