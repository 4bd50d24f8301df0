package starttask

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/migrate/sqlsplit"
	"github.com/uplinkhq/uplink/status"
)

// Config tunes a Runner. The zero value runs tasks for env prod on a
// database that is not fresh.
type Config struct {
	// Env is this boot's env word (dev, test or prod), matched against
	// each task's env condition. Default prod.
	Env string
	// Fresh says this boot found the database fresh (see the package
	// doc); only then do fresh tasks run.
	Fresh bool
	// Exec is what command tasks run with.
	Exec Exec
	// Logger receives one line per task run. Default: discard.
	Logger *slog.Logger
}

// Outcome is where one task stands in a run.
type Outcome string

const (
	// OutcomePending: due, not run yet.
	OutcomePending Outcome = "pending"
	OutcomeRunning Outcome = "running"
	OutcomeRan     Outcome = "ran"
	OutcomeFailed  Outcome = "failed"
	// OutcomeSkipped: a condition (env, fresh) leaves it out.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDone: nothing to do; it ran before (once, unchanged
	// on-change, or fresh).
	OutcomeDone Outcome = "done"
)

// Result is one task in a run or a listing: what it is, what happened to
// it and why.
type Result struct {
	Name       string        `json:"name"`
	File       string        `json:"file,omitempty"`
	Policy     Policy        `json:"policy"`
	OnFailure  OnFailure     `json:"on_failure"`
	Conditions string        `json:"conditions,omitempty"`
	Timeout    time.Duration `json:"timeout"`
	Outcome    Outcome       `json:"outcome"`
	// Reason says why a task is skipped, done or due.
	Reason   string        `json:"reason,omitempty"`
	Started  time.Time     `json:"started,omitzero"`
	Duration time.Duration `json:"duration,omitempty"`
	Error    string        `json:"error,omitempty"`
	Hint     string        `json:"hint,omitempty"`
	// Output is the end of a command's output, secrets hidden.
	Output string `json:"output,omitempty"`
	// Last is the task's history row as this run found it (before
	// running it), nil when it never ran.
	Last *migrate.Record `json:"last,omitempty"`
}

// Runner runs an ordered list of startup tasks on one database, under
// the migrator's cluster lock and recorded in its history table as line
// "tasks". Run, RunNow and Status may be called one at a time; Check at
// any time.
type Runner struct {
	mig    *migrate.Migrator
	read   *pgx.ConnConfig
	cfg    Config
	tasks  []Task
	log    *slog.Logger
	runner string

	mu      sync.Mutex
	state   string // "", checking, waiting, running, done, failed
	since   time.Time
	results []Result
	current int // index of the running task, -1 for none
	lastErr error
	errAt   time.Time
}

// New returns a Runner for tasks, which it checks (see Validate). m
// provides the lock and the history table; read is how the runner reads
// that table without the lock, to take the lock only when a task is due.
func New(m *migrate.Migrator, read *pgx.ConnConfig, cfg Config, tasks ...Task) (*Runner, error) {
	if m == nil || read == nil {
		return nil, errors.New("starttask: nil migrator or connection config")
	}
	if err := Validate(tasks...); err != nil {
		return nil, err
	}
	if cfg.Env == "" {
		cfg.Env = EnvProd
	}
	if !isEnvWord(cfg.Env) {
		return nil, &status.ActionError{Problem: fmt.Sprintf("unknown env %q", cfg.Env), Hint: "use dev, test or prod"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{mig: m, read: read.Copy(), cfg: cfg, log: cfg.Logger, current: -1}
	if r.read.RuntimeParams == nil {
		r.read.RuntimeParams = map[string]string{}
	}
	r.read.RuntimeParams["application_name"] = "uplink-tasks"
	for _, t := range tasks {
		r.tasks = append(r.tasks, t.withDefaults())
	}
	host, _ := os.Hostname()
	r.runner = fmt.Sprintf("%s pid %d tasks", host, os.Getpid())
	r.results = r.plan(nil)
	return r, nil
}

// Log attribute keys.
const (
	logTask     = "task"
	logFile     = "file"
	logDuration = "duration"
	logErr      = "err"
	logOutput   = "output"
)

// Run runs the tasks that are due, in order: it reads the history without
// the lock and, when nothing is due, returns without taking it; otherwise
// it takes the cluster lock, reads the history again (a replica may have
// run them meanwhile) and runs what is still due, each recorded.
//
// A required task's failure ends the run with a *status.ActionError
// wrapping its *TaskError; a best-effort task's is recorded, shown by
// Check and Results, and the run goes on. Losing the session returns a
// plain error: the caller retries, and finds the task still due.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.tasks) == 0 {
		r.finish(nil)
		return nil
	}
	r.set("checking")
	recs, err := r.records(ctx)
	if err != nil {
		r.finish(err)
		return err
	}
	if !r.replan(recs) {
		r.finish(nil)
		return nil
	}
	r.set("waiting")
	err = r.mig.WithLock(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		recs, err := r.mig.History().Records(ctx, conn, Line)
		if err != nil {
			return err
		}
		r.replan(recs)
		r.set("running")
		for i := range r.tasks {
			r.mu.Lock()
			due := r.results[i].Outcome == OutcomePending
			r.mu.Unlock()
			if !due {
				continue
			}
			if err := r.runLocked(ctx, conn, i); err != nil {
				return err
			}
		}
		return nil
	})
	r.finish(err)
	return err
}

