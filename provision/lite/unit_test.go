package lite

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/status"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{DataDir: "rel/dir"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.DataDir) || c.Install != InstallAuto || c.Database != "uplink" || c.User != "uplink" ||
		c.RestartBackoffMin != time.Second || c.RestartBackoffMax != 30*time.Second ||
		c.MaxRestarts != 5 || c.RestartWindow != 10*time.Minute ||
		c.StopTimeout != 30*time.Second || c.QuitTimeout != 10*time.Second || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	if _, err := (Config{Install: "sometimes"}).WithDefaults(); !status.IsAction(err) {
		t.Errorf("bad UPLINK_PG_INSTALL: %v", err)
	}
	if c, err := (Config{Install: " Never "}).WithDefaults(); err != nil || c.Install != InstallNever {
		t.Errorf("Never: %q %v", c.Install, err)
	}
	if _, err := (Config{User: strings.Repeat("u", 64)}).WithDefaults(); err == nil {
		t.Error("64-byte role name accepted")
	}
	if _, err := (Config{RestartBackoffMin: time.Minute, RestartBackoffMax: time.Second}).WithDefaults(); err == nil {
		t.Error("max below min accepted")
	}
}

func TestDefaultDataDir(t *testing.T) {
	if os.Geteuid() == 0 {
		if got := DefaultDataDir(); got != "/var/lib/uplink" {
			t.Errorf("root: %s", got)
		}
		return
	}
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if got := DefaultDataDir(); got != "/x/data/uplink" {
		t.Errorf("XDG: %s", got)
	}
}

func TestSocketDSNRoundTrip(t *testing.T) {
	dsn := socketDSN("/var/lib/up link/pg/run", 5432, "it's", `pa\ss`, "db")
	cfg, err := pgx.ParseConfig(dsn.Secret())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "/var/lib/up link/pg/run" || cfg.User != "it's" || cfg.Password != `pa\ss` || cfg.Database != "db" || cfg.Port != 5432 {
		t.Errorf("round trip: host %q user %q password %q db %q port %d", cfg.Host, cfg.User, cfg.Password, cfg.Database, cfg.Port)
	}
	if shown := dsn.String() + fmt.Sprint(dsn); strings.Contains(shown, `pa\ss`) || strings.Contains(shown, `pa\\ss`) {
		t.Errorf("DSN prints its password: %v", dsn)
	}
}

func TestScramVerifier(t *testing.T) {
	for iter, prefix := range map[int]string{appIterations: "SCRAM-SHA-256$4096:", superIterations: "SCRAM-SHA-256$16:"} {
		v := scramVerifier("secret", iter)
		if !strings.HasPrefix(v, prefix) || !scramMatches(v, "secret") || scramMatches(v, "Secret") {
			t.Errorf("verifier %q", v)
		}
		if got, _, ok := parseScram(v); !ok || got != iter {
			t.Errorf("parseScram(%q) = %d, %v; want %d", v, got, ok, iter)
		}
		if scramVerifier("secret", iter) == v {
			t.Error("same salt twice")
		}
	}
	v := scramVerifier("secret", appIterations)
	if m := verifierMAC("secret", v); len(m) != 64 || m != verifierMAC("secret", v) ||
		m == verifierMAC("Secret", v) || m == verifierMAC("secret", scramVerifier("secret", appIterations)) {
		t.Errorf("verifierMAC does not tie the verifier to the password: %q", m)
	}
	// A verifier made by PostgreSQL 15 for the password "postgres".
	const pg = "SCRAM-SHA-256$4096:s0B/9/mqnrw218nbXPh68Q==$yXl8se7/Qhi+5/zcnE23fDxdkY5PaVxSO+eZhGoJHIY=:kRyE5Nd/98IsZv3Vs5CDq8aWTY7e3+O143aORRQBKCc="
	if !scramMatches(pg, "postgres") {
		t.Error("a verifier made by PostgreSQL does not match")
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-256$4096:!!$a:b"} {
		if scramMatches(bad, "postgres") {
			t.Errorf("%q matched", bad)
		}
	}
}

func TestServerLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "postgres.log")
	var logs testutil.Buffer
	l, err := openServerLog(path, 200, 2, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var events []event
	input := strings.Join([]string{
		"2026-01-02 03:04:05.678 UTC [42] LOG:  database system was interrupted; last known up at 2026-01-02 03:00:00 UTC",
		"2026-01-02 03:04:05.679 UTC [42] LOG:  database system was not properly shut down; automatic recovery in progress",
		"2026-01-02 03:04:05.680 UTC [42] WARNING:  worker took too long",
		"2026-01-02 03:04:05.681 UTC [43] FATAL:  the database system is starting up",
		"2026-01-02 03:04:05.682 UTC [44] ERROR:  relation \"x\" does not exist",
		"2026-01-02 03:04:05.683 UTC [44] STATEMENT:  ALTER ROLE u PASSWORD 'hunter2' -- postgres://a:hunter3@h/db",
		"2026-01-02 03:04:05.684 UTC [42] LOG:  database system is ready to accept connections",
		"no prefix at all",
	}, "\n") + "\n"
	for range 3 { // enough to rotate twice and drop the oldest
		l.consume(strings.NewReader(input), func(ev event) { events = append(events, ev) })
	}
	l.Close()

	if want := []event{evRecovering, evRecovering, evReady}; fmt.Sprint(events[:3]) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v first", events, want)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN msg=\"postgres: worker took too long\"") ||
		!strings.Contains(out, "level=ERROR msg=\"postgres: relation") ||
		strings.Contains(out, "starting up") || strings.Contains(out, "STATEMENT") {
		t.Errorf("forwarded to Uplink's log at info level:\n%s", out)
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 { // postgres.log, .1, .2
		t.Errorf("log files %v; want the live one and 2 rotated", files)
	}
	for _, f := range files {
		if fi, _ := os.Stat(f); fi.Size() > 200 {
			t.Errorf("%s is %d bytes, over the limit", f, fi.Size())
		}
	}
	tail := strings.Join(l.Tail(40), "\n")
	if strings.Contains(tail, "hunter2") || strings.Contains(tail, "hunter3") {
		t.Errorf("tail shows a password:\n%s", tail)
	}
}

// TestInstallProgressInStatus: the package manager's lines show in Status
// as they come, under the install step.
func TestInstallProgressInStatus(t *testing.T) {
	l, err := New(Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.installer.Progress("Unpacking postgresql-15 (15.8-0+deb12u1) ...")
	st := l.Status()
	if st.Data["step"] != StepInstall || !strings.Contains(st.Detail, "Unpacking postgresql-15") {
		t.Errorf("Status = %+v", st)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	deep := "/" + strings.Repeat("d", 100)
	l, err := New(Config{DataDir: deep, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Provision(t.Context())
	if !status.IsAction(err) || !strings.Contains(err.Error(), "unix socket") {
		t.Fatalf("Provision: %v", err)
	}
	if _, err := os.Stat(deep); err == nil {
		t.Error("created the directory it refused")
	}
}
