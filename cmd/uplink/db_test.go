package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
)

func TestDBCommandsProMode(t *testing.T) {
	db := pgtest.Shared(t)
	url := db.NewDatabase(t)
	env := map[string]string{"DATABASE_URL": url}

	code, stdout, stderr := runCLI(t, env, "db", "url")
	if code != exitOK || strings.TrimSpace(stdout) != url {
		t.Fatalf("db url: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// psql runs as a real child process; its output is ours to check.
	p := startProc(t, []string{"DATABASE_URL=" + url}, "db", "psql", "--", "-At", "-c", "SELECT 6 * 7")
	if code := p.ExitCode(t, 30*time.Second); code != 0 || strings.TrimSpace(p.Out.String()) != "42" {
		t.Fatalf("db psql: exit %d, output %q", code, p.Out.String())
	}
	// Without --: psql's flags go to psql, Uplink's own stay Uplink's.
	p = startProc(t, nil, "db", "psql", "-At", "--database-url", url, "-c", "SELECT 6 * 8")
	if code := p.ExitCode(t, 30*time.Second); code != 0 || strings.TrimSpace(p.Out.String()) != "48" {
		t.Fatalf("db psql without --: exit %d, output %q", code, p.Out.String())
	}
	// A failing statement's exit code comes through.
	p = startProc(t, []string{"DATABASE_URL=" + url}, "db", "psql", "--", "-v", "ON_ERROR_STOP=1", "-c", "SELECT nonsense")
	if code := p.ExitCode(t, 30*time.Second); code == 0 {
		t.Fatalf("db psql with an error exited 0: %s", p.Out.String())
	}

	file := filepath.Join(t.TempDir(), "app.dump")
	code, _, stderr = runCLI(t, env, "db", "dump", file)
	if code != exitOK {
		t.Fatalf("db dump: code %d, stderr %q", code, stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(b), "PGDMP") {
		t.Fatalf("db dump did not write a custom-format archive: %v, %q", err, b[:min(len(b), 16)])
	}
}

func TestDBCommandsCAFile(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	// A self-signed certificate will do: nothing connects.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": "postgres://u:pw@db.example/app?sslmode=verify-full", "UPLINK_DATABASE_CA_FILE": ca}
	code, stdout, stderr := runCLI(t, env, "db", "url")
	if code != exitOK || !strings.Contains(stdout, "sslrootcert=") || !strings.Contains(stdout, "sslmode=verify-full") {
		t.Fatalf("db url with a CA file: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestDBCommandUsage(t *testing.T) {
	for _, args := range [][]string{{"db"}, {"db", "frob"}, {"db", "url", "extra"}, {"db", "dump", "a", "b"}} {
		code, _, stderr := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage: uplink db") {
			t.Errorf("uplink %v: code %d, stderr %q", args, code, stderr)
		}
	}
	// Help is Uplink's, not psql's, and answers before any database.
	if code, stdout, _ := runCLI(t, nil, "db", "psql", "--help"); code != exitOK || !strings.Contains(stdout, "Usage: uplink db") {
		t.Errorf("db psql --help: code %d, stdout %q", code, stdout)
	}
	code, _, stderr := runCLI(t, map[string]string{"DATABASE_URL": "mysql://x"}, "db", "url")
	if code != exitFailure || !strings.Contains(stderr, "hint:") {
		t.Errorf("db url with a bad URL: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, map[string]string{"UPLINK_DATA_DIR": t.TempDir()}, "db", "url")
	if code != exitFailure || !strings.Contains(stderr, "no Uplink PostgreSQL in") {
		t.Errorf("db url on an empty data dir: code %d, stderr %q", code, stderr)
	}
}
