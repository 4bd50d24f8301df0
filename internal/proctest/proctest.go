// Package proctest runs a main package of the module as a real OS process
// in a test: built once per test binary, started with the environment the
// test gives it, its output kept, its exit code waited for within a
// bound, and killed when the test ends.
package proctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/testutil"
)

type build struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
)

// Build compiles the main package in dir ("." for the test's own package)
// the first time a test of this binary asks for it, and returns the
// executable's path. A failed build fails every test that asks.
//
// The executable lives in a temporary directory until RemoveBuilds, which a
// TestMain calls after the tests (pgtest.Main(m, proctest.RemoveBuilds)).
func Build(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	buildsMu.Lock()
	b := builds[abs]
	if b == nil {
		b = &build{}
		builds[abs] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		tmp, err := os.MkdirTemp("", "proctest-"+filepath.Base(abs)+"-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(tmp, filepath.Base(abs))
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Dir = abs
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", abs, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RemoveBuilds deletes the executables Build made in this test binary.
func RemoveBuilds() {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	for _, b := range builds {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
}

// Proc is a process started by Start.
type Proc struct {
	Cmd     *exec.Cmd
	Out     *testutil.Buffer // stdout and stderr, as they come
	Started time.Time        // just before the exec

	done chan struct{}
	err  error // valid once done is closed
}

// Start runs bin with args and env as its whole environment (nil: the
// test's own). When the test ends the process is killed and reaped, and
// its output is logged if the test failed.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, nil, bin, env, args...)
}

// StartWith is Start with prepare, if set, called on the command before
// it starts (to run it as another user, say).
func StartWith(t testing.TB, prepare func(*exec.Cmd), bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if prepare != nil {
		prepare(cmd)
	}
	p := &Proc{Cmd: cmd, Out: &testutil.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	p.Started = time.Now()
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
			t.Logf("%s output:\n%s", filepath.Base(bin), p.Out.String())
		}
	})
	return p
}

// servingRE matches boot's JSON log line for its status server.
var servingRE = regexp.MustCompile(`"msg":"serving status","addr":"([^"]+)"`)

// StatusAddr waits up to within for the process's "serving status" log
// line (JSON) and returns the address in it: how a test learns the port
// of an Uplink told to listen on 127.0.0.1:0. A port found free
// beforehand can be taken, before Uplink binds it, by any other test's
// outgoing connection. "" if the process exits first; the test fails if
// the line does not come in time.
func (p *Proc) StatusAddr(t testing.TB, within time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(p.Out.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			return ""
		default:
		}
	}
	t.Fatalf("no \"serving status\" line %s after start", within)
	return ""
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is what waiting for the process returned, once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// ExitCode waits for the process to exit, failing the test if it is still
// running after within, and returns its exit code (-1 when a signal ended
// it).
func (p *Proc) ExitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still running %s after it was told to stop", filepath.Base(p.Cmd.Path), within)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("wait: %v", p.err)
	}
	return ee.ExitCode()
}

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}
