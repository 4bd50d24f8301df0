package starttask

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/status"
)

// Line is the history table's line for startup tasks; a task's row is
// keyed by its name.
const Line = migrate.TasksLine

// Policy says when a task runs again.
type Policy string

const (
	// Always runs the task on every boot (of those it takes the lock in:
	// every boot, since an always-task is always due).
	Always Policy = "always"
	// Once runs the task until it succeeds once on this database, never
	// again. The default.
	Once Policy = "once"
	// OnChange runs the task again whenever its content changes: the
	// file's sha256, or the declared Version when there is one.
	OnChange Policy = "on-change"
)

// OnFailure says what a failing task does to boot.
type OnFailure string

const (
	// Required stops boot in phase error, with the task's failure and a
	// hint. The default.
	Required OnFailure = "required"
	// BestEffort records the failure, shows it as a warning in /status
	// and lets boot go on.
	BestEffort OnFailure = "best-effort"
)

// The env words of a task's Env condition, the same as boot.Config.Env.
const (
	EnvDev  = "dev"
	EnvTest = "test"
	EnvProd = "prod"
)

// Defaults.
const (
	// DefaultTimeout bounds one run of a task: long enough for a seed or
	// a restore, short enough that a hung one is noticed.
	DefaultTimeout = 5 * time.Minute
	// DefaultHookTimeout bounds one run of a hook.
	DefaultHookTimeout = 30 * time.Second
)

// Func is the body of a Go task. db is a transaction on the session that
// holds the cluster lock, committed together with the task's history row
// (or, with Task.NoTransaction, that session itself). Statements started
// after the timeout are refused and one running at the timeout is
// cancelled; the function should also honour ctx for work of its own.
type Func func(ctx context.Context, db migrate.DB) error

// Task is one startup task. Exactly one of Func, SQL and Command is its
// body.
type Task struct {
	// Name identifies the task in the history table, logs and /status,
	// and in `uplink tasks run NAME`: letters, digits, '.', '_' and '-'.
	// A directory task is named after its file, without its leading
	// order number and its extension (10_seed.sql → seed), so that
	// reordering files does not make a once-task run again.
	Name string
	// Policy is always, once or on-change. Default once.
	Policy Policy
	// Env lists the env words (dev, test, prod) the task runs in; empty
	// means every env.
	Env []string
	// Fresh runs the task only on a fresh database (see the package doc),
	// once. It cannot be combined with another policy than once.
	Fresh bool
	// OnFailure is required or best-effort. Default required.
	OnFailure OnFailure
	// Timeout bounds one run. Default DefaultTimeout.
	Timeout time.Duration
	// Version, for an on-change task, is what "changed" compares: the
	// task runs again when it differs from the recorded one. Default for
	// a directory task or a SQL body: the sha256 of its content. A Func or
	// Command task built in Go with policy on-change must set it.
	Version string
	// NoTransaction runs a Func or SQL body on the locked session without
	// a transaction. Its history row is then written after it, so a crash
	// in between runs it again: make it idempotent.
	NoTransaction bool

	Func Func
	// SQL is run as one simple query, in a transaction unless
	// NoTransaction. psql's backslash commands are not understood.
	SQL string
	// Command is an executable run with DATABASE_URL and UPLINK_* set.
	Command *Command

	// File is where a directory task comes from, for messages; empty for
	// tasks built in Go.
	File string

	headerLine int // the line of its "uplink:" header, for messages
	checksum   string
}

// Command is a program that a task or hook runs: Path with Args, or Shell,
// a command line given to /bin/sh -c. It runs in its own process group,
// killed whole at its timeout and when it ends, so nothing it started
// outlives it.
type Command struct {
	Path  string
	Args  []string
	Shell string
	// Dir is the working directory; default the process's.
	Dir string
}

func (c *Command) String() string {
	if c.Shell != "" {
		return c.Shell
	}
	return strings.Join(append([]string{c.Path}, c.Args...), " ")
}

// ShellCommand is a command line run with /bin/sh -c, as --post-start
// gives it.
func ShellCommand(line string) *Command { return &Command{Shell: line} }

