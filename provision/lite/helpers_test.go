package lite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/provision"
)

// The helper mode turns the test binary into a second Uplink process:
// tests start it to hold a data directory from another process, and
// kill -9 it as an operator's crash would.
const (
	helperEnv        = "UPLINK_LITE_TEST_HELPER"     // data directory to provision
	helperNoDeathEnv = "UPLINK_LITE_TEST_NODEATHSIG" // start postgres without a parent-death signal
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
		return
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func runHelper(dir string) {
	l, err := New(Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if os.Getenv(helperNoDeathEnv) != "" {
		l.deathSig = 0
	}
	if _, err := l.Provision(context.Background()); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	l.mu.Lock()
	pid := l.pm.pid
	l.mu.Unlock()
	fmt.Println("READY", pid)
	time.Sleep(10 * time.Minute) // until the test kills us
	os.Exit(2)
}

// helper is a second Uplink process holding a data directory.
type helper struct {
	cmd    *exec.Cmd
	pgPID  int // its postmaster
	killed bool
}

func startHelper(t *testing.T, dir string, noDeathSig bool) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	if noDeathSig {
		cmd.Env = append(cmd.Env, helperNoDeathEnv+"=1")
	}
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd}
	t.Cleanup(func() {
		if !h.killed {
			h.kill()
		}
		if t.Failed() {
			t.Logf("helper's log:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "READY %d", &h.pgPID); serr != nil {
		t.Fatalf("helper did not come up: %q %v\n%s", line, err, stderr.String())
	}
	return h
}

// kill is kill -9 of the whole Uplink process, reaped.
func (h *helper) kill() {
	h.killed = true
	h.cmd.Process.Kill()
	h.cmd.Wait()
}

// testLite is a Lite whose log is captured, shown when the test fails,
// and stopped when the test ends.
type testLite struct {
	*Lite
	logs *testutil.Buffer
}

func newLite(t *testing.T, dir string, tweak func(*Config)) testLite {
	t.Helper()
	logs := &testutil.Buffer{}
	cfg := Config{
		DataDir:           dir,
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RestartBackoffMin: 20 * time.Millisecond,
		RestartBackoffMax: 100 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The postgres database at once, so that tests see it; its delay has
	// a test of its own.
	l.postgresDBDelay = 0
	// Never install from a test: the binaries are there or the test is
	// skipped (pgtest.Binaries).
	l.installer.Run = func(context.Context, io.Writer, []string, ...string) error {
		t.Error("lite tried to install PostgreSQL in a test")
		return errors.New("no installs in tests")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if t.Failed() {
			t.Logf("uplink log:\n%s", logs.String())
		}
	})
	return testLite{Lite: l, logs: logs}
}

// dataDir is a fresh data directory the postgres user can reach.
func dataDir(t *testing.T) string {
	t.Helper()
	pgtest.Binaries(t) // skips or fails clearly without PostgreSQL
	return filepath.Join(pgtest.BaseDir(t), "uplink")
}

func provisionOK(t *testing.T, l testLite) provision.DSN {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn, err := l.Provision(ctx)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return dsn
}

// withConn runs f on a connection to dsn, failing the test if it cannot
// connect.
func withConn(t *testing.T, dsn provision.DSN, f func(context.Context, *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn.Secret())
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if err := f(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

func exec1(t *testing.T, dsn provision.DSN, sql string, args ...any) {
	t.Helper()
	withConn(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	})
}

// initialized returns a data directory with a cluster, made by a cold
// Provision and cleanly stopped, and the port it ran on.
func initialized(t *testing.T) (dir string, port int) {
	t.Helper()
	dir = dataDir(t)
	l := newLite(t, dir, nil)
	provisionOK(t, l)
	port = l.run.port
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir, port
}

// comesBack starts a new Uplink on dir after a crash of some kind, and
// checks the table written before is still there.
func comesBack(t *testing.T, dir, table string) testLite {
	t.Helper()
	l := newLite(t, dir, nil)
	dsn := provisionOK(t, l)
	if n := pgtest.QueryInt(t, dsn.Secret(), "SELECT count(*) FROM "+table); n != 1 {
		t.Fatalf("rows in %s after coming back: %d", table, n)
	}
	return l
}

func (l testLite) pid() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pm == nil {
		return 0
	}
	return l.pm.pid
}

// steps lists the steps Status has recorded, oldest first.
func (l testLite) steps() []Step {
	var out []Step
	for _, r := range l.Status().Data["steps"].([]StepRecord) {
		out = append(out, r.Step)
	}
	return out
}

func hasStep(steps []Step, s Step) bool {
	for _, x := range steps {
		if x == s {
			return true
		}
	}
	return false
}

func processAlive(pid int) bool { return pid > 0 && runas.Alive(pid) }

// killPID is kill -9 of one process.
func killPID(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
