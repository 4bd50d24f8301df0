package boot

import (
	"context"
	"fmt"
	"sync"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/starttask"
	"github.com/uplinkhq/uplink/status"
)

// taskState is what boot keeps of the startup tasks and hooks: built in
// the migrating and tasks phases, used again after ready and when
// stopping.
type taskState struct {
	mu         sync.Mutex
	tasks      []starttask.Task // Config.Tasks, then TasksDir's
	loaded     bool
	loadErr    error
	fresh      bool
	freshKnown bool
	runner     *starttask.Runner

	hooks         *starttask.Hooks // nil until the first ready
	preStop       []starttask.Hook
	stopPostStart context.CancelFunc
	postStartDone chan struct{}
}

// startupTasks returns Config.Tasks then TasksDir's, read once: the
// fresh check before migrating and the tasks phase must see the same.
func (a *App) startupTasks() ([]starttask.Task, error) {
	t := &a.tk
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.loaded {
		t.loaded = true
		t.tasks = append([]starttask.Task(nil), a.cfg.Tasks...)
		if dir := a.cfg.TasksDir; dir != "" {
			more, err := starttask.LoadTasks(dir)
			t.tasks, t.loadErr = append(t.tasks, more...), err
		}
	}
	return t.tasks, t.loadErr
}

// checkFresh notes, before the migrating phase, whether this boot finds
// the database fresh: none of the app's migration lines (Uplink's own
// when the app has none) has an applied migration. Judged once per
// process, so that a retried migration does not change the answer, and
// only when a task asks for it.
func (a *App) checkFresh(ctx context.Context) error {
	tasks, err := a.startupTasks()
	if err != nil || !anyFresh(tasks) {
		return nil // a bad task is for the tasks phase to report
	}
	a.tk.mu.Lock()
	known := a.tk.freshKnown
	a.tk.mu.Unlock()
	if known {
		return nil
	}
	m, err := a.migrator()
	if err != nil {
		return nil // the migrating step reports it
	}
	plan, err := m.Plan(ctx)
	if plan == nil {
		return err
	}
	fresh := isFresh(plan)
	if fresh {
		// A database that adopts Uplink has no history yet, but may well
		// have data: a restore task must not run over it.
		if fresh, err = a.noAppTables(ctx); err != nil {
			return err
		}
	}
	a.tk.mu.Lock()
	a.tk.fresh, a.tk.freshKnown = fresh, true
	a.tk.mu.Unlock()
	a.log.Info("checked whether the database is fresh, for fresh startup tasks", "fresh", fresh)
	return nil
}

// riverTables are River's, made by its migration line.
var riverTables = []string{"river_job", "river_leader", "river_migration", "river_queue", "river_client", "river_client_queue"}

// noAppTables reports that the database holds no table of the
// application's: none outside the system schemas and Uplink's own but
// River's and those an extension made (PostGIS's spatial_ref_sys).
func (a *App) noAppTables(ctx context.Context) (bool, error) {
	pool, err := a.earlyPool(ctx)
	if err != nil {
		return false, err
	}
	var none bool
	err = pool.QueryRow(ctx, `SELECT NOT EXISTS (
	SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)
	  AND n.nspname !~ '^pg_(toast|temp)'
	  AND NOT c.relname = ANY ($2)
	  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))`,
		migrate.DefaultSchema, riverTables).Scan(&none)
	if err != nil {
		return false, fmt.Errorf("look for the application's tables: %w", err)
	}
	return none, nil
}

func anyFresh(tasks []starttask.Task) bool {
	for _, t := range tasks {
		if t.Fresh {
			return true
		}
	}
	return false
}

// isFresh: no applied migration in any app line, or in Uplink's own line
// when the app has none.
func isFresh(plan *migrate.Plan) bool {
	var own *migrate.LineReport
	app := 0
	for i, l := range plan.Lines {
		if l.Line == UplinkLine {
			own = &plan.Lines[i]
			continue
		}
		if l.Target == 0 {
			continue // a line without migrations says nothing
		}
		app++
		if l.Current != 0 {
			return false
		}
	}
	if app == 0 && own != nil {
		return own.Current == 0
	}
	return true
}

// runTasks is the tasks phase: the startup tasks that are due, once per
// cluster, under the migrations' lock.
func (a *App) runTasks(ctx context.Context) error {
	r, err := a.taskRunner()
	if err != nil {
		a.setCheck("tasks", status.Check{Status: status.Fail, Detail: "startup tasks are misconfigured",
			LastError: provision.Redact(err.Error()), Hint: status.HintOf(err)})
		return err
	}
	return r.Run(ctx)
}

