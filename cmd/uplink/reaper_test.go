package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/proctest"
	"github.com/uplinkhq/uplink/internal/testutil"
)

func TestActAsInit(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		pid  int
		args []string
		env  func(string) string
		want bool
	}{
		{1, []string{"serve"}, env(), true},
		{1, []string{"serve", "--hooks", "x"}, env(), true},
		{2, []string{"serve"}, env(), false},                  // not PID 1
		{1, []string{"db", "psql"}, env(), false},             // only serve
		{1, []string{"serve"}, env(initChildEnv, "1"), false}, // the child itself
		{1, []string{"serve"}, env(initEnv, "off"), false},    // opted out
		{1, nil, env(), false},
	} {
		if got := actAsInit(tc.pid, tc.args, tc.env); got != tc.want {
			t.Errorf("actAsInit(%d, %q) = %v, want %v", tc.pid, tc.args, got, tc.want)
		}
	}
}

// TestProcessAsPID1ReapsOrphans runs `uplink serve` as PID 1 of a new PID
// namespace, as a container entrypoint without an init. A post-start hook
// leaves a process behind; Uplink kills what a hook leaves in its group,
// and that process, an orphan, becomes PID 1's child. Uplink reaps it:
// no zombie stays. SIGTERM to PID 1 reaches the server, which stops with
// exit code 0. With UPLINK_INIT=off the zombie stays, which is why.
func TestProcessAsPID1ReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	if err := exec.Command("unshare", "--pid", "--fork", "--kill-child", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here (unshare --pid): %v", err)
	}
	url := pgtest.Shared(t).NewDatabase(t)
	hooks := t.TempDir()
	testutil.WriteFiles(t, hooks, map[string]string{
		"post-start/10_leave*": "#!/bin/sh\nsleep 300 &\nexit 0\n",
	})
	bin := proctest.Build(t, ".")
	for _, mode := range []string{"on", "off"} {
		t.Run("init "+mode, func(t *testing.T) {
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "UPLINK_LOG_FORMAT=json",
				"DATABASE_URL=" + url, "UPLINK_HTTP_ADDR=127.0.0.1:0", initEnv + "=" + mode}
			ns := proctest.Start(t, "unshare", env, "--pid", "--fork", "--kill-child", bin, "serve", "--hooks", hooks)
			p := &proc{Proc: ns}
			p.addr = p.StatusAddr(t, 10*time.Second)
			p.waitReady(t, 30*time.Second)
			pid1 := onlyChild(t, ns.Cmd.Process.Pid) // unshare's child: PID 1 inside
			testutil.Eventually(t, "the hook's leftover killed", 10*time.Second, func() bool {
				return strings.Contains(p.Out.String(), `"stage":"post-start"`)
			})
			time.Sleep(500 * time.Millisecond) // the kill lands, the orphan exits
			zombies := 0
			for _, c := range children(t, pid1) {
				if state(c) == "Z" {
					zombies++
				}
			}
			switch {
			case mode == "on" && zombies != 0:
				t.Errorf("%d zombies under PID 1", zombies)
			case mode == "off" && zombies == 0:
				t.Errorf("no zombie under a PID 1 that does not reap: the test shows nothing")
			}
			syscall.Kill(pid1, syscall.SIGTERM)
			if code := ns.ExitCode(t, 20*time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM to PID 1", code)
			}
			if mode == "on" && !strings.Contains(p.Out.String(), `"msg":"stopped"`) {
				t.Errorf("the server did not stop in order:\n%s", p.Out.String())
			}
		})
	}
}

// children lists the child pids of pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(raw)) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

func onlyChild(t *testing.T, pid int) int {
	t.Helper()
	var cs []int
	testutil.Eventually(t, "unshare's child", 5*time.Second, func() bool { cs = children(t, pid); return len(cs) == 1 })
	return cs[0]
}

// state is the one-letter state of pid in /proc/pid/stat.
func state(pid int) string {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(string(raw), ") ")
	return rest[:1]
}
