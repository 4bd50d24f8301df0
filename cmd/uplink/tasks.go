package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

func init() {
	register(command{name: "tasks", order: 35, summary: "startup tasks: list them, or run one now", run: runTasksCmd})
}

const tasksSynopsis = `tasks list|run [flags] [NAME]

  list      each task: policy, conditions, last run, outcome, and what the next boot does
  run NAME  run one task now, under the cluster lock, and record it, whatever its
            policy or fresh condition say (its env condition still holds)`

// bindTasks adds serve's flags for startup tasks and hooks.
func bindTasks(f *flags, cfg *boot.Config) {
	f.StringVar(&cfg.TasksDir, "tasks", "", "directory of startup tasks: .sql files and executables, each with an optional '-- uplink: policy=once env=dev ...' header (UPLINK_TASKS_DIR)")
	f.Var(&postStartFlag{cfg}, "post-start", "command run by /bin/sh -c once after the first ready, with DATABASE_URL set; repeatable (UPLINK_POST_START: one command)")
	f.StringVar(&cfg.HooksDir, "hooks", "", "directory whose post-start/ and pre-stop/ executables run after the first ready and first when stopping (UPLINK_HOOKS_DIR)")
}

// postStartFlag appends each --post-start to Config.PostStart.
type postStartFlag struct{ cfg *boot.Config }

func (p *postStartFlag) String() string { return "" }

func (p *postStartFlag) Set(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("empty command")
	}
	p.cfg.PostStart = append(p.cfg.PostStart, starttask.Hook{Command: starttask.ShellCommand(cmd)})
	return nil
}

func runTasksCmd(ctx context.Context, env *Env, args []string) int {
	sub, args := subcommand(args)
	f := newFlags("tasks", tasksSynopsis, env)
	var cfg boot.Config
	bindDatabase(f, &cfg)
	f.StringVar(&cfg.TasksDir, "tasks", "", "the tasks directory, as given to serve (UPLINK_TASKS_DIR)")
	f.StringVar(&cfg.Env, "env", boot.EnvProd, "dev, test or prod (UPLINK_ENV): which env-conditioned tasks apply")
	asJSON := f.Bool("json", false, "list: print JSON, for scripts")
	names, done, code := f.parseMixed(args)
	if done {
		return code
	}
	switch {
	case sub == "":
		_, code := f.fail("say which: list or run NAME")
		return code
	case sub != "list" && sub != "run":
		_, code := f.fail(fmt.Sprintf("unknown tasks command %q", sub))
		return code
	case sub == "list" && len(names) > 0:
		_, code := f.fail(fmt.Sprintf("unexpected argument %q", names[0]))
		return code
	case sub == "run" && len(names) != 1:
		_, code := f.fail("run takes one task NAME")
		return code
	}
	if cfg.TasksDir == "" {
		_, code := f.fail("no tasks directory: give --tasks DIR or set UPLINK_TASKS_DIR")
		return code
	}
	r, err := tasksRunner(ctx, cfg)
	if err != nil {
		return reportError(env, "tasks "+sub, err)
	}
	if sub == "list" {
		res, err := r.Status(ctx)
		if err != nil {
			return reportError(env, "tasks list", err)
		}
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(res)
		} else {
			printTasks(env.Stdout, res, cfg.Env)
		}
		return exitOK
	}
	res, err := r.RunNow(ctx, names[0])
	if res.Name != "" {
		fmt.Fprintf(env.Stdout, "task %s: %s in %s\n", res.Name, res.Outcome, res.Duration.Round(time.Millisecond))
		if res.Output != "" {
			fmt.Fprintf(env.Stdout, "output (end):\n%s\n", res.Output)
		}
	}
	if err != nil {
		return reportError(env, "tasks run", err)
	}
	return exitOK
}

// tasksRunner finds the database of the current mode, without starting
// one, and the runner boot would use on it.
func tasksRunner(ctx context.Context, cfg boot.Config) (*starttask.Runner, error) {
	t, err := resolveDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	mode := provision.ModePro
	if t.dataDir != "" {
		mode = provision.ModeLite
	}
	if !t.running {
		return nil, &status.ActionError{Problem: "no PostgreSQL runs on " + t.dataDir + " now",
			Hint: "start 'uplink serve' (lite mode) first"}
	}
	return boot.TaskRunner(cfg, t.dsn, mode)
}

func printTasks(w io.Writer, res []starttask.Result, env string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tPOLICY\tCONDITIONS\tON FAILURE\tLAST RUN\tOUTCOME\tNEXT BOOT ("+env+")")
	for _, r := range res {
		last, outcome := "never", "-"
		if r.Last != nil {
			last = r.Last.UpdatedAt.Local().Format("2006-01-02 15:04:05")
			outcome = string(r.Last.Outcome)
			if r.Last.Attempts > 1 {
				outcome += fmt.Sprintf(" (attempt %d)", r.Last.Attempts)
			}
		}
		next := string(r.Outcome)
		switch r.Outcome {
		case starttask.OutcomePending:
			next = "runs"
		case "":
			next = "-"
		}
		if r.Reason != "" {
			next += ": " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, or(string(r.Policy)), or(r.Conditions), or(string(r.OnFailure)), last, outcome, next)
	}
	tw.Flush()
	for _, r := range res {
		if r.Last != nil && r.Last.Outcome == migrate.OutcomeFailed {
			fmt.Fprintf(w, "\n%s failed: %s\n", r.Name, r.Last.Message)
		}
	}
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
