package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/status"
)

// runCLI runs the command line in-process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

func TestUsageAndHelp(t *testing.T) {
	code, _, stderr := runCLI(t, nil)
	if code != exitUsage || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no args: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.Contains(stderr, "serve") {
		t.Errorf("unknown command: code %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runCLI(t, nil, "--help")
	if code != exitOK || !strings.Contains(stdout, "status") {
		t.Errorf("--help: code %d, stdout %q", code, stdout)
	}
	for name := range commands {
		code, stdout, stderr := runCLI(t, nil, name, "--help")
		if code != exitOK || !strings.Contains(stdout, "Usage: uplink "+name) {
			t.Errorf("%s --help: code %d, stdout %q, stderr %q", name, code, stdout, stderr)
		}
		code, _, stderr = runCLI(t, nil, name, "--no-such-flag")
		if code != exitUsage || !strings.Contains(stderr, "no-such-flag") || !strings.Contains(stderr, "Usage: uplink "+name) {
			t.Errorf("%s --no-such-flag: code %d, stderr %q", name, code, stderr)
		}
	}
}

func TestHelpNeverShowsTheDatabasePassword(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://u:HelpLeakPw123@db/app"}
	_, stdout, stderr := runCLI(t, env, "serve", "--help")
	if strings.Contains(stdout+stderr, "HelpLeakPw123") {
		t.Fatalf("serve --help shows the password from DATABASE_URL:\n%s", stdout)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "uplink ") {
		t.Fatalf("version: code %d, stdout %q", code, stdout)
	}
	code, _, _ = runCLI(t, nil, "version", "extra")
	if code != exitUsage {
		t.Fatalf("version extra: code %d, want %d", code, exitUsage)
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	cases := map[string][]string{
		"env word":   {"serve", "--env", "staging"},
		"log level":  {"serve", "--log-level", "loud"},
		"log format": {"serve", "--log-format", "xml"},
		"extra arg":  {"serve", "now"},
	}
	for name, args := range cases {
		code, _, stderr := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage: uplink serve") {
			t.Errorf("%s: code %d, stderr %q", name, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, map[string]string{"UPLINK_ENV": "staging"}, "serve")
	if code != exitUsage || !strings.Contains(stderr, "staging") {
		t.Errorf("UPLINK_ENV=staging: code %d, stderr %q", code, stderr)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	m := &Main{Env: &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(k string) string {
		return map[string]string{"UPLINK_HTTP_ADDR": "127.0.0.1:1111", "UPLINK_MODE": "pro", "DATABASE_URL": "postgres://x/y",
			"UPLINK_POOL_MAX_CONNS": "12", "UPLINK_MIGRATION_LOCK_TIMEOUT": "3s"}[k]
	}}}
	if done, code := m.ParseFlags([]string{"--http", "127.0.0.1:2222", "--migration-lock-timeout", "4s"}); done {
		t.Fatalf("ParseFlags ended with %d", code)
	}
	if m.Config.HTTPAddr != "127.0.0.1:2222" || m.Config.Mode != "pro" || m.Config.DatabaseURL != "postgres://x/y" ||
		m.Config.PoolMaxConns != 12 || m.Config.MigrationLockTimeout != 4*time.Second {
		t.Fatalf("config = %+v", m.Config)
	}
}

func TestStatusCommand(t *testing.T) {
	snap := status.Snapshot{Phase: status.PhaseDegraded, Status: status.Fail, Mode: "pro", Version: "v1", Since: time.Now().Add(-time.Minute),
		Reason: "database unreachable",
		Checks: map[string]status.Check{"database": {Status: status.Fail, Detail: "unreachable", LastError: "connection refused", Attempts: 3, NextRetry: time.Now().Add(2 * time.Second)}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, snap)
	}))
	defer srv.Close()

	code, stdout, _ := runCLI(t, nil, "status", "--http", srv.URL)
	if code != exitFailure {
		t.Errorf("status of a degraded server: code %d, want %d", code, exitFailure)
	}
	for _, want := range []string{"degraded", "database", "connection refused", "attempt 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("human status lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, map[string]string{"UPLINK_HTTP_ADDR": strings.TrimPrefix(srv.URL, "http://")}, "status", "--json")
	if code != exitFailure || !strings.Contains(stdout, `"phase":"degraded"`) {
		t.Errorf("status --json via UPLINK_HTTP_ADDR: code %d, stdout %q", code, stdout)
	}

	snap.Phase, snap.Status = status.PhaseReady, status.Pass
	if code, _, _ := runCLI(t, nil, "status", "--http", srv.URL); code != exitOK {
		t.Errorf("status of a ready server: code %d", code)
	}

	srv.Close()
	code, _, stderr := runCLI(t, nil, "status", "--http", strings.TrimPrefix(srv.URL, "http://"))
	if code != exitNoServer || !strings.Contains(stderr, "no uplink answers") {
		t.Errorf("status with nothing listening: code %d, stderr %q", code, stderr)
	}
}

func TestStatusURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4080":         "http://127.0.0.1:4080/status",
		":4080":                  "http://127.0.0.1:4080/status",
		"0.0.0.0:9":              "http://127.0.0.1:9/status",
		"http://example:1/":      "http://example:1/status",
		"https://host.example:8": "https://host.example:8/status",
	} {
		if got := statusURL(in); got != want {
			t.Errorf("statusURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackupFlags(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*Main, int) {
		m := &Main{Env: &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return env[k] }}}
		_, code := m.ParseFlags(args)
		return m, code
	}
	m, code := parse(nil, "--backup-interval", "6h", "--backup-keep", "3")
	if code != exitOK || m.Config.Backups.Interval != 6*time.Hour || m.Config.Backups.Keep != 3 {
		t.Errorf("6h/3: code %d, backups %+v", code, m.Config.Backups)
	}
	m, code = parse(map[string]string{"UPLINK_BACKUP_INTERVAL": "off", "UPLINK_BACKUP_KEEP": "0"})
	if code != exitOK || m.Config.Backups.Enabled() || m.Config.Backups.Keep != -1 {
		t.Errorf("off/0 from the environment: code %d, backups %+v", code, m.Config.Backups)
	}
	m, code = parse(nil)
	if code != exitOK || m.Config.Backups.Interval != 0 || m.Config.Backups.Keep != 0 {
		t.Errorf("defaults: code %d, backups %+v; want zero values for boot's defaults", code, m.Config.Backups)
	}
	for _, bad := range [][]string{{"--backup-interval", "soon"}, {"--backup-interval", "-1h"}, {"--backup-keep", "-2"}} {
		if _, code := parse(nil, bad...); code != exitUsage {
			t.Errorf("%v: code %d, want %d", bad, code, exitUsage)
		}
	}
}