// RunNow runs one task at once, under the lock, whatever its policy and
// fresh condition say, and records it: `uplink tasks run NAME`. Its env
// condition still holds: a dev-only task is refused in prod.
func (r *Runner) RunNow(ctx context.Context, name string) (Result, error) {
	i := r.index(name)
	if i < 0 {
		return Result{}, &status.ActionError{Problem: fmt.Sprintf("no task named %q", name),
			Hint: "the tasks are " + names(r.tasks) + "; uplink tasks list shows them"}
	}
	t := &r.tasks[i]
	if !t.runsIn(r.cfg.Env) {
		return Result{}, &status.ActionError{Problem: fmt.Sprintf("task %s runs only in env %s; this is %s", name, strings.Join(t.Env, ","), r.cfg.Env),
			Hint: fmt.Sprintf("run it with --env %s (UPLINK_ENV) if you mean it", t.Env[0])}
	}
	err := r.mig.WithLock(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		rec, ok, err := r.mig.History().Get(ctx, conn, Line, name)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.results[i].Outcome, r.results[i].Reason, r.results[i].Last = OutcomePending, "run by hand", nil
		if ok {
			r.results[i].Last = &rec
		}
		r.mu.Unlock()
		r.set("running")
		return r.runLocked(ctx, conn, i)
	})
	r.finish(err)
	res := r.Results()[i]
	if err == nil && res.Outcome == OutcomeFailed {
		err = &status.ActionError{Problem: res.Error, Hint: res.Hint}
	}
	return res, err
}

// Status reads the history, without the lock, and returns each task with
// its last run and what the next boot would do with it (Outcome pending,
// done or skipped), then the history rows of tasks that no longer exist
// (Outcome "", File empty).
func (r *Runner) Status(ctx context.Context) ([]Result, error) {
	recs, err := r.records(ctx)
	if err != nil {
		return nil, err
	}
	out := r.plan(recs)
	for _, rec := range recs {
		if r.index(rec.Key) < 0 {
			out = append(out, Result{Name: rec.Key, Reason: "recorded, but no such task now", Last: &rec})
		}
	}
	return out, nil
}

func (r *Runner) index(name string) int {
	for i := range r.tasks {
		if r.tasks[i].Name == name {
			return i
		}
	}
	return -1
}

