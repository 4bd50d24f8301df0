package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/internal/pgtest"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateCommand(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := filepath.Join(t.TempDir(), "migrations")
	env := map[string]string{"UPLINK_LOG_FORMAT": "text"}
	migrateCLI := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, env, append([]string{"migrate"}, append(args, "--dir", dir, "--database", url)...)...)
	}

	// new: numbered files in a directory it creates.
	code, stdout, stderr := migrateCLI("new", "create users")
	first := filepath.Join(dir, "0001_create_users.sql")
	if code != exitOK || strings.TrimSpace(stdout) != first {
		t.Fatalf("new: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	writeFile(t, first, "CREATE TABLE users (id int PRIMARY KEY);\n")
	code, stdout, _ = migrateCLI("new", "seed", "--format", "pair")
	if code != exitOK || !strings.Contains(stdout, "0002_seed.up.sql") || !strings.Contains(stdout, "0002_seed.down.sql") {
		t.Fatalf("new --format pair: code %d, stdout %q", code, stdout)
	}
	writeFile(t, filepath.Join(dir, "0002_seed.up.sql"), "INSERT INTO users VALUES (1);\n")
	writeFile(t, filepath.Join(dir, "0002_seed.down.sql"), "DELETE FROM users;\n")

	code, stdout, stderr = runCLI(t, nil, "migrate", "validate", "--dir", dir)
	if code != exitOK || !strings.Contains(stdout, "2 migration(s)") {
		t.Fatalf("validate: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = migrateCLI("plan", "--json")
	var plan struct {
		Lines []struct {
			Line    string
			Entries []struct{ Version int64 }
		}
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &plan) != nil || len(plan.Lines) != 1 || len(plan.Lines[0].Entries) != 2 {
		t.Fatalf("plan --json: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = migrateCLI("up", "--to", "1")
	if code != exitOK || !strings.HasPrefix(stdout, "applied app 0001_create_users (") {
		t.Fatalf("up --to 1: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// The current mode's database when --database is not given.
	code, stdout, stderr = runCLI(t, map[string]string{"DATABASE_URL": url, "UPLINK_MIGRATIONS_DIR": dir}, "migrate", "up")
	if code != exitOK || !strings.HasPrefix(stdout, "applied app 0002_seed (") {
		t.Fatalf("up from DATABASE_URL and UPLINK_MIGRATIONS_DIR: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = migrateCLI("up")
	if code != exitOK || stdout != "nothing to apply: up to date\n" {
		t.Fatalf("up again: code %d, stdout %q", code, stdout)
	}

	// A broken migration: the error names file, line:column, statement and SQLSTATE.
	writeFile(t, filepath.Join(dir, "0003_broken.sql"), "ALTER TABLE users ADD name text;\nSELECT * FORM users;\n")
	code, _, stderr = migrateCLI("up")
	if code != exitFailure ||
		!strings.Contains(stderr, "uplink migrate up: migrations/0003_broken.sql:2:10: app migration 3 (broken), statement 2 of 2: syntax error at or near \"FORM\" (SQLSTATE 42601)") ||
		!strings.Contains(stderr, "hint: fix migrations/0003_broken.sql and run again (restart); the failure is recorded in uplink.schema_history") {
		t.Fatalf("up with a broken file: code %d, stderr %q", code, stderr)
	}
	code, stdout, _ = migrateCLI("status")
	if code != exitOK || !strings.Contains(stdout, "0003     broken        failed") || !strings.Contains(stdout, "statement 2; syntax error") {
		t.Fatalf("status: code %d, stdout:\n%s", code, stdout)
	}
	os.Remove(filepath.Join(dir, "0003_broken.sql"))

	// Drift, then accept.
	writeFile(t, first, "-- users\nCREATE TABLE users (id int PRIMARY KEY);\n")
	code, _, stderr = migrateCLI("up")
	if code != exitFailure || !strings.Contains(stderr, "migrations/0001_create_users.sql: app migration 1 changed after it was applied") ||
		!strings.Contains(stderr, "hint: restore the file as it was applied, or record the change on purpose: uplink migrate accept --line app 1") {
		t.Fatalf("up after an edit: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr = migrateCLI("accept", "1"); code != exitOK {
		t.Fatalf("accept: code %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = migrateCLI("status", "--json")
	var rep struct {
		Lines []struct {
			Current int64
			Entries []struct {
				State   string
				Drifted bool
			}
		}
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Lines[0].Current != 2 || rep.Lines[0].Entries[0].Drifted {
		t.Fatalf("status --json: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// Down past a plain file (no down) is refused before anything runs.
	code, stdout, stderr = migrateCLI("down", "--to", "0")
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, "migrations/0001_create_users.sql: app migration 1 has no down migration") {
		t.Fatalf("down --to 0: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = migrateCLI("down")
	if code != exitOK || !strings.HasPrefix(stdout, "reverted app 0002_seed (") {
		t.Fatalf("down: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestMigrateCommandLine(t *testing.T) {
	cases := map[string][]string{
		"no subcommand":  {"migrate"},
		"unknown":        {"migrate", "sideways"},
		"accept no arg":  {"migrate", "accept"},
		"new two args":   {"migrate", "new", "a", "b"},
		"bad version":    {"migrate", "accept", "seven", "--dir", "."},
		"empty new name": {"migrate", "new", "!!!", "--dir", "."},
	}
	for name, args := range cases {
		code, _, stderr := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage: uplink migrate") {
			t.Errorf("%s: code %d, stderr %q", name, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, nil, "migrate", "validate", "--dir", filepath.Join(t.TempDir(), "none"))
	if code != exitFailure || !strings.Contains(stderr, "hint: point --dir") {
		t.Errorf("validate of a missing dir: code %d, stderr %q", code, stderr)
	}
}

// A migration's statement_timeout comes from the flag or its variable,
// and a statement that outlives it fails, named, with PostgreSQL's code.
func TestMigrationStatementTimeoutFlag(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "0001_slow.sql"), "SELECT pg_sleep(5);\n")
	code, _, stderr := runCLI(t, map[string]string{"UPLINK_MIGRATION_STATEMENT_TIMEOUT": "200ms"}, "migrate", "up", "--dir", dir, "--database", url)
	if code == exitOK || !strings.Contains(stderr, "57014") || !strings.Contains(stderr, "0001_slow.sql") {
		t.Errorf("a 5 s migration under a 200ms statement_timeout: code %d\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "migrate", "up", "--dir", dir, "--database", url, "--migration-statement-timeout", "200ms")
	if code == exitOK || !strings.Contains(stderr, "57014") {
		t.Errorf("the same with the flag: code %d\n%s", code, stderr)
	}
}
