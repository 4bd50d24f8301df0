package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
)

// TestTodoApp builds the example, runs it as a real process in lite mode
// (no database given: it runs its own), uses its API, watches its job run,
// then stops it with SIGTERM while an HTTP request and a long job are
// under way, and checks the order of the stop in its log.
func TestTodoApp(t *testing.T) {
	pgtest.Binaries(t) // skips without PostgreSQL, as the other tests do
	bin := filepath.Join(t.TempDir(), "todo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
	base := "http://" + addr
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "UPLINK_DATA_DIR="+pgtest.BaseDir(t), "UPLINK_HTTP_ADDR="+addr,
		"UPLINK_ENV=dev", "UPLINK_LOG_LEVEL=debug")
	logs := &lines{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("the app's log:\n%s", logs.String())
		}
	})

	waitFor(t, "ready", 90*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == http.StatusOK })

	// The dev-only seed task ran once, before the services started.
	var list []map[string]any
	decode(t, base+"/todos", &list)
	if len(list) != 2 {
		t.Errorf("seeded todos = %v; want the 2 of the dev seed task", list)
	}

	// A todo and its job, created together; the job processes it.
	id := create(t, base, `{"title": "try uplink"}`)
	waitFor(t, "the todo's job", 10*time.Second, func() bool {
		var td map[string]any
		decode(t, fmt.Sprintf("%s/todos/%d", base, id), &td)
		return td["processed_at"] != nil
	})
	var snap struct {
		Checks map[string]struct {
			Data map[string]any `json:"data"`
		} `json:"checks"`
	}
	decode(t, base+"/status", &snap)
	if _, ok := snap.Checks["queues"].Data["queues"].(map[string]any)["default"]; !ok {
		t.Errorf("/status lacks the default queue's depth: %+v", snap.Checks["queues"])
	}

	// A job that would take a minute, running when the signal comes.
	long := create(t, base, `{"title": "long", "work_ms": 60000}`)
	waitFor(t, "the long job to start", 10*time.Second, func() bool {
		return logs.has(fmt.Sprintf(`"msg":"todo job started","todo_id":%d`, long))
	})
	// A request under way when the signal comes: its body arrives after.
	body, send := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/todos", "application/json", body)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	fmt.Fprint(send, `{"title": "in flight",`)
	time.Sleep(100 * time.Millisecond) // the request is in the handler now
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readiness off", 5*time.Second, func() bool { return logs.has(`"msg":"phase stopping"`) })
	time.Sleep(300 * time.Millisecond)
	fmt.Fprint(send, ` "work_ms": 0}`)
	send.Close()
	if code := <-slow; code != http.StatusCreated {
		t.Errorf("the request under way at SIGTERM got %d; want 201: HTTP must drain before anything stops", code)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not exit within 30s of SIGTERM")
	}

	// The stop, in order.
	logs.inOrder(t,
		`"msg":"signal received; stopping"`,
		`"msg":"phase stopping"`,                  // readiness off
		`"msg":"todo created"`,                    // the request under way finished: HTTP drained
		`"msg":"jobs: stopping: fetching stopped`, // no new jobs
		`"msg":"jobs: soft stop timed out; cancelling running jobs"`,
		fmt.Sprintf(`"msg":"todo job cancelled","todo_id":%d`, long),
		`"msg":"jobs: stopped after cancelling running jobs"`,
		`"msg":"supervise: service stopped","service":"pool"`,
		`"msg":"postgres: stopping PostgreSQL"`,
		`"msg":"postgres: PostgreSQL stopped"`,
		`"msg":"stopped"`,
	)
}

func create(t *testing.T, base, body string) int64 {
	t.Helper()
	resp, err := http.Post(base+"/todos", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID int64 }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /todos %s: %d, %v", body, resp.StatusCode, err)
	}
	return out.ID
}

func get(url string) (int, []byte) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode(t *testing.T, url string, v any) {
	t.Helper()
	code, b := get(url)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, code, b, err)
	}
}

func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	for t0 := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(t0) > bound {
			t.Fatalf("%s: not within %s", what, bound)
		}
	}
}

// lines is the app's output, kept whole.
type lines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lines) has(s string) bool { return strings.Contains(l.String(), s) }

// inOrder checks that each fragment appears on a log line after the line
// of the fragment before it.
func (l *lines) inOrder(t *testing.T, fragments ...string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	i := 0
	for sc.Scan() && i < len(fragments) {
		if strings.Contains(sc.Text(), fragments[i]) {
			i++
		}
	}
	if i < len(fragments) {
		t.Errorf("the log lacks %q after %q", fragments[i], fragments[max(i-1, 0)])
	}
}