// taskRunner builds the runner once, for the provisioned database.
func (a *App) taskRunner() (*starttask.Runner, error) {
	tasks, err := a.startupTasks()
	if err != nil {
		return nil, err
	}
	t := &a.tk
	t.mu.Lock()
	r, fresh := t.runner, t.fresh
	t.mu.Unlock()
	if r != nil {
		return r, nil
	}
	m, err := a.migrator()
	if err != nil {
		return nil, err
	}
	cc, err := provision.ConnConfig(a.DSN())
	if err != nil {
		return nil, err
	}
	r, err = starttask.New(m, cc, starttask.Config{Env: a.cfg.Env, Fresh: fresh, Exec: a.execEnv(), Logger: a.log}, tasks...)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.runner = r
	t.mu.Unlock()
	return r, nil
}

// execEnv is what task and hook commands run with: the database URL and
// UPLINK_* variables, and the password to hide from their output.
func (a *App) execEnv() starttask.Exec {
	dsn := a.DSN().Secret()
	a.mu.Lock()
	mode := a.mode
	a.mu.Unlock()
	x := starttask.Exec{Vars: []string{
		"DATABASE_URL=" + dsn, "UPLINK_ENV=" + a.cfg.Env, "UPLINK_MODE=" + string(mode), "UPLINK_VERSION=" + a.cfg.Version,
	}}
	if addr := a.Addr(); addr != nil {
		x.Vars = append(x.Vars, "UPLINK_HTTP_ADDR="+addr.String())
	}
	if _, pw := provision.SplitPassword(dsn); pw != "" {
		x.Secrets = []string{pw}
	}
	return x
}

// addTaskChecks puts the live tasks and hooks checks in a /status
// snapshot, once they exist.
func (a *App) addTaskChecks(checks map[string]status.Check) {
	t := &a.tk
	t.mu.Lock()
	r, hs := t.runner, t.hooks
	t.mu.Unlock()
	if r != nil {
		checks["tasks"] = r.Check()
	}
	if hs != nil {
		checks["hooks"] = hs.Check()
	}
}

// postStart readies the post-start hooks, which run after the first
// ready, beside the database watch: it reads the hooks directory (a
// mistake in it is a failed hook, not a failed boot) and records the
// pre-stop hooks, so that a stop from now on runs them, even one that
// comes before the post-start hooks began. The walk calls it before
// phase ready, and the returned start once ready; start's wait waits for
// the post-start hooks.
func (a *App) postStart(ctx context.Context) (start func() (wait func())) {
	post := append([]starttask.Hook(nil), a.cfg.PostStart...)
	pre := append([]starttask.Hook(nil), a.cfg.PreStop...)
	hs := starttask.NewHooks(a.execEnv(), a.log)
	if dir := a.cfg.HooksDir; dir != "" {
		dp, ds, err := starttask.LoadHooks(dir)
		if err != nil {
			hs.Report(starttask.PostStart, dir, err)
		}
		post, pre = append(post, dp...), append(pre, ds...)
	}
	if len(post) == 0 && len(pre) == 0 && a.cfg.HooksDir == "" {
		return func() func() { return func() {} }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t := &a.tk
	t.mu.Lock()
	t.hooks, t.preStop, t.stopPostStart, t.postStartDone = hs, pre, cancel, done
	t.mu.Unlock()
	return func() func() {
		go func() {
			defer close(done)
			defer cancel()
			hs.Run(ctx, starttask.PostStart, post)
		}()
		return func() { <-done }
	}
}

// preStop is the first step of stopping: post-start hooks still running
// are stopped, then the pre-stop hooks run, all within ctx (the shutdown
// budget). Only a service that got ready runs them.
func (a *App) preStop(ctx context.Context) {
	t := &a.tk
	t.mu.Lock()
	hs, pre, stopPost, done := t.hooks, t.preStop, t.stopPostStart, t.postStartDone
	t.mu.Unlock()
	if hs == nil {
		return
	}
	stopPost()
	select {
	case <-done:
	case <-ctx.Done():
		return
	}
	hs.Run(ctx, starttask.PreStop, pre)
}

// TaskRunner returns the runner of cfg's startup tasks (Tasks, then
// TasksDir's) for the database dsn, with the history table, lock and
// command environment that boot uses, without starting anything: what
// `uplink tasks list|run` is built on. Its Config.Fresh is false: only a
// booting process can know.
func TaskRunner(cfg Config, dsn provision.DSN, mode provision.Mode) (*starttask.Runner, error) {
	a, err := New(cfg)
	if err != nil {
		return nil, err
	}
	a.dsn, a.mode = dsn, mode
	return a.taskRunner()
}
