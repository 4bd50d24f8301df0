package starttask_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

func TestLoadTasks(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"20_demo.sql":      "-- uplink: env=dev best-effort\nINSERT INTO t VALUES (1);\n",
		"10_schema-ok.sh*": "#!/bin/sh\n# uplink: always timeout=10s\necho ok\n",
		"030_restore*":     "#!/bin/sh\n# uplink: fresh\n",
		"README.md":        "not a task",
		".hidden.sql":      "-- uplink: nonsense\n",
		"sub/x.sql":        "-- uplink: nonsense\n",
		"40_seed.sql~":     "editor backup",
	})
	tasks, err := starttask.LoadTasks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range tasks {
		names = append(names, tk.Name)
	}
	if got := strings.Join(names, " "); got != "restore schema-ok demo" {
		t.Fatalf("tasks %q, want file-name order without order numbers: restore schema-ok demo", got)
	}
	restore, schema, demo := tasks[0], tasks[1], tasks[2]
	if restore.Command == nil || !restore.Fresh || restore.Policy != "" {
		t.Errorf("restore = %+v", restore)
	}
	if schema.Command == nil || schema.Policy != starttask.Always || schema.Timeout != 10*time.Second || schema.Command.Dir != dir {
		t.Errorf("schema-ok = %+v", schema)
	}
	if demo.SQL == "" || demo.OnFailure != starttask.BestEffort || len(demo.Env) != 1 || demo.File != filepath.Join(dir, "20_demo.sql") {
		t.Errorf("demo = %+v", demo)
	}
}

func TestLoadTasksBadInput(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"10_seed.sql":    "INSERT INTO t VALUES (1);\n",
		"20_seed.sh*":    "#!/bin/sh\n",
		"30_notexec.sh":  "#!/bin/sh\necho hi\n",
		"40_policy.sql":  "-- uplink: policy=sometimes\n",
		"50_env.sql":     "-- uplink: env=staging\n",
		"60_fresh.sql":   "-- uplink: fresh always\n",
		"70_version.sql": "-- uplink: version=2\n",
		"80_fine.sql":    "SELECT 1;\n",
		// Two mistakes in one header, and a name another file has.
		"90_twice.sql": "-- uplink: policy=onchange env=develop\n",
		"91_twice.sql": "SELECT 2;\n",
	})
	_, err := starttask.LoadTasks(dir)
	if !status.IsAction(err) {
		t.Fatalf("err = %v, want a *status.ActionError", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		// Two files, one name.
		filepath.Join(dir, "20_seed.sh") + `: task name "seed" is also the name of ` + filepath.Join(dir, "10_seed.sql"),
		filepath.Join(dir, "30_notexec.sh") + ": not executable", "chmod +x " + filepath.Join(dir, "30_notexec.sh"),
		filepath.Join(dir, "40_policy.sql") + `:1: unknown policy "sometimes"`,
		filepath.Join(dir, "50_env.sql") + `:1: unknown env "staging"`,
		filepath.Join(dir, "60_fresh.sql") + ":1: a fresh task runs once per new database",
		filepath.Join(dir, "70_version.sql") + ":1: a version only matters to policy on-change",
		filepath.Join(dir, "90_twice.sql") + `:1: unknown policy "onchange"`,
		filepath.Join(dir, "90_twice.sql") + `:1: unknown env "develop"`,
		filepath.Join(dir, "91_twice.sql") + `: task name "twice" is also the name of ` + filepath.Join(dir, "90_twice.sql"),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "80_fine") {
		t.Error("a good file is named among the problems")
	}
	if hint := status.HintOf(err); hint == "" {
		t.Error("no hint")
	}
}

func TestLoadTasksMissingDir(t *testing.T) {
	_, err := starttask.LoadTasks("/nonexistent/tasks")
	if !status.IsAction(err) || !strings.Contains(status.HintOf(err), "--tasks") {
		t.Errorf("err = %v, hint %q", err, status.HintOf(err))
	}
}

func TestValidateGoTasks(t *testing.T) {
	ok := starttask.Task{Name: "a", SQL: "SELECT 1"}
	cases := map[string]starttask.Task{
		"two bodies":            {Name: "b", SQL: "SELECT 1", Command: starttask.ShellCommand("true")},
		"no body":               {Name: "b"},
		"bad name":              {Name: "has space", SQL: "SELECT 1"},
		"on-change without key": {Name: "b", Policy: starttask.OnChange, Command: starttask.ShellCommand("true")},
		"duplicate":             ok,
	}
	for what, tk := range cases {
		if err := starttask.Validate(ok, tk); !status.IsAction(err) {
			t.Errorf("%s: err = %v", what, err)
		}
	}
	// SQL has a checksum of its own, so on-change needs no version.
	if err := starttask.Validate(ok, starttask.Task{Name: "c", Policy: starttask.OnChange, SQL: "SELECT 2"}); err != nil {
		t.Errorf("on-change SQL task: %v", err)
	}
}

func TestLoadHooks(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"post-start/10_notify*": "#!/bin/sh\n# uplink: timeout=5s\n",
		"post-start/20_warm*":   "#!/bin/sh\n",
		"pre-stop/deregister*":  "#!/bin/sh\n",
	})
	post, pre, err := starttask.LoadHooks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(post) != 2 || post[0].Name != "post-start/notify" || post[0].Timeout != 5*time.Second || len(pre) != 1 {
		t.Errorf("post %+v pre %+v", post, pre)
	}

	bad := t.TempDir()
	testutil.WriteFiles(t, bad, map[string]string{
		"post-start/a.sql": "SELECT 1;\n",
		"post-start/b*":    "#!/bin/sh\n# uplink: policy=once\n",
		"pre-stop/c":       "#!/bin/sh\n",
	})
	_, _, err = starttask.LoadHooks(bad)
	for _, want := range []string{"a.sql: a hook is an executable", "b:2: a hook takes only timeout=", "c: not executable"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
