package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/proctest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/status"
)

// These tests run the real binary as a separate OS process: signals, exit
// codes and timings are the process's own, not a goroutine's imitation.

func TestMain(m *testing.M) { pgtest.Main(m, proctest.RemoveBuilds) }

// proc is one running uplink process, built from this package once per
// test run.
type proc struct {
	*proctest.Proc
	addr string
}

// startProc runs `uplink args...` with env added to a clean environment.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "UPLINK_LOG_FORMAT=json"}, env...)
	return &proc{Proc: proctest.Start(t, proctest.Build(t, "."), env, args...)}
}

func startServe(t *testing.T, env ...string) *proc {
	t.Helper()
	return startServeArgs(t, env)
}

// startServeArgs is startServe with flags. The status server listens on a
// port the kernel picks (see proctest.Proc.StatusAddr).
func startServeArgs(t *testing.T, env []string, flags ...string) *proc {
	t.Helper()
	p := startProc(t, append(env, "UPLINK_HTTP_ADDR=127.0.0.1:0"), append([]string{"serve"}, flags...)...)
	p.addr = p.StatusAddr(t, 10*time.Second) // "": exited first, and the test says what it expected
	return p
}

func (p *proc) get(path string) (int, string, error) { return testutil.Get("http://" + p.addr + path) }

// waitLive polls /livez until it answers and returns the time since the
// process started.
func (p *proc) waitLive(t *testing.T) time.Duration {
	t.Helper()
	for {
		if code, _, err := p.get("/livez"); err == nil && code == http.StatusOK {
			return time.Since(p.Started)
		}
		select {
		case <-p.Done():
			t.Fatalf("uplink exited before serving /livez: %v", p.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(p.Started) > 10*time.Second {
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
	testutil.Eventually(t, "a connection attempt recorded", 5*time.Second, func() bool {
		return p.snapshot(t).Checks["database"].Attempts >= 1
	})
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitPhase(t, status.PhaseReady, 35*time.Second)

	code, stdout, _ := runCLI(t, map[string]string{"UPLINK_HTTP_ADDR": p.addr}, "status")
	if code != exitOK || !strings.Contains(stdout, "ready") {
		t.Errorf("uplink status on a ready server: code %d\n%s", code, stdout)
	}

	t0 := time.Now()
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(t0))
	logs := p.Out.String()
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
	p.Signal(t, syscall.SIGINT)
	if code := p.ExitCode(t, 5*time.Second); code != 0 {
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
	p.Signal(t, syscall.SIGTERM)
	p.waitStopping(t)
	select {
	case <-p.Done():
		t.Fatal("uplink exited before the second signal: the drain did not wait for the open request")
	default:
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 2*time.Second); code != exitFailure {
		t.Errorf("exit code after a second signal = %d, want %d", code, exitFailure)
	}
	if !strings.Contains(p.Out.String(), "second terminated: exiting now") {
		t.Errorf("no word about the forced exit:\n%s", p.Out.String())
	}
}

// waitStopping waits for the log line of the stopping phase.
func (p *proc) waitStopping(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, "the stopping phase after the signal", 5*time.Second, func() bool {
		return strings.Contains(p.Out.String(), `"phase":"stopping"`)
	})
}

func TestProcessHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startProc(t, []string{"DATABASE_URL=postgres://u:p@127.0.0.1:1/db", "UPLINK_HTTP_ADDR=" + ln.Addr().String()}, "serve")
	if code := p.ExitCode(t, 5*time.Second); code != exitFailure {
		t.Errorf("exit code with the HTTP address taken = %d, want %d", code, exitFailure)
	}
	out := p.Out.String()
	if !strings.Contains(out, "cannot serve HTTP on "+ln.Addr().String()) || !strings.Contains(out, "another program listens") {
		t.Errorf("no clear line about the taken address:\n%s", out)
	}
}

func TestProcessUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"serve", "--bogus"}, {}} {
		p := startProc(t, nil, args...)
		if code := p.ExitCode(t, 5*time.Second); code != exitUsage {
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
	p.Signal(t, syscall.SIGTERM)
	p.ExitCode(t, 10*time.Second)
	if strings.Contains(body, pw) || strings.Contains(p.Out.String(), pw) {
		t.Fatalf("the password appears in /status or the log")
	}
}

// A forced exit (second signal) takes the commands of running hooks with
// it, and what they started: nothing is left behind without a parent.
func TestProcessSecondSignalKillsRunningHooks(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	hooks := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	testutil.WriteFiles(t, hooks, map[string]string{
		"pre-stop/10_hang*": "#!/bin/sh\nsleep 300 &\necho $! > " + pidFile + "\nwait\n",
	})
	p := startServeArgs(t, []string{"DATABASE_URL=" + url}, "--hooks", hooks)
	// Its own log line, not /readyz: the port was free when picked, but
	// only the log is surely this process's.
	testutil.Eventually(t, "phase ready", 30*time.Second, func() bool { return strings.Contains(p.Out.String(), `"phase":"ready"`) })
	p.Signal(t, syscall.SIGTERM)
	var pid int
	defer func() {
		if t.Failed() {
			code, body, err := p.get("/status")
			t.Logf("status %d %v %s\noutput:\n%s", code, err, body, p.Out.String())
		}
	}()
	testutil.Eventually(t, "the pre-stop hook's child", 10*time.Second, func() bool {
		raw, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		return err == nil && pid > 0
	})
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 5*time.Second); code != exitFailure {
		t.Errorf("exit code after a second signal = %d, want %d", code, exitFailure)
	}
	testutil.Eventually(t, "the hook's sleep gone", 5*time.Second, func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		_, rest, _ := strings.Cut(string(stat), ") ")
		return err != nil || strings.HasPrefix(rest, "Z") // gone, or dead and not yet reaped
	})
}
