package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/proctest"
	"github.com/uplinkhq/uplink/provision/lite"
	"github.com/uplinkhq/uplink/status"
)

// TestProcessLiteMode runs the real binary with no DATABASE_URL: it sets
// up its own PostgreSQL, the db commands reach it, a second uplink on the
// same data directory is refused, a killed postgres comes back without a
// restart of uplink, and a warm start finds the data again.
func TestProcessLiteMode(t *testing.T) {
	pgtest.Binaries(t)
	dataDir := filepath.Join(pgtest.BaseDir(t), "uplink")
	env := []string{"UPLINK_DATA_DIR=" + dataDir}
	cliEnv := map[string]string{"UPLINK_DATA_DIR": dataDir}

	p := startServeArgs(t, env)
	p.waitReady(t, 60*time.Second)
	if s := p.snapshot(t); s.Mode != "lite" {
		t.Errorf("mode = %q, want lite", s.Mode)
	}

	code, url, stderr := runCLI(t, cliEnv, "db", "url")
	url = strings.TrimSpace(url)
	if code != exitOK || !strings.HasPrefix(url, "postgres://uplink:") || !strings.Contains(url, "@127.0.0.1:") {
		t.Fatalf("db url: code %d, %q, stderr %q", code, url, stderr)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect with db url: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before the restart')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	psql := startProc(t, env, "db", "psql", "--", "-Atc", "SELECT current_database() || ' as ' || current_user")
	if code := psql.ExitCode(t, 30*time.Second); code != 0 || strings.TrimSpace(psql.Out.String()) != "uplink as uplink" {
		t.Errorf("db psql: exit %d, output %q", code, psql.Out.String())
	}
	dump := filepath.Join(t.TempDir(), "uplink.dump")
	if code, _, stderr := runCLI(t, cliEnv, "db", "dump", dump); code != exitOK {
		t.Errorf("db dump: code %d, stderr %q", code, stderr)
	} else if b, _ := os.ReadFile(dump); !strings.HasPrefix(string(b), "PGDMP") {
		t.Errorf("db dump wrote no custom-format archive")
	}

	// A second uplink on the same data directory is refused at once, and
	// says who holds it.
	second := startServeArgs(t, env)
	second.waitLive(t)
	s := second.waitPhase(t, status.PhaseError, 10*time.Second)
	t.Logf("second uplink: %s (hint: %s)", s.Reason, s.Hint)
	if !strings.Contains(s.Reason, "uplink.lock") || !strings.Contains(s.Reason, "another Uplink") || !strings.Contains(s.Hint, "UPLINK_DATA_DIR") {
		t.Errorf("second uplink's error does not say the data directory is taken: reason %q, hint %q", s.Reason, s.Hint)
	}
	second.stopOK(t)

	// kill -9 of the postgres child: degraded, then ready again, same process.
	ci, err := lite.ReadConnInfo(dataDir)
	if err != nil || ci.PID == 0 {
		t.Fatalf("no running postgres found on %s: %v", dataDir, err)
	}
	if err := syscall.Kill(ci.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitPhase(t, status.PhaseDegraded, 5*time.Second)
	p.waitPhase(t, status.PhaseReady, 30*time.Second)

	p.stopOK(t)
	code, _, stderr = runCLI(t, cliEnv, "db", "psql")
	if code != exitFailure || !strings.Contains(stderr, "no PostgreSQL runs") {
		t.Errorf("db psql with uplink stopped: code %d, stderr %q", code, stderr)
	}

	// Warm start: the same cluster, the row still there.
	p = startServeArgs(t, env)
	p.waitReady(t, 60*time.Second)
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM kept"); n != 1 {
		t.Errorf("after a warm start the table holds %d rows, want 1", n)
	}
	p.stopOK(t)
}

// TestProcessLiteModeAsNonRoot runs the binary as an ordinary user (the
// postgres OS user, whom the test switches to as root): nothing to drop,
// so PostgreSQL runs as that same user, and with no UPLINK_DATA_DIR the
// data directory is $XDG_DATA_HOME/uplink, the user's own.
func TestProcessLiteModeAsNonRoot(t *testing.T) {
	pgtest.Binaries(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run uplink as another user")
	}
	u, err := user.Lookup("postgres")
	switch {
	case err != nil && os.Getenv("CI") != "":
		t.Fatalf("no postgres OS user to run as (the PostgreSQL package makes one): %v", err)
	case err != nil:
		t.Skipf("no postgres OS user to run as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	base := pgtest.BaseDir(t)
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	// The build lands in a directory only root may enter.
	raw, err := os.ReadFile(proctest.Build(t, "."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "uplink")
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}

	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"UPLINK_LOG_FORMAT=json", "UPLINK_HTTP_ADDR=127.0.0.1:0"}
	asUser := func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		cmd.Dir = home
	}
	p := &proc{Proc: proctest.StartWith(t, asUser, bin, env, "serve")}
	p.addr = p.StatusAddr(t, 10*time.Second)
	p.waitReady(t, 60*time.Second)

	dataDir := filepath.Join(home, "data", "uplink")
	lay := lite.LayoutOf(dataDir)
	for _, f := range []struct {
		path string
		perm os.FileMode
	}{{lay.Data, 0o700 | os.ModeDir}, {lay.Password, 0o600}, {lay.SuperPassword, 0o600}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		if fi.Mode() != f.perm || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
			t.Errorf("%s: mode %v, owner %d; want %v, owned by %s (%d)", f.path, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, f.perm, u.Username, uid)
		}
	}
	ci, err := lite.ReadConnInfo(dataDir)
	if err != nil || ci.PID == 0 {
		t.Fatalf("no running postgres found on %s: %v", dataDir, err)
	}
	procStatus, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ci.PID))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+` + u.Uid + `\s`).Match(procStatus) {
		t.Errorf("postgres (pid %d) does not run as %s:\n%s", ci.PID, u.Username, procStatus)
	}
	p.stopOK(t)
	if err := syscall.Kill(ci.PID, 0); err == nil {
		t.Errorf("postgres (pid %d) still runs after uplink stopped", ci.PID)
	}
}