// Hook is a post-start or pre-stop hook: a Go function or a Command.
// Hooks never stop boot or the service: a failure is reported in /status.
type Hook struct {
	// Name identifies the hook in logs and /status. Default: the file's
	// name, or the command line.
	Name string
	// Timeout bounds one run. Default DefaultHookTimeout. Pre-stop hooks
	// are bounded by the shutdown budget too.
	Timeout time.Duration

	Func    func(ctx context.Context) error
	Command *Command

	// File is where a directory hook comes from; empty otherwise.
	File string
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// source names where a task comes from, for messages.
func (t *Task) source() string {
	if t.File != "" {
		return t.File
	}
	return "task " + t.Name
}

// withDefaults fills in a task's defaults.
func (t Task) withDefaults() Task {
	if t.Policy == "" {
		t.Policy = Once
	}
	if t.OnFailure == "" {
		t.OnFailure = Required
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	if t.checksum == "" && t.SQL != "" {
		t.checksum = checksum([]byte(t.SQL))
	}
	return t
}

// check reports what is wrong with one task (defaults applied), each
// problem with its fix.
func (t *Task) check() []error {
	var errs []error
	bad := func(problem, hint string) {
		errs = append(errs, &sqlfile.Error{File: t.source(), Line: t.headerLine, Msg: problem, Hint: hint})
	}
	if !validName.MatchString(t.Name) {
		bad(fmt.Sprintf("task name %q is not a name", t.Name), "use letters, digits, '.', '_' and '-'")
	}
	bodies := 0
	for _, set := range []bool{t.Func != nil, t.SQL != "", t.Command != nil} {
		if set {
			bodies++
		}
	}
	if bodies != 1 {
		bad("a task needs exactly one body", "set one of Func, SQL and Command")
	}
	if t.Command != nil && t.NoTransaction {
		bad("NoTransaction applies to Func and SQL bodies only", "drop it: a command runs on its own connection")
	}
	switch t.Policy {
	case Always, Once, OnChange:
	default:
		bad(fmt.Sprintf("unknown policy %q", t.Policy), "use always, once or on-change")
	}
	switch t.OnFailure {
	case Required, BestEffort:
	default:
		bad(fmt.Sprintf("unknown failure policy %q", t.OnFailure), "use required or best-effort")
	}
	for _, e := range t.Env {
		if !isEnvWord(e) {
			bad(fmt.Sprintf("unknown env %q", e), "use dev, test or prod")
		}
	}
	if t.Fresh && t.Policy != Once {
		bad(fmt.Sprintf("a fresh task runs once per new database; policy %s contradicts it", t.Policy), "drop the policy, or the fresh condition")
	}
	if t.Version != "" && t.Policy != OnChange {
		bad("a version only matters to policy on-change", "add policy=on-change, or drop the version")
	}
	if t.Policy == OnChange && t.changeKey() == "" {
		bad("an on-change task without a file or SQL needs a Version to compare", "set Task.Version, and change it when the task should run again")
	}
	if t.Timeout < 0 {
		bad("negative timeout", "give a positive duration")
	}
	return errs
}

func isEnvWord(s string) bool { return s == EnvDev || s == EnvTest || s == EnvProd }

// Validate checks tasks without a database: names valid and unique,
// exactly one body each, known policies and env words, and conditions
// that agree. Problems come back together as a *status.ActionError.
func Validate(tasks ...Task) error { return joinProblems("startup tasks", problems(tasks)) }

func problems(tasks []Task) []error {
	var errs []error
	seen := map[string]string{}
	for _, t := range tasks {
		t = t.withDefaults()
		errs = append(errs, t.check()...)
		if prev, ok := seen[t.Name]; ok && t.Name != "" {
			errs = append(errs, &sqlfile.Error{File: t.source(), Msg: fmt.Sprintf("task name %q is also the name of %s", t.Name, prev),
				Hint: "rename one of them; a directory task is named after its file without its order number and extension"})
		}
		seen[t.Name] = t.source()
	}
	return errs
}

// unjoin lists the errors errors.Join put together, so that each counts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// joinProblems turns problems (each a *sqlfile.Error naming its file and
// fix) into one *status.ActionError, or nil.
func joinProblems(what string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	hint := "fix each one named above; nothing was run"
	var fe *sqlfile.Error
	if len(errs) == 1 && errors.As(errs[0], &fe) && fe.Hint != "" {
		hint = fe.Hint + "; nothing was run"
	}
	return &status.ActionError{Problem: fmt.Sprintf("%d problem(s) with the %s", len(errs), what), Hint: hint, Err: errors.Join(errs...)}
}

// runsIn reports whether the task's env condition admits env.
func (t *Task) runsIn(env string) bool { return len(t.Env) == 0 || slices.Contains(t.Env, env) }

// conditions describes the task's conditions for people: "env=dev fresh".
func (t *Task) conditions() string {
	var c []string
	if len(t.Env) > 0 {
		c = append(c, "env="+strings.Join(t.Env, ","))
	}
	if t.Fresh {
		c = append(c, "fresh")
	}
	return strings.Join(c, " ")
}