// records reads the tasks' history rows on a session of its own.
func (r *Runner) records(ctx context.Context) ([]migrate.Record, error) {
	conn, err := pgx.ConnectConfig(ctx, r.read)
	if err != nil {
		return nil, fmt.Errorf("starttask: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	return r.mig.History().Records(ctx, conn, Line)
}

// replan decides again what is due from recs, keeping what this run
// already did; it reports whether anything is due.
func (r *Runner) replan(recs []migrate.Record) bool {
	plan := r.plan(recs)
	r.mu.Lock()
	defer r.mu.Unlock()
	due := false
	for i := range plan {
		switch r.results[i].Outcome {
		case OutcomeRan, OutcomeFailed:
			continue // this run's own result stands
		}
		r.results[i] = plan[i]
		due = due || plan[i].Outcome == OutcomePending
	}
	return due
}

// plan decides, for each task, whether it is due (pending), done or
// skipped, from its history row.
func (r *Runner) plan(recs []migrate.Record) []Result {
	byKey := map[string]*migrate.Record{}
	for i := range recs {
		byKey[recs[i].Key] = &recs[i]
	}
	out := make([]Result, len(r.tasks))
	for i := range r.tasks {
		t := &r.tasks[i]
		res := Result{Name: t.Name, File: t.File, Policy: t.Policy, OnFailure: t.OnFailure,
			Conditions: t.conditions(), Timeout: t.Timeout, Last: byKey[t.Name]}
		res.Outcome, res.Reason = r.decide(t, res.Last)
		out[i] = res
	}
	return out
}

func (r *Runner) decide(t *Task, last *migrate.Record) (Outcome, string) {
	applied := last != nil && last.Outcome == migrate.OutcomeApplied
	when := func() string {
		if last.AppliedAt.IsZero() {
			return ""
		}
		return " at " + last.AppliedAt.UTC().Format(time.RFC3339)
	}
	switch {
	case !t.runsIn(r.cfg.Env):
		return OutcomeSkipped, fmt.Sprintf("runs only in env %s; this is %s", strings.Join(t.Env, ","), r.cfg.Env)
	case last != nil && !applied:
		return OutcomePending, "its last attempt failed; retrying"
	case t.Fresh && applied:
		return OutcomeDone, "ran on the fresh database" + when()
	case t.Fresh && !r.cfg.Fresh:
		return OutcomeSkipped, "runs only on a fresh database"
	case t.Policy == Always:
		return OutcomePending, "every boot"
	case t.Policy == Once && applied:
		return OutcomeDone, "ran once" + when()
	case t.Policy == OnChange && applied && last.Checksum == t.changeKey():
		return OutcomeDone, "unchanged since it ran" + when()
	case t.Policy == OnChange && applied:
		return OutcomePending, "changed since it last ran"
	}
	return OutcomePending, "never ran"
}

// runLocked runs task i on the locked session and records it. It returns
// an error only when the run must stop: a required task failed, the
// session was lost, or ctx ended.
func (r *Runner) runLocked(ctx context.Context, conn *pgx.Conn, i int) error {
	t := &r.tasks[i]
	r.mu.Lock()
	res := &r.results[i]
	prev := res.Last
	res.Outcome, res.Started, r.current = OutcomeRunning, time.Now(), i
	r.mu.Unlock()

	rec := migrate.Record{Line: Line, Key: t.Name, Name: filepath.Base(t.File), Checksum: t.changeKey(),
		Attempts: 1, Runner: r.runner}
	if t.File == "" {
		rec.Name = "go"
	}
	if prev != nil {
		rec.Attempts = prev.Attempts + 1
	}
	start := time.Now()
	output, err := r.runBody(ctx, conn, t, &rec, start)
	rec.Duration = time.Since(start)
	if errors.Is(err, errAbandoned) {
		// The session is closed and the function may still hold it:
		// nothing more goes over it, not even the failure's record.
		te := taskError(t, err, r.cfg.Exec.redact)
		r.mu.Lock()
		res.Duration, res.Outcome, res.Error, res.Hint, r.current = rec.Duration, OutcomeFailed, te.Error(), te.Hint(), -1
		r.mu.Unlock()
		r.log.Error("startup task abandoned", logTask, t.Name, logErr, te.Error())
		return &status.ActionError{Err: te, Hint: "make " + t.Name + " return when its context is done, then restart"}
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // stopping: nothing to record, the next boot runs it
	}
	if conn.IsClosed() {
		return fmt.Errorf("task %s: the locked session was lost; it will be retried: %w", t.Name, err)
	}
	if _, rerr := conn.Exec(ctx, resetSession); rerr != nil && err == nil {
		err = fmt.Errorf("reset the session after it: %w", rerr)
	}
	var te *TaskError
	if err != nil {
		te = taskError(t, err, r.cfg.Exec.redact)
		rec.Outcome, rec.SQLState, rec.Message = migrate.OutcomeFailed, te.SQLState, te.Error()
		if perr := r.mig.History().Put(ctx, conn, rec); perr != nil {
			r.log.Error("could not record a failed task", logTask, t.Name, logErr, perr)
		}
	}

	r.mu.Lock()
	res.Duration, res.Output, r.current = rec.Duration, output, -1
	if te != nil {
		res.Outcome, res.Error, res.Hint = OutcomeFailed, te.Error(), te.Hint()
	} else {
		res.Outcome, res.Error, res.Hint = OutcomeRan, "", ""
	}
	r.mu.Unlock()

	attrs := []any{logTask, t.Name, logDuration, rec.Duration.Round(time.Millisecond).String()}
	if t.File != "" {
		attrs = append(attrs, logFile, t.File)
	}
	if output != "" {
		attrs = append(attrs, logOutput, output)
	}
	if te == nil {
		r.log.Info("startup task ran", attrs...)
		return nil
	}
	attrs = append(attrs, logErr, te.Error())
	if t.OnFailure == BestEffort {
		r.log.Warn("best-effort startup task failed; going on", attrs...)
		return nil
	}
	r.log.Error("required startup task failed", attrs...)
	return &status.ActionError{Err: te, Hint: te.Hint()}
}

// resetSession undoes what a task may have set on the locked session
// (a role, settings) before the next one; advisory locks stay.
const resetSession = "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL"

// asSessionRole makes the rest of a transaction run as the session's own
// user, so that the history row is written whatever role the task set.
const asSessionRole = "SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE"

// runBody runs the task's body with its timeout. A body in a transaction
// commits together with rec, written as applied; otherwise rec is written
// after it succeeded.
func (r *Runner) runBody(ctx context.Context, conn *pgx.Conn, t *Task, rec *migrate.Record, start time.Time) (string, error) {
	if t.Command != nil {
		vars := []string{"UPLINK_TASK=" + t.Name, "UPLINK_FRESH=" + strconv.FormatBool(r.cfg.Fresh)}
		output, err := r.cfg.Exec.run(ctx, t.Command, vars, t.Timeout)
		if err == nil {
			err = r.putApplied(ctx, conn, rec, start)
		}
		return output, err
	}
	tctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	disarm := cancelAtDeadline(tctx, conn)
	defer disarm()
	body := func(db migrate.DB) error {
		if t.SQL != "" {
			_, err := db.Exec(ctx, t.SQL)
			return err
		}
		return abandonIfStuck(tctx, conn, func() error {
			return protect(func() error { return t.Func(tctx, guardDB{db: db, run: ctx, task: tctx}) })
		})
	}
	if t.NoTransaction {
		err := body(conn)
		disarm()
		if err == nil {
			err = r.putApplied(ctx, conn, rec, start)
		}
		return "", timedOut(tctx, err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	err = body(tx)
	disarm() // from here on, only our own statements run
	if errors.Is(err, errAbandoned) {
		return "", timedOut(tctx, err) // the session is closed: no rollback to send
	}
	if err == nil {
		if _, err = tx.Exec(ctx, asSessionRole); err == nil {
			err = r.putApplied(ctx, tx, rec, start)
		}
	}
	if err == nil {
		err = tx.Commit(ctx)
	} else {
		tx.Rollback(ctx)
	}
	return "", timedOut(tctx, err)
}

// abandonGrace is how long a Go task may run on after its timeout, to
// notice its cancelled context, before it is abandoned.
const abandonGrace = 2 * time.Second

// errAbandoned is a Go task that outlived its timeout and abandonGrace.
var errAbandoned = errors.New("the Go function did not return after its context was cancelled; its session was closed and the function abandoned (make it return when ctx is done)")

// abandonIfStuck runs fn, a Go task, and waits for it at most until task
// ends and abandonGrace after. A function that ignores its context (a
// loop without database calls, a channel nobody sends on) would hold the
// cluster lock, and every replica's boot, forever: instead its session
// is closed, which releases the lock and makes whatever it sends next
// fail, and it is left to return on its own.
func abandonIfStuck(task context.Context, conn *pgx.Conn, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-task.Done():
	}
	t := time.NewTimer(abandonGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		conn.PgConn().Conn().Close() // safe beside a goroutine using conn: it only fails its I/O
		return errAbandoned
	}
}

func (r *Runner) putApplied(ctx context.Context, db migrate.DB, rec *migrate.Record, start time.Time) error {
	rec.Outcome, rec.Duration = migrate.OutcomeApplied, time.Since(start)
	return r.mig.History().Put(ctx, db, *rec)
}

// timedOut marks err as the task's timeout when the deadline caused it.
func timedOut(task context.Context, err error) error {
	if err != nil && errors.Is(task.Err(), context.DeadlineExceeded) {
		return &timeoutError{err: err}
	}
	return err
}

type timeoutError struct{ err error }

func (e *timeoutError) Error() string { return e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }

// TaskError is a task that failed: which, where and why.
type TaskError struct {
	Task string
	File string
	// Line is where in File a SQL task failed, from PostgreSQL's error
	// position; 0 when unknown.
	Line     int
	SQLState string
	// Message is PostgreSQL's message with its detail, the command's
	// failure, or the Go function's error; secrets hidden.
	Message  string
	TimedOut bool
	Timeout  time.Duration
	Err      error
}

func (e *TaskError) Error() string {
	where := "task " + e.Task
	if e.File != "" {
		where = e.File
		if e.Line > 0 {
			where += ":" + strconv.Itoa(e.Line)
		}
		where += ": task " + e.Task
	}
	msg := where + ": " + e.Message
	if e.SQLState != "" {
		msg += " (SQLSTATE " + e.SQLState + ")"
	}
	return msg
}

func (e *TaskError) Unwrap() error { return e.Err }

// Hint says what to do about the failure.
func (e *TaskError) Hint() string {
	var ce *CommandError
	if errors.As(e.Err, &ce) {
		return ce.Hint() + "; the failure is recorded and the next boot retries it"
	}
	what := "the task " + e.Task
	if e.File != "" {
		what = e.File
	}
	if e.TimedOut {
		return fmt.Sprintf("%s ran past its timeout of %s: find out why it hangs, or raise timeout= in its header (Task.Timeout)", what, e.Timeout)
	}
	return "fix " + what + " and restart; the failure is recorded and the next boot retries it"
}

// taskError describes a task's failure, with redact hiding secrets.
func taskError(t *Task, err error, redact func(string) string) *TaskError {
	e := &TaskError{Task: t.Name, File: t.File, Message: redact(err.Error()), Timeout: t.Timeout, Err: err}
	var to *timeoutError
	var ce *CommandError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &ce):
		e.TimedOut = ce.TimedOut
		if t.File != "" {
			e.Message = redact(ce.describe())
		}
	case errors.Is(err, errAbandoned):
		e.TimedOut = true
		e.Message = fmt.Sprintf("did not return within its timeout of %s and %s after: abandoned, its session closed and its work rolled back", t.Timeout, abandonGrace)
	case errors.As(err, &to):
		e.TimedOut = true
		e.Message = fmt.Sprintf("still running after its timeout of %s; cancelled and rolled back", t.Timeout)
	}
	if errors.As(err, &pgErr) && !e.TimedOut {
		e.SQLState = pgErr.Code
		e.Message = redact(pgErr.Message)
		if pgErr.Detail != "" {
			e.Message += "; " + redact(pgErr.Detail)
		}
		if t.SQL != "" && pgErr.Position > 0 {
			e.Line, _ = sqlsplit.Statement{SQL: t.SQL, Line: 1, Col: 1}.Locate(int(pgErr.Position))
		}
	}
	return e
}

// Results returns each task's result so far, in order.
func (r *Runner) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.results...)
}

