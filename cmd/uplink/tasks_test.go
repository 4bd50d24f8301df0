package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(t *testing.T, bound time.Duration) {
	t.Helper()
	for t0 := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if code, _, err := p.get("/readyz"); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("uplink exited before ready: %v", p.Err())
		default:
		}
		if time.Since(t0) > bound {
			s := p.snapshot(t)
			t.Fatalf("not ready within %s: phase %s, reason %q, checks %+v", bound, s.Phase, s.Reason, s.Checks)
		}
	}
}

func (p *proc) stopOK(t *testing.T) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// TestProcessTasksTenReplicas boots ten real uplink processes at once on
// one new database, with a tasks directory and post-start hooks, and
// counts what the tasks did.
func TestProcessTasksTenReplicas(t *testing.T) {
	const replicas = 10
	url := pgtest.Shared(t).NewDatabase(t)
	psql := pgtest.Binaries(t).Path("psql")
	migs, tasks, out := t.TempDir(), t.TempDir(), t.TempDir()
	testutil.WriteFiles(t, migs, map[string]string{"0001_effects.sql": "CREATE TABLE effects (task text NOT NULL, at timestamptz DEFAULT now());"})
	testutil.WriteFiles(t, tasks, map[string]string{
		"10_once.sql":    "-- uplink: policy=once\nINSERT INTO effects (task) VALUES ('once');\n",
		"20_always.sql":  "-- uplink: policy=always\nINSERT INTO effects (task) VALUES ('always');\n",
		"30_demo.sql":    "-- demo users, never in production\n-- uplink: env=dev\nINSERT INTO effects (task) VALUES ('demo');\n",
		"40_restore.sh*": "#!/bin/sh\n# uplink: fresh timeout=20s\nexec \"$PSQL\" -qX \"$DATABASE_URL\" -c \"INSERT INTO effects (task) VALUES ('restore')\"\n",
		"50_change.sql":  "-- uplink: on-change\nINSERT INTO effects (task) VALUES ('change');\n",
	})
	env := []string{"DATABASE_URL=" + url, "UPLINK_ENV=prod", "PSQL=" + psql}
	flags := []string{"--migrations", migs, "--tasks", tasks,
		"--post-start", `echo "$DATABASE_URL" > "` + out + `/seen-$UPLINK_HOOK_STAGE-$$"`,
		"--post-start", `echo "cannot reach $DATABASE_URL"; exit 3`}

	t0 := time.Now()
	procs := make([]*proc, replicas)
	for i := range procs {
		procs[i] = startServeArgs(t, env, flags...)
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.waitReady(t, 45*time.Second) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d replicas ready %s after start", replicas, time.Since(t0).Round(time.Millisecond))

	effects := func() map[string]int {
		m := map[string]int{}
		for _, task := range []string{"once", "always", "demo", "restore", "change"} {
			m[task] = pgtest.QueryInt(t, url, "SELECT count(*) FROM effects WHERE task = $1", task)
		}
		return m
	}
	want := map[string]int{"once": 1, "always": replicas, "demo": 0, "restore": 1, "change": 1}
	if got := effects(); !maps.Equal(got, want) {
		t.Errorf("after %d replicas booted together: effects %v, want %v", replicas, got, want)
	}
	for i, p := range procs {
		// Every boot held the lock once (its always-task was due) and ran
		// the always-task exactly then.
		if n := strings.Count(p.Out.String(), `"msg":"startup task ran","task":"always"`); n != 1 {
			t.Errorf("replica %d logged the always-task %d times", i, n)
		}
	}
	if n := pgtest.QueryInt(t, url, "SELECT attempts FROM uplink.schema_history WHERE line = 'tasks' AND key = 'always'"); n != replicas {
		t.Errorf("always-task recorded %d attempts, want %d", n, replicas)
	}

	// Post-start hooks: one saw DATABASE_URL, one failed; every replica
	// stays ready and says so in /status.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		seen, _ := filepath.Glob(filepath.Join(out, "seen-post-start-*"))
		if len(seen) == replicas {
			for _, f := range seen {
				if b, _ := os.ReadFile(f); strings.TrimSpace(string(b)) != url {
					t.Errorf("hook saw DATABASE_URL=%q", b)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replicas ran the post-start hook", len(seen), replicas)
		}
	}
	pw := strings.SplitN(strings.SplitN(url, "@", 2)[0], ":", 3)[2]
	for i, p := range procs {
		var s status.Snapshot
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s = p.snapshot(t); s.Checks["hooks"].Status == status.Warn || time.Now().After(deadline) {
				break
			}
		}
		h := s.Checks["hooks"]
		if s.Phase != status.PhaseReady || h.Status != status.Warn || !strings.Contains(h.LastError, "exit status 3") || h.Hint == "" {
			t.Errorf("replica %d: phase %s, hooks %+v", i, s.Phase, h)
		}
		tasksCheck := s.Checks["tasks"]
		if tasksCheck.Status != status.Pass || tasksCheck.Data["tasks"] == nil {
			t.Errorf("replica %d: tasks check %+v", i, tasksCheck)
		}
		if code, _, _ := p.get("/readyz"); code != http.StatusOK {
			t.Errorf("replica %d: /readyz %d with a failed hook", i, code)
		}
		_, body, _ := p.get("/status")
		if strings.Contains(body, pw) || strings.Contains(p.Out.String(), pw) {
			t.Errorf("replica %d shows the database password in /status or its log", i)
		}
		if i == 0 && !strings.Contains(body, "cannot reach postgres://postgres:xxxxx@") {
			t.Errorf("the failed hook's output tail is not in /status:\n%s", body)
		}
	}
	for _, p := range procs {
		p.stopOK(t)
	}

	// A later boot, in dev, after 50_change.sql changed: the database is
	// not fresh any more; on-change and the dev task run.
	testutil.WriteFiles(t, tasks, map[string]string{"50_change.sql": "-- uplink: on-change\n-- second edition\nINSERT INTO effects (task) VALUES ('change');\n"})
	p := startServeArgs(t, []string{"DATABASE_URL=" + url, "UPLINK_ENV=dev", "PSQL=" + psql}, "--migrations", migs, "--tasks", tasks)
	p.waitReady(t, 30*time.Second)
	p.stopOK(t)
	want = map[string]int{"once": 1, "always": replicas + 1, "demo": 1, "restore": 1, "change": 2}
	if got := effects(); !maps.Equal(got, want) {
		t.Errorf("after a later boot in dev with a changed file: effects %v, want %v", got, want)
	}

	// uplink tasks list and run, on the same database.
	cli := map[string]string{"DATABASE_URL": url, "UPLINK_TASKS_DIR": tasks}
	t.Setenv("PSQL", psql) // the commands of an in-process CLI inherit the test's environment
	code, stdout, stderr := runCLI(t, cli, "tasks", "list", "--json")
	var list []starttask.Result
	if err := json.Unmarshal([]byte(stdout), &list); code != exitOK || err != nil || len(list) != 5 {
		t.Fatalf("tasks list --json: code %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if l := list[1]; l.Name != "always" || l.Last == nil || l.Last.Attempts != replicas+1 || l.Outcome != starttask.OutcomePending {
		t.Errorf("always in the list: %+v", l)
	}
	if l := list[2]; l.Name != "demo" || l.Outcome != starttask.OutcomeSkipped || !strings.Contains(l.Reason, "dev") {
		t.Errorf("demo in the list (env prod): %+v", l)
	}
	code, stdout, _ = runCLI(t, cli, "tasks", "list")
	if code != exitOK || !strings.Contains(stdout, "restore  once       fresh") || !strings.Contains(stdout, "applied (attempt 11)  runs: every boot") {
		t.Errorf("tasks list: code %d\n%s", code, stdout)
	}
	code, stdout, stderr = runCLI(t, cli, "tasks", "run", "restore", "--tasks", tasks) // flags may follow the name
	if code != exitOK || pgtest.QueryInt(t, url, "SELECT count(*) FROM effects WHERE task = 'restore'") != 2 {
		t.Errorf("tasks run restore: code %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr = runCLI(t, cli, "tasks", "run", "demo"); code != exitFailure || !strings.Contains(stderr, "hint: run it with --env dev") {
		t.Errorf("tasks run demo in prod: code %d\n%s", code, stderr)
	}
}

// A required task that fails leaves the process up, not ready, in phase
// error with the file and a hint; nothing of it is recorded as applied.
func TestProcessRequiredTaskFails(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	tasks := t.TempDir()
	testutil.WriteFiles(t, tasks, map[string]string{
		"10_import*": "#!/bin/sh\necho \"importing from $DATABASE_URL\"\necho 'the archive is missing' >&2\nexit 1\n",
	})
	p := startServeArgs(t, []string{"DATABASE_URL=" + url}, "--tasks", tasks)
	p.waitLive(t)
	s := p.waitPhase(t, status.PhaseError, 30*time.Second)
	file := filepath.Join(tasks, "10_import")
	if !strings.Contains(s.Reason, file) || !strings.Contains(s.Reason, "exit status 1: the archive is missing") || s.Hint == "" {
		t.Errorf("reason %q, hint %q", s.Reason, s.Hint)
	}
	if code, _, _ := p.get("/livez"); code != http.StatusOK {
		t.Errorf("/livez %d in phase error", code)
	}
	if code, _, _ := p.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d in phase error", code)
	}
	if n := pgtest.QueryInt(t, url, "SELECT count(*) FROM uplink.schema_history WHERE line = 'tasks' AND outcome = 'failed' AND key = 'import'"); n != 1 {
		t.Errorf("%d failed rows for the task", n)
	}
	p.stopOK(t)
}

func TestTasksCommandUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks"}, "say which"},
		{[]string{"tasks", "frob"}, `unknown tasks command "frob"`},
		{[]string{"tasks", "run"}, "run takes one task NAME"},
		{[]string{"tasks", "list"}, "no tasks directory"},
	} {
		code, _, stderr := runCLI(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q", c.args, code, stderr)
		}
	}
}
