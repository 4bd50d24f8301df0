package starttask_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	const pw = "Hook-Secret-pw-42"
	x := starttask.Exec{
		Vars:    []string{"DATABASE_URL=postgres://app:" + pw + "@db/app", "UPLINK_ENV=test"},
		Secrets: []string{pw},
	}
	hs := starttask.NewHooks(x, nil)
	ran := false
	failed := hs.Run(context.Background(), starttask.PostStart, []starttask.Hook{
		{Command: starttask.ShellCommand(`echo "url=$DATABASE_URL hook=$UPLINK_HOOK stage=$UPLINK_HOOK_STAGE" > ` + filepath.Join(dir, "seen") + `; echo done`)},
		{Name: "echoes", Command: starttask.ShellCommand(`echo "connecting to $DATABASE_URL"; echo "password is ` + pw + `"; exit 3`)},
		{Name: "missing", Command: starttask.ShellCommand("no-such-command-anywhere --now")},
		{Name: "go", Func: func(ctx context.Context) error { ran = true; return nil }},
		{Name: "panics", Func: func(ctx context.Context) error { panic("boom") }},
		{Name: "slow go", Timeout: 50 * time.Millisecond, Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	})
	if failed != 4 || !ran {
		t.Fatalf("failed = %d (want 4), go hook ran = %v", failed, ran)
	}
	seen, _ := os.ReadFile(filepath.Join(dir, "seen"))
	if !strings.Contains(string(seen), "url=postgres://app:"+pw+"@db/app") || !strings.Contains(string(seen), "stage=post-start") {
		t.Errorf("the hook's environment: %q", seen)
	}
	res := hs.Results()
	byName := map[string]starttask.HookResult{}
	for _, r := range res {
		byName[r.Name] = r
	}
	if r := res[0]; r.Outcome != starttask.OutcomeRan || r.Output != "done" {
		t.Errorf("first hook: %+v", r)
	}
	echo := byName["echoes"]
	if echo.Outcome != starttask.OutcomeFailed || !strings.Contains(echo.Error, "exit status 3") || !strings.Contains(echo.Output, "password is xxxxx") {
		t.Errorf("failing hook: %+v", echo)
	}
	if m := byName["missing"]; !strings.Contains(m.Error, "command not found") || !strings.Contains(m.Hint, "full path") || !strings.Contains(m.Output, "no-such-command-anywhere") {
		t.Errorf("missing command: %+v", m)
	}
	if p := byName["panics"]; !strings.Contains(p.Error, "panic: boom") {
		t.Errorf("panicking hook: %+v", p)
	}
	if s := byName["slow go"]; !strings.Contains(s.Error, "timeout of 50ms") {
		t.Errorf("slow hook: %+v", s)
	}
	c := hs.Check()
	if c.Status != status.Warn || !strings.Contains(c.Detail, "2 ran, 4 failed") {
		t.Errorf("check: %+v", c)
	}
	for _, r := range res {
		if strings.Contains(r.Output+r.Error, pw) {
			t.Errorf("hook %s shows the password: %+v", r.Name, r)
		}
	}
}

// A command that outlives its timeout is killed with everything it
// started: the whole process group.
func TestHookTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hang")
	testutil.WriteFiles(t, dir, map[string]string{"hang*": "#!/bin/sh\nsleep 60 &\necho $! > " + filepath.Join(dir, "child") + "\necho $$ > " + filepath.Join(dir, "self") + "\necho started\nwait\n"})
	hs := starttask.NewHooks(starttask.Exec{}, nil)
	start := time.Now()
	hs.Run(context.Background(), starttask.PreStop, []starttask.Hook{{Timeout: 300 * time.Millisecond, Command: &starttask.Command{Path: script}}})
	took := time.Since(start)
	r := hs.Results()[0]
	if r.Outcome != starttask.OutcomeFailed || !strings.Contains(r.Error, "timeout of 300ms") || r.Output != "started" {
		t.Errorf("result: %+v", r)
	}
	if took > 3*time.Second {
		t.Errorf("took %s: SIGTERM should have ended it at once", took)
	}
	for _, f := range []string{"self", "child"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid == 0 || !runas.WaitGone(pid, 2*time.Second) {
			t.Errorf("%s (pid %d) still alive after the timeout", f, pid)
		}
	}
}

func TestHookStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hs := starttask.NewHooks(starttask.Exec{}, nil)
	time.AfterFunc(100*time.Millisecond, cancel)
	n := hs.Run(ctx, starttask.PostStart, []starttask.Hook{
		{Command: starttask.ShellCommand("sleep 30")},
		{Command: starttask.ShellCommand("echo never")},
	})
	if n != 1 || len(hs.Results()) != 1 {
		t.Errorf("failed %d, results %+v: the second hook should not have started", n, hs.Results())
	}
	if r := hs.Results()[0]; !strings.Contains(r.Error, "canceled") {
		t.Errorf("cancelled hook: %+v", r)
	}
}

// A hooks directory given relative to the working directory (uplink serve
// --hooks hooks) runs its executables, as an absolute one does.
func TestHooksFromARelativeDirectory(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	testutil.WriteFiles(t, base, map[string]string{
		"hooks/post-start/10_mark*": "#!/bin/sh\npwd > ran\n",
	})
	post, _, err := starttask.LoadHooks("hooks")
	if err != nil {
		t.Fatal(err)
	}
	if failed := starttask.NewHooks(starttask.Exec{}, nil).Run(context.Background(), starttask.PostStart, post); failed != 0 {
		t.Fatalf("%d hooks failed", failed)
	}
	ran, err := os.ReadFile(filepath.Join(base, "hooks", "ran"))
	if err != nil {
		t.Fatalf("the hook did not run in its directory: %v", err)
	}
	if got := strings.TrimSpace(string(ran)); got != filepath.Join(base, "hooks") {
		t.Errorf("the hook ran in %q", got)
	}
}
