// Package pgtest runs throwaway PostgreSQL servers for tests: real
// binaries, found the way the product finds them (internal/pgbin), started
// as the postgres OS user when the tests run as root.
//
// A package whose tests use it should route TestMain through Main, so the
// shared server is stopped and leaked goroutines are reported.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/status"
)

// Binaries finds PostgreSQL for a test the way the product does
// (internal/pgbin): when none is installed and the tests run as root, it
// is installed through the OS package manager, unless
// UPLINK_PG_INSTALL=never. When it still cannot be had, the test is
// skipped, except under CI (CI set), where a missing PostgreSQL is a
// broken machine and the test fails, with the same message the product
// would show.
func Binaries(t testing.TB) pgbin.Binaries {
	t.Helper()
	b, err := findBinaries()
	if err != nil {
		msg := err.Error()
		if hint := status.HintOf(err); hint != "" {
			msg += " (" + hint + ")"
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI: %s", msg)
		}
		t.Skipf("PostgreSQL not available: %s", msg)
	}
	return b
}

var (
	findOnce sync.Once
	found    pgbin.Binaries
	findErr  error
)

func findBinaries() (pgbin.Binaries, error) {
	findOnce.Do(func() {
		// go test ./... runs test binaries side by side; on a fresh
		// machine one installs while the others wait, then find it.
		if lock, err := os.OpenFile(filepath.Join(os.TempDir(), "uplink-pgtest-install.lock"), os.O_CREATE|os.O_RDWR, 0o666); err == nil {
			syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
			defer lock.Close()
		}
		in := &pgbin.Installer{
			Never:  strings.EqualFold(os.Getenv("UPLINK_PG_INSTALL"), "never"),
			Output: os.Stderr,
		}
		var installed bool
		found, installed, findErr = pgbin.Ensure(context.Background(), pgbin.Options{BinDir: os.Getenv("UPLINK_PG_BINDIR")}, in)
		if installed {
			fmt.Fprintf(os.Stderr, "pgtest: installed PostgreSQL %s in %s\n", found.Version, found.Dir)
		}
	})
	return found, findErr
}

// User returns the OS user PostgreSQL runs as in tests: postgres when the
// tests run as root, nil (the current user) otherwise.
func User(t testing.TB) *runas.User {
	t.Helper()
	if !runas.IsRoot() {
		return nil
	}
	u, err := runas.Lookup("postgres")
	if err != nil {
		t.Fatalf("tests run as root need a postgres OS user to run PostgreSQL as: %v", err)
	}
	return u
}

// BaseDir makes a fresh directory that the postgres user can enter:
// t.TempDir is 0700 and owned by root, which PostgreSQL cannot traverse.
// It is removed when the test ends.
func BaseDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "uplink-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Server is one throwaway PostgreSQL cluster.
type Server struct {
	Bin       pgbin.Binaries
	DataDir   string
	SocketDir string
	Port      int
	// Password is the postgres superuser's password (scram-sha-256).
	Password string

	t    testing.TB
	user *runas.User

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// New initialises a cluster in a fresh 0755 base directory, on a free port,
// without starting it: a test can point Uplink at it first and start it
// later. The server is stopped when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, BaseDir(t))
	t.Cleanup(func() { s.Stop() })
	return s
}

// Start is New followed by Start, failing the test if it does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New(t)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, base string) *Server {
	t.Helper()
	s := &Server{
		Bin:       Binaries(t),
		DataDir:   filepath.Join(base, "data"),
		SocketDir: filepath.Join(base, "run"),
		Port:      FreePort(t),
		Password:  "pw-" + randomHex(12),
		t:         t,
		user:      User(t),
	}
	for _, dir := range []string{s.DataDir, s.SocketDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.user.Chown(dir); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.user.Chown(pwfile); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(pwfile)
	out, err := s.command(s.Bin.Path("initdb"), "-D", s.DataDir, "-U", "postgres", "--pwfile", pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	return s.user.Command(context.Background(), name, args...)
}

// Start runs the server and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("pgtest: server already running")
	}
	logPath := s.LogFile()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// fsync off: these clusters are thrown away, and tests should be quick.
	cmd := s.command(s.Bin.Path("postgres"), "-D", s.DataDir, "-p", fmt.Sprint(s.Port),
		"-k", s.SocketDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	// Through a pipe, not the file itself: every process of the server
	// inherits it, so Wait (and exited) ends only when the last one has
	// gone. The postmaster's children run in sessions of their own, out of
	// reach of its process group, and after a kill -9 they linger for a
	// moment holding the shared memory a restart needs.
	cmd.Stdout, cmd.Stderr = struct{ io.Writer }{logFile}, struct{ io.Writer }{logFile}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.mu.Unlock()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited during start: %s\n%s", cmd.ProcessState, tail(log, 2000))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("postgres did not accept connections within 30s: %w", err)
		}
	}
}

func (s *Server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Stop shuts the server down (fast shutdown) and waits for it; a no-op
// when it is not running.
func (s *Server) Stop() error { return s.signal(syscall.SIGINT, 30*time.Second) }

// Kill sends SIGKILL to the server's process group, as a crash would, and
// waits for the postmaster to go.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	// The group: after a SIGKILL of the postmaster alone its children would
	// linger and keep the port and shared memory.
	syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("postgres did not stop within %s after %s", wait, sig)
	}
}

// LogFile is the server's log: what it printed, ERROR lines included.
func (s *Server) LogFile() string { return filepath.Join(filepath.Dir(s.DataDir), "postgres.log") }

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// URL returns a TCP connection URL for database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", s.Password, s.Port, db)
}

var dbSeq atomic.Int64

// NewDatabase creates an empty database for one test and returns its URL.
// Tests sharing a server stay apart this way.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t_%d_%d_%s", os.Getpid(), dbSeq.Add(1), randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Shared returns one server for the whole test binary, started on first
// use and stopped by Main. Use NewDatabase on it for isolation, and New for
// tests that stop or kill their server.
func Shared(t testing.TB) *Server {
	t.Helper()
	Binaries(t)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		base, err := os.MkdirTemp("", "uplink-test-shared-")
		if err == nil {
			err = os.Chmod(base, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		s := newServer(sharedT{t}, base)
		if err := s.Start(); err != nil {
			sharedErr = err
		} else {
			shared = s
			sharedBase = base
		}
	}
	if sharedErr != nil {
		t.Fatalf("shared PostgreSQL: %v", sharedErr)
	}
	return shared
}

var sharedBase string

// sharedT lets the shared server be built with the first caller's test for
// failure reporting, without tying its lifetime to that test.
type sharedT struct{ testing.TB }

func (sharedT) Cleanup(func()) {}

// Main runs the tests, then the after functions (cleanup that must outlive
// every test, such as built executables), stops the shared server if one
// was started, checks for leaked goroutines and exits. Use it as
// TestMain(m) { pgtest.Main(m) }.
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
		os.RemoveAll(sharedBase)
	}
	sharedMu.Unlock()
	// Whoever starts a goroutine owns its wait: one still running after
	// every test ended is a leak (a pool never closed, a service never
	// stopped), and fails the run even when the tests passed.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: goroutines leaked by the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
