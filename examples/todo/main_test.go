package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/proctest"
	"github.com/uplinkhq/uplink/internal/testutil"
)

func TestMain(m *testing.M) { pgtest.Main(m, proctest.RemoveBuilds) }

// TestTodoApp builds the example, runs it as a real process in lite mode
// (no database given: it runs its own), uses its API, watches its job run,
// then stops it with SIGTERM while an HTTP request and a long job are
// under way, and checks the order of the stop in its log.
func TestTodoApp(t *testing.T) {
	pgtest.Binaries(t) // skips without PostgreSQL, as the other tests do
	bin := proctest.Build(t, ".")
	app := proctest.Start(t, bin, append(os.Environ(),
		"UPLINK_DATA_DIR="+pgtest.BaseDir(t), "UPLINK_HTTP_ADDR=127.0.0.1:0", "UPLINK_ENV=dev", "UPLINK_LOG_LEVEL=debug"))
	base := "http://" + app.StatusAddr(t, 30*time.Second)

	testutil.Eventually(t, "ready", 90*time.Second, func() bool { code, _, _ := testutil.Get(base + "/readyz"); return code == http.StatusOK })

	// The dev-only seed task ran once, before the services started.
	var list []map[string]any
	decode(t, base+"/todos", &list)
	if len(list) != 2 {
		t.Errorf("seeded todos = %v; want the 2 of the dev seed task", list)
	}

	// A todo and its job, created together; the job processes it.
	id := create(t, base, `{"title": "try uplink"}`)
	testutil.Eventually(t, "the todo's job", 10*time.Second, func() bool {
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
	testutil.Eventually(t, "the long job to start", 10*time.Second, func() bool {
		return strings.Contains(app.Out.String(), fmt.Sprintf(`"msg":"todo job started","todo_id":%d`, long))
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
	app.Signal(t, syscall.SIGTERM)
	testutil.Eventually(t, "readiness off", 5*time.Second, func() bool { return strings.Contains(app.Out.String(), `"msg":"phase stopping"`) })
	time.Sleep(300 * time.Millisecond)
	fmt.Fprint(send, ` "work_ms": 0}`)
	send.Close()
	if code := <-slow; code != http.StatusCreated {
		t.Errorf("the request under way at SIGTERM got %d; want 201: HTTP must drain before anything stops", code)
	}
	if code := app.ExitCode(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}

	// The stop, in order.
	inOrder(t, app.Out.String(),
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

func decode(t *testing.T, url string, v any) {
	t.Helper()
	code, b, _ := testutil.Get(url)
	if err := json.Unmarshal([]byte(b), v); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, code, b, err)
	}
}

// inOrder checks that each fragment appears on a line of log after the
// line of the fragment before it.
func inOrder(t *testing.T, log string, fragments ...string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
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