func (r *Runner) set(state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if state != r.state {
		r.since = time.Now()
	}
	r.state = state
}

func (r *Runner) finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = -1
	if err != nil {
		r.lastErr, r.errAt = err, time.Now()
		r.state = "failed"
		return
	}
	r.lastErr = nil
	r.state = "done"
}

// Check reports the tasks for /status: what the runner does ("running
// seed (2/5) for 3s", "waiting for the cluster lock"), each task's
// result in Data["tasks"], and a failure: fail for a required task,
// warn for a best-effort one.
func (r *Runner) Check() status.Check {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := status.Check{Status: status.Pass, Since: r.since, Data: map[string]any{}}
	counts := map[Outcome]int{}
	for _, res := range r.results {
		counts[res.Outcome]++
		if res.Outcome == OutcomeFailed && res.OnFailure == BestEffort {
			c.Status = status.Warn
			c.LastError, c.LastErrorAt, c.Hint = res.Error, res.Started.Add(res.Duration), res.Hint
		}
	}
	switch {
	case len(r.tasks) == 0:
		c.Detail = "no startup tasks configured"
	case r.current >= 0:
		res := r.results[r.current]
		c.Detail = fmt.Sprintf("running %s (%d of %d) for %s", res.Name, r.current+1, len(r.tasks),
			time.Since(res.Started).Round(100*time.Millisecond))
		c.Data["running"] = res.Name
		c.Data["running_since"] = res.Started
	case r.state == "waiting":
		c.Detail = "waiting for the cluster lock"
	case r.state == "checking":
		c.Detail = "reading the task history"
	case r.state == "":
		c.Detail = "not run yet"
	default:
		c.Detail = fmt.Sprintf("%d ran, %d failed, %d done before, %d skipped",
			counts[OutcomeRan], counts[OutcomeFailed], counts[OutcomeDone], counts[OutcomeSkipped])
	}
	c.Data["state"] = r.state
	if len(r.results) > 0 {
		c.Data["tasks"] = append([]Result(nil), r.results...)
	}
	if r.lastErr != nil {
		c.Status = status.Fail
		c.LastError, c.LastErrorAt, c.Hint = r.cfg.Exec.redact(r.lastErr.Error()), r.errAt, status.HintOf(r.lastErr)
	}
	return c
}
