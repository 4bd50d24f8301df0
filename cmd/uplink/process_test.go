package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/status"
)

// These tests run the real binary as a separate OS process: signals, exit
// codes and timings are the process's own, not a goroutine's imitation.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := func() int {
		defer func() {
			if buildDir != "" {
				os.RemoveAll(buildDir)
			}
		}()
		pgtest.Main(m)
		return 0
	}()
	os.Exit(code)
}

// binary builds cmd/uplink once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "uplink-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "uplink")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one running uplink process.
type proc struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time
	out     *lockedBuffer
	done    chan struct{}
	err     error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc runs `uplink args...` with env added to a clean environment.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "UPLINK_LOG_FORMAT=json"}, env...)
	p := &proc{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("uplink output:\n%s", p.out.String())
		}
	})
	return p
}

func startServe(t *testing.T, env ...string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
	p := startProc(t, append(env, "UPLINK_HTTP_ADDR="+addr), "serve")
	p.addr = addr
	return p
}

// exitCode waits for the process to end within d and returns its code.
func (p *proc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("uplink still running %s after it was told to stop", d)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errorsAs(p.err, &ee) {
		t.Fatalf("wait: %v", p.err)
	}
	return ee.ExitCode()
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func (p *proc) get(path string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitLive polls /livez until it answers and returns the time since the
// process started.
func (p *proc) waitLive(t *testing.T) time.Duration {
	t.Helper()
	for {
		if code, _, err := p.get("/livez"); err == nil && code == http.StatusOK {
			return time.Since(p.started)
		}
		select {
		case <-p.done:
			t.Fatalf("uplink exited before serving /livez: %v", p.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(p.started) > 10*time.Second {
			t.Fatal("/livez not answering 10s after start")
		}
	}
}

func (p *proc) snapshot(t *testing.T) status.Snapshot {
	t.Helper()
	_, body, err := p.get("/status")
	if err != nil {
		t.Fatal(err)
	}
	var s status.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	return s
}

func (p *proc) waitPhase(t *testing.T, want status.Phase, bound time.Duration) status.Snapshot {
	t.Helper()
	t0 := time.Now()
	for {
		s := p.snapshot(t)
		if s.Phase == want {
			return s
		}
		if time.Since(t0) > bound {
			t.Fatalf("phase %s not reached within %s: phase %s, reason %q, checks %+v", want, bound, s.Phase, s.Reason, s.Checks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func TestProcessProModeLifecycle(t *testing.T) {
	db := pgtest.New(t) // initialised, not started: the database "appears later"
	p := startServe(t, "DATABASE_URL="+db.URL("postgres"))
	live := p.waitLive(t)
	t.Logf("/livez answered %s after exec", live)
	if live > time.Second {
		t.Errorf("/livez took %s; want within 1s of start with the database unreachable", live)
	}
	if code, body, _ := p.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "provisioning") {
		t.Errorf("/readyz before the database = %d %q", code, body)
	}
	s := p.waitPhase(t, status.PhaseProvisioning, time.Second)
	if s.Mode != "pro" {
		t.Errorf("mode = %q, want pro", s.Mode)
	}
	// Let it fail at least once, so that the retry path is what brings it up.
	for deadline := time.Now().Add(5 * time.Second); p.snapshot(t).Checks["database"].Attempts < 1; {
		if time.Now().After(deadline) {
			t.Fatal("no connection attempt recorded within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitPhase(t, status.PhaseReady, 35*time.Second)

	code, stdout, _ := runCLI(t, map[string]string{"UPLINK_HTTP_ADDR": p.addr}, "status")
	if code != exitOK || !strings.Contains(stdout, "ready") {
		t.Errorf("uplink status on a ready server: code %d\n%s", code, stdout)
	}

	t0 := time.Now()
	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(t0))
	logs := p.out.String()
	for _, want := range []string{`"phase":"provisioning"`, `"phase":"ready"`, `"phase":"stopping"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	// Every log line on stdout is JSON when stdout is not a terminal.
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Errorf("log line is not JSON: %q", line)
			}
		}
	}
}

func TestProcessSignalDuringProvisioning(t *testing.T) {
	p := startServe(t, fmt.Sprintf("DATABASE_URL=postgres://u:p@127.0.0.1:%d/db?sslmode=disable", pgtest.FreePort(t)))
	p.waitLive(t)
	p.waitPhase(t, status.PhaseProvisioning, time.Second)
	p.signal(t, syscall.SIGINT)
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT in provisioning = %d, want 0", code)
	}
}

func TestProcessSecondSignalForcesExit(t *testing.T) {
	p := startServe(t, fmt.Sprintf("DATABASE_URL=postgres://u:p@127.0.0.1:%d/db?sslmode=disable", pgtest.FreePort(t)))
	p.waitLive(t)
	// A request that never finishes its headers keeps the HTTP drain, and
	// so the stop, waiting.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /status HTTP/1.1\r\nHost: x\r\n")
	time.Sleep(100 * time.Millisecond) // let the server read the partial request
	p.signal(t, syscall.SIGTERM)
	p.waitStopping(t)
	select {
	case <-p.done:
		t.Fatal("uplink exited before the second signal: the drain did not wait for the open request")
	default:
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 2*time.Second); code != exitFailure {
		t.Errorf("exit code after a second signal = %d, want %d", code, exitFailure)
	}
	if !strings.Contains(p.out.String(), "second terminated: exiting now") {
		t.Errorf("no word about the forced exit:\n%s", p.out.String())
	}
}

// waitStopping waits for the log line of the stopping phase.
func (p *proc) waitStopping(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.out.String(), `"phase":"stopping"`); {
		if time.Now().After(deadline) {
			t.Fatal("no stopping phase within 5s of the signal")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcessHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startProc(t, []string{"DATABASE_URL=postgres://u:p@127.0.0.1:1/db", "UPLINK_HTTP_ADDR=" + ln.Addr().String()}, "serve")
	if code := p.exitCode(t, 5*time.Second); code != exitFailure {
		t.Errorf("exit code with the HTTP address taken = %d, want %d", code, exitFailure)
	}
	out := p.out.String()
	if !strings.Contains(out, "cannot serve HTTP on "+ln.Addr().String()) || !strings.Contains(out, "another program listens") {
		t.Errorf("no clear line about the taken address:\n%s", out)
	}
}

func TestProcessUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"serve", "--bogus"}, {}} {
		p := startProc(t, nil, args...)
		if code := p.exitCode(t, 5*time.Second); code != exitUsage {
			t.Errorf("uplink %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestProcessWrongPasswordIsErrorWithoutLeakingIt(t *testing.T) {
	db := pgtest.Shared(t)
	const pw = "S3cretPassw0rd-grep-me"
	url := strings.Replace(db.URL("postgres"), db.Password, pw, 1)
	p := startServe(t, "DATABASE_URL="+url)
	p.waitLive(t)
	s := p.waitPhase(t, status.PhaseError, 15*time.Second)
	if !strings.Contains(strings.ToLower(s.Reason+s.Hint), "password") {
		t.Errorf("error phase does not say the password is wrong: reason %q hint %q", s.Reason, s.Hint)
	}
	_, body, _ := p.get("/status")
	p.signal(t, syscall.SIGTERM)
	p.exitCode(t, 10*time.Second)
	if strings.Contains(body, pw) || strings.Contains(p.out.String(), pw) {
		t.Fatalf("the password appears in /status or the log")
	}
}
