package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/pglock"
	"github.com/uplinkhq/uplink/status"
)

// Defaults for Config.
const (
	DefaultSchema              = "uplink"
	DefaultTable               = "schema_history"
	DefaultLockTimeout         = 10 * time.Second
	DefaultStatementTimeout    = time.Hour
	DefaultClientCheckInterval = 2 * time.Second
	DefaultApplicationName     = "uplink-migrate"
)

// Config tunes a Migrator. The zero value is ready to use.
type Config struct {
	// Schema and Table name the history table; default uplink.schema_history.
	// The cluster lock's key is derived from them and the database name
	// (see package pglock), so migrators sharing a table share a lock.
	Schema, Table string
	// LockTimeout and StatementTimeout are PostgreSQL's lock_timeout and
	// statement_timeout for migrations: the defaults of the session that
	// runs them (connection parameters, which the reset between
	// migrations restores). They bound how long DDL may queue behind other
	// sessions' locks (a queued ALTER TABLE blocks every query after it)
	// and how long one statement may run. Defaults 10s and 1h; a negative
	// value means no limit. A lock_timeout failure is temporary: it is
	// recorded and the next run retries. Neither bounds the wait for the
	// migration lock itself, which lasts as long as its holder is alive.
	LockTimeout, StatementTimeout time.Duration
	// AllowOutOfOrder lets Up apply pending migrations older than the
	// newest applied one of their line (typically merged from a branch
	// after a newer one shipped). By default Up refuses and lists them.
	AllowOutOfOrder bool
	// ClientCheckInterval is PostgreSQL's client_connection_check_interval
	// (14 and later) on the session that runs migrations: how soon the
	// server notices that a migrating process died in the middle of a long
	// statement, and so rolls back and frees the lock for a waiter. Default
	// 2s; negative leaves the server's setting.
	ClientCheckInterval time.Duration
	// ApplicationName is the migration session's application_name, which
	// waiters show as the lock's holder. Default: the connection config's,
	// or "uplink-migrate".
	ApplicationName string
	// Logger receives one line per migration, lock waits and server
	// notices. Default: discard.
	Logger *slog.Logger
	// Lock tunes the polling of the migration lock; its OnWait, if set, is
	// called after the migrator's own logging and Check update.
	Lock pglock.Options
}

func (c Config) withDefaults() Config {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.ClientCheckInterval == 0 {
		c.ClientCheckInterval = DefaultClientCheckInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Log attribute keys.
const (
	logLine      = "line"
	logVersion   = "version"
	logName      = "name"
	logFile      = "file"
	logDuration  = "duration"
	logHolderPID = "holder_pid"
	logHolderApp = "holder_app"
	logHolderAge = "holder_age"
	logWaited    = "waited"
	logErr       = "err"
)

// Migrator applies lines of migrations to one database, once across every
// process that runs it at the same time.
//
// Up, UpTo, Down, DownTo, Accept and WithLock each use one session of
// their own, and one at a time per Migrator; Plan, Status and Check may run
// alongside them.
type Migrator struct {
	connConfig *pgx.ConnConfig
	// runConfig is connConfig with the migrations' timeouts as session
	// defaults, for the sessions that run them.
	runConfig *pgx.ConnConfig
	// noCheckInterval is set once the server refused
	// client_connection_check_interval (PostgreSQL 13 and older).
	noCheckInterval atomic.Bool
	cfg             Config
	lines           []Line
	history         *History
	runner          string
	log             *slog.Logger

	runMu sync.Mutex
	prog  progress
}

// New returns a Migrator for the database connConfig reaches. It checks
// cfg and lines as Validate does, short of reading files (runs check the
// files they need before they run anything; see Load), and does not
// connect.
func New(connConfig *pgx.ConnConfig, cfg Config, lines ...Line) (*Migrator, error) {
	if connConfig == nil {
		return nil, errors.New("migrate: nil connection config")
	}
	cfg = cfg.withDefaults()
	if err := joinProblems("migrations", "fix the migrations named above; nothing was run", checkLines(lines)); err != nil {
		return nil, err
	}
	cc := connConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	switch {
	case cfg.ApplicationName != "":
		cc.RuntimeParams["application_name"] = cfg.ApplicationName
	case cc.RuntimeParams["application_name"] == "":
		cc.RuntimeParams["application_name"] = DefaultApplicationName
	}
	m := &Migrator{
		connConfig: cc,
		runConfig:  cc.Copy(),
		cfg:        cfg,
		lines:      lines,
		history:    NewHistory(cfg.Schema, cfg.Table),
		log:        cfg.Logger,
	}
	ms := func(d time.Duration) string {
		if d < 0 {
			return "0" // no limit
		}
		return strconv.FormatInt(max(1, d.Milliseconds()), 10)
	}
	m.runConfig.RuntimeParams["lock_timeout"] = ms(cfg.LockTimeout)
	m.runConfig.RuntimeParams["statement_timeout"] = ms(cfg.StatementTimeout)
	if cfg.ClientCheckInterval > 0 {
		m.runConfig.RuntimeParams[checkInterval] = ms(cfg.ClientCheckInterval)
	}
	host, _ := os.Hostname()
	m.runner = fmt.Sprintf("%s pid %d app %s", host, os.Getpid(), cc.RuntimeParams["application_name"])
	// Notices carry what IF NOT EXISTS skipped and the like: worth a log line.
	prev := cc.OnNotice
	cc.OnNotice = func(c *pgconn.PgConn, n *pgconn.Notice) {
		m.log.Info("postgres notice", "severity", n.Severity, "message", n.Message)
		if prev != nil {
			prev(c, n)
		}
	}
	return m, nil
}

// History returns the history table, for a caller that records its own
// line in it (startup tasks) inside WithLock.
func (m *Migrator) History() *History { return m.history }

// Lines returns the migrator's lines.
func (m *Migrator) Lines() []Line { return slices.Clone(m.lines) }

func (m *Migrator) lineNames() []string {
	names := make([]string, len(m.lines))
	for i, l := range m.lines {
		names[i] = l.Name
	}
	return names
}

func (m *Migrator) line(name string) (*Line, error) {
	for i := range m.lines {
		if m.lines[i].Name == name {
			return &m.lines[i], nil
		}
	}
	return nil, &status.ActionError{Problem: fmt.Sprintf("no migration line %q", name),
		Hint: fmt.Sprintf("use one of %v", m.lineNames())}
}

const checkInterval = "client_connection_check_interval"

// connect opens a session; run says it will run migrations, with their
// timeouts (runConfig).
func (m *Migrator) connect(ctx context.Context, run bool) (*pgx.Conn, error) {
	cc := m.connConfig
	if run {
		cc = m.runConfig
		if m.noCheckInterval.Load() {
			cc = cc.Copy()
			delete(cc.RuntimeParams, checkInterval)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" && strings.Contains(pgErr.Message, checkInterval) {
		m.noCheckInterval.Store(true) // PostgreSQL 13 or older: do without
		return m.connect(ctx, run)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	return conn, nil
}

func closeConn(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

// report reads the history of the migrator's lines and compares. A run
// reads only what it needs to plan (full is false); Status and Plan show
// whole rows.
func (m *Migrator) report(ctx context.Context, db DB, full bool) (*Report, error) {
	var recs []Record
	var err error
	if full {
		recs, err = m.history.Records(ctx, db, m.lineNames()...)
	} else {
		recs, err = m.history.summary(ctx, db, m.lineNames(), len(allMigrations(m.lines)))
	}
	if err != nil {
		return nil, err
	}
	if err := m.readFiles(); err != nil {
		return nil, err
	}
	return analyze(m.lines, recs), nil
}

// readFiles reads every migration file, once (later calls cost nothing),
// and refuses when one cannot be read: an applied migration's checksum
// must be checked, a pending one's statements run.
func (m *Migrator) readFiles() error {
	return joinProblems("migration files", "make the files named above readable; nothing was run",
		eachFile(allMigrations(m.lines), readMigration))
}

func readMigration(mig *Migration, r *reader) []error {
	if err := mig.read(r); err != nil {
		return []error{err}
	}
	return nil
}

// readFilesMeanwhile starts reading the migration files while the caller
// connects and reads the history, which needs no file: a thousand small
// files take about as long to read as a connection takes to set up. It
// reads on one goroutine, leaving a core to the server setting up the
// session; readFiles finishes the work on all. The returned function
// waits for the reading to end.
func (m *Migrator) readFilesMeanwhile() (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		eachFileOn(1, allMigrations(m.lines), readMigration) // errors are for readFiles to report
	}()
	return func() { <-done }
}

// checkPending parses the migrations about to run and checks their
// statements (see Validate), so that a bad file stops the run before
// anything in it runs.
func checkPending(steps []Entry, dir Direction) error {
	migs := make([]*Migration, len(steps))
	for i, e := range steps {
		migs[i] = e.migration
	}
	errs := eachFile(migs, func(mig *Migration, r *reader) []error {
		if err := mig.parse(r); err != nil {
			return []error{err}
		}
		if s := mig.step(dir); s != nil {
			return checkStep(s)
		}
		return nil
	})
	return joinProblems("migrations", "fix the migrations named above; nothing was run", errs)
}

// inspect reads the history on a session of its own, without the lock,
// and hands the comparison to fn.
func (m *Migrator) inspect(ctx context.Context, fn func(*pgx.Conn, *Report) error) error {
	wait := m.readFilesMeanwhile()
	defer wait()
	conn, err := m.connect(ctx, false)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	rep, err := m.report(ctx, conn, true)
	if err != nil {
		return err
	}
	return fn(conn, rep)
}

// Status reports every migration of every line: applied, pending, failed
// (and retried by the next Up) or unknown (applied by a newer binary),
// with drift and out-of-order flags, and the database's invalid indexes.
// It takes no lock.
func (m *Migrator) Status(ctx context.Context) (*Report, error) {
	var rep *Report
	err := m.inspect(ctx, func(conn *pgx.Conn, r *Report) error {
		idx, err := invalidIndexes(ctx, conn)
		for _, i := range idx {
			r.InvalidIndexes = append(r.InvalidIndexes, i.String())
		}
		rep = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// Plan returns what Up would run now, without taking the lock or changing
// anything. When Up would refuse (drift, out-of-order migrations) it
// returns the plan and the error Up would return.
func (m *Migrator) Plan(ctx context.Context) (*Plan, error) {
	var plan *Plan
	var problems error
	err := m.inspect(ctx, func(_ *pgx.Conn, r *Report) error {
		plan, problems = r.plan("", 0), r.problems(m.cfg.AllowOutOfOrder)
		if problems == nil {
			problems = checkPending(plan.Steps(), DirUp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return plan, problems
}

// Result is what a run did.
type Result struct {
	// Applied lists the migrations run, in order (reverted ones for Down).
	Applied []Applied `json:"applied"`
	// Locked says whether the run took the lock; a run with nothing to do
	// does not, nor one that waited until another process had done it.
	Locked bool `json:"locked"`
	// LockWait is how long the run waited for the lock.
	LockWait time.Duration `json:"lock_wait"`
	// Duration is the whole run.
	Duration time.Duration `json:"duration"`
}

// Applied is one migration run.
type Applied struct {
	Line      string        `json:"line"`
	Version   int64         `json:"version"`
	Name      string        `json:"name"`
	Direction Direction     `json:"direction"`
	Duration  time.Duration `json:"duration"`
	// Attempt counts tries of this migration, this one included.
	Attempt int `json:"attempt,omitempty"`
	// Resumed is how many statements of a no-transaction migration were
	// skipped because an earlier attempt had committed them.
	Resumed int `json:"resumed,omitempty"`
}

// Up applies every pending migration of every line, lines in the order
// given to New. With nothing pending it returns at once, without taking
// the lock; otherwise it waits for the lock, reads the history again (a
// replica may have done the work meanwhile) and applies what is still
// pending, each migration committing on its own. While it waits, each
// time the lock changes hands and is taken again before it, it looks at
// the history too, and returns without the lock once nothing is pending.
//
// It refuses to start, returning a *status.ActionError, when an applied
// migration changed (see Accept) or, unless Config.AllowOutOfOrder, when a
// pending migration is older than the newest applied one. A failing
// migration stops the run with a *PartialError holding what was applied
// before it and the *MigrationError; the failure is recorded in the history
// table and the next run retries it.
func (m *Migrator) Up(ctx context.Context) (*Result, error) { return m.up(ctx, "", 0, nil) }

// UpTo applies the pending migrations of one line up to and including
// version.
func (m *Migrator) UpTo(ctx context.Context, line string, version int64) (*Result, error) {
	if _, err := m.line(line); err != nil {
		return nil, err
	}
	return m.up(ctx, line, version, nil)
}

// UpPeeking is Up, taking its first look at the history (without the
// lock) on peek, a connection the caller already has: a run with nothing
// pending then opens no session of its own. A new PostgreSQL session is
// a server process and an authentication, several milliseconds; boot
// lends a connection from its pool, which keeps it for the services.
// Nothing is written on peek, and nothing runs on it.
func (m *Migrator) UpPeeking(ctx context.Context, peek DB) (*Result, error) {
	return m.up(ctx, "", 0, peek)
}

func (m *Migrator) up(ctx context.Context, line string, upTo int64, peek DB) (*Result, error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	res := &Result{}
	start := time.Now()
	m.prog.set("checking", "reading migration history")
	wait := m.readFilesMeanwhile()
	defer wait()
	err := m.upOn(ctx, res, line, upTo, peek)
	res.Duration = time.Since(start)
	m.prog.finish(err, failDetail(err))
	return res, err
}

func (m *Migrator) upOn(ctx context.Context, res *Result, line string, upTo int64, peek DB) error {
	// A first look without the lock: up to date, the usual case, takes
	// no lock at all.
	upToDate := func(db DB) (bool, error) {
		rep, err := m.review(ctx, db, m.cfg.AllowOutOfOrder)
		if err != nil {
			return false, err
		}
		if len(rep.plan(line, upTo).Steps()) > 0 {
			return false, nil
		}
		m.logUnknown(rep)
		return true, nil
	}
	if peek != nil {
		if done, err := upToDate(peek); done || err != nil {
			return err
		}
	}
	return m.withSession(ctx, res, true, true, func(conn *pgx.Conn, lock func(neededFunc) error) error {
		if peek == nil {
			if done, err := upToDate(conn); done || err != nil {
				return err
			}
		}
		// While waiting, a replica may finish the work: whenever the lock
		// changes hands, look again, without the lock.
		err := lock(func(ctx context.Context) (bool, error) {
			rep, err := m.report(ctx, conn, false)
			if err != nil {
				return false, err
			}
			return len(rep.plan(line, upTo).Steps()) > 0, nil
		})
		if errors.Is(err, pglock.ErrNotNeeded) {
			m.log.Info("another process applied the pending migrations while this one waited for the lock",
				logWaited, res.LockWait.Round(time.Millisecond))
			return nil
		}
		if err != nil {
			return err
		}
		// Under the lock: whoever held it before may have done the work.
		rep, err := m.review(ctx, conn, m.cfg.AllowOutOfOrder)
		if err != nil {
			return err
		}
		m.logUnknown(rep)
		steps := rep.plan(line, upTo).Steps()
		if err := checkPending(steps, DirUp); err != nil {
			return err
		}
		return m.runSteps(ctx, conn, res, DirUp, steps, func(e Entry) int64 {
			return max(e.Version, lineCurrent(rep, e.Line))
		})
	})
}

// review reads the history, shows the versions in Check, and returns the
// error that forbids running: drift, or out-of-order migrations unless
// allowed.
func (m *Migrator) review(ctx context.Context, db DB, allowOutOfOrder bool) (*Report, error) {
	rep, err := m.report(ctx, db, false)
	if err != nil {
		return nil, err
	}
	m.prog.report(rep)
	return rep, rep.problems(allowOutOfOrder)
}

// runSteps applies (or reverts) steps in order, stopping at the first
// failure with a *PartialError; current gives a line's version after a
// step, for Check.
//
// Every transaction but the last commits without waiting for its WAL to
// reach the disk; the last one's flush carries all of theirs, since WAL
// is written in order. A run of 1,000 migrations thus waits for the disk
// once, not 1,000 times. Nothing is lost that matters: a server crash
// in the run can take only a tail of the migrations it committed, each
// with its own history row, so the database is at an earlier version
// that the next run continues from. A failure's history row is written
// with a waiting commit, which flushes the migrations before it; a
// no-transaction migration's statements commit as usual. Only a run cut
// short with no failure row (cancelled, session lost) returns applied
// migrations that a server crash in the next moment (PostgreSQL's
// walwriter flushes within three wal_writer_delay, 600 ms by default)
// could still take back; the next run applies them again.
func (m *Migrator) runSteps(ctx context.Context, conn *pgx.Conn, res *Result, dir Direction, steps []Entry, current func(Entry) int64) error {
	apply := m.applyUp
	if dir == DirDown {
		apply = m.applyDown
	}
	for i, e := range steps {
		m.prog.running(e, dir, i+1, len(steps))
		a, err := apply(ctx, conn, e, i < len(steps)-1)
		if err != nil {
			return &PartialError{Result: res, Err: m.asAction(err)}
		}
		res.Applied = append(res.Applied, a)
		m.prog.ran(e.Line, current(e))
	}
	return nil
}

func lineCurrent(rep *Report, line string) int64 {
	for _, l := range rep.Lines {
		if l.Line == line {
			return l.Current
		}
	}
	return 0
}

// failDetail is the one-line /status detail for a failed run.
func failDetail(err error) string {
	var (
		me    *MigrationError
		drift *DriftError
		ooo   *OutOfOrderError
	)
	switch {
	case errors.As(err, &me):
		return fmt.Sprintf("failed: %s %04d_%s", me.Line, me.Version, me.Name)
	case errors.As(err, &drift):
		return fmt.Sprintf("refused: %s migration %d changed after it was applied", drift.Line, drift.Version)
	case errors.As(err, &ooo):
		return fmt.Sprintf("refused: %s has pending migrations older than version %d", ooo.Line, ooo.Newest)
	}
	return "failed"
}

// asAction wraps a migration failure that needs a person in a
// *status.ActionError with the hint to fix it; temporary ones pass as they
// are, so the caller retries.
func (m *Migrator) asAction(err error) error {
	var me *MigrationError
	if !errors.As(err, &me) || me.Temporary() {
		return err
	}
	what := "the migration"
	if me.File != "" {
		what = me.File
	}
	hint := fmt.Sprintf("fix %s and run again (restart); the failure is recorded in %s.%s and the next run retries it",
		what, m.cfg.Schema, m.cfg.Table)
	if len(me.InvalidIndexes) > 0 {
		drops := make([]string, len(me.InvalidIndexes))
		for i, x := range me.InvalidIndexes {
			drops[i] = "DROP INDEX CONCURRENTLY " + x + ";"
		}
		hint = "drop the invalid index (" + strings.Join(drops, " ") + "), fix the cause, then restart"
	}
	return &status.ActionError{Err: err, Hint: hint}
}

func (m *Migrator) logUnknown(rep *Report) {
	for _, l := range rep.Lines {
		for _, e := range l.Entries {
			if e.State == StateUnknown {
				m.log.Warn("database has a migration this binary does not know; a newer release may have applied it",
					logLine, e.Line, logVersion, e.Version, logName, e.Name)
			}
		}
	}
}

// withSession runs fn on a new session; fn calls lock to take the
// migration lock, which is released, with the session closed, when fn
// returns. needed, when not nil, is asked while waiting whether the lock
// is still needed (see pglock.Options.Needed). run says the session runs
// migrations (see connect); track whether the lock wait shows in Check.
func (m *Migrator) withSession(ctx context.Context, res *Result, run, track bool, fn func(conn *pgx.Conn, lock func(neededFunc) error) error) error {
	conn, err := m.connect(ctx, run)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	var held *pglock.Lock
	defer func() {
		if held == nil {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := held.Release(rctx); err != nil && !errors.Is(err, pglock.ErrLost) {
			m.log.Warn("release migration lock", logErr, err)
		}
	}()
	return fn(conn, func(needed neededFunc) error {
		start := time.Now()
		l, err := m.acquire(ctx, conn, track, needed)
		if err != nil {
			res.LockWait = time.Since(start)
			return err
		}
		held = l
		res.Locked, res.LockWait = true, l.Waited()
		return m.history.Ensure(ctx, conn)
	})
}

// neededFunc says whether a waiter still needs the lock (see
// pglock.Options.Needed).
type neededFunc = func(context.Context) (bool, error)

// acquire takes the migration lock on conn, reporting the wait.
func (m *Migrator) acquire(ctx context.Context, conn *pgx.Conn, track bool, needed neededFunc) (*pglock.Lock, error) {
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()", pgx.QueryExecModeExec).Scan(&db); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	opts := m.cfg.Lock
	opts.Needed = needed
	userOnWait := opts.OnWait
	opts.OnWait = func(w pglock.Wait) {
		if track {
			m.prog.waiting(w)
		}
		if w.Known {
			m.log.Info("waiting for the migration lock", logHolderPID, w.Holder.PID,
				logHolderApp, w.Holder.ApplicationName, logHolderAge, w.Holder.Age.Round(time.Second),
				logWaited, w.Waited.Round(time.Millisecond))
		} else {
			m.log.Info("waiting for the migration lock", logWaited, w.Waited.Round(time.Millisecond))
		}
		if userOnWait != nil {
			userOnWait(w)
		}
	}
	l, err := pglock.Acquire(ctx, conn, pglock.Key(db, m.cfg.Schema, m.cfg.Table), opts)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if l.Waited() > time.Second {
		m.log.Info("took the migration lock", logWaited, l.Waited().Round(time.Millisecond))
	}
	if track {
		m.prog.set("locked", "holding the migration lock")
	}
	return l, nil
}

// WithLock runs fn under the migration lock, on the session that holds
// it, with the history table in place: how startup tasks run once per
// cluster and record themselves (see History) without a lock of their
// own. Session settings are reset before fn; fn may open transactions on
// conn but must not release the lock or close conn.
func (m *Migrator) WithLock(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	return m.withSession(ctx, &Result{}, false, false, func(conn *pgx.Conn, lock func(neededFunc) error) error {
		if err := lock(nil); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, resetSession); err != nil {
			return fmt.Errorf("migrate: reset session: %w", err)
		}
		return fn(ctx, conn)
	})
}

// Accept records the current checksum of an applied migration whose file
// was changed on purpose (a comment, a reformatting, a fix already
// applied by hand), so Up stops reporting drift for it. It takes the lock.
func (m *Migrator) Accept(ctx context.Context, line string, version int64) error {
	l, err := m.line(line)
	if err != nil {
		return err
	}
	var mig *Migration
	for _, x := range l.Migrations {
		if x.Version == version {
			mig = x
		}
	}
	if mig == nil {
		return &status.ActionError{Problem: fmt.Sprintf("line %s has no migration %d", line, version),
			Hint: "give the version of a migration file"}
	}
	if err := mig.read(nil); err != nil {
		return joinProblems("migration files", "make the file readable, then accept it", []error{err})
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	return m.withSession(ctx, &Result{}, false, false, func(conn *pgx.Conn, lock func(neededFunc) error) error {
		if err := lock(nil); err != nil {
			return err
		}
		r, ok, err := m.history.Get(ctx, conn, line, versionKey(version))
		if err != nil {
			return err
		}
		if !ok || r.Outcome != OutcomeApplied {
			return &status.ActionError{Problem: fmt.Sprintf("%s migration %d is not applied; there is nothing to accept", line, version),
				Hint: "accept applies to migrations already applied; run uplink migrate up for pending ones"}
		}
		if r.Checksum == mig.Checksum() {
			return nil
		}
		m.log.Info("accepted a changed migration", logLine, line, logVersion, version, logFile, mig.File,
			"recorded", r.Checksum, "current", mig.Checksum())
		r.Checksum, r.Name, r.Runner = mig.Checksum(), mig.Name, m.runner
		return m.history.Put(ctx, conn, r)
	})
}

// Down reverts the newest applied migration of line.
func (m *Migrator) Down(ctx context.Context, line string) (*Result, error) {
	return m.down(ctx, line, -1)
}

// DownTo reverts every applied migration of line newer than version,
// newest first; DownTo(ctx, line, 0) reverts them all.
func (m *Migrator) DownTo(ctx context.Context, line string, version int64) (*Result, error) {
	if version < 0 {
		return nil, fmt.Errorf("migrate: DownTo version %d is negative", version)
	}
	return m.down(ctx, line, version)
}

// down reverts applied migrations of line above target, or only the newest
// when target is -1. A failure is returned, not recorded: the history row
// stays "applied", since reverting is an operator's command run by hand,
// not part of boot.
func (m *Migrator) down(ctx context.Context, line string, target int64) (*Result, error) {
	if _, err := m.line(line); err != nil {
		return nil, err
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	res := &Result{}
	start := time.Now()
	m.prog.set("checking", "reading migration history")
	wait := m.readFilesMeanwhile()
	defer wait()
	err := m.withSession(ctx, res, true, true, func(conn *pgx.Conn, lock func(neededFunc) error) error {
		if err := lock(nil); err != nil {
			return err
		}
		rep, err := m.review(ctx, conn, true)
		if err != nil {
			return err
		}
		steps, err := downSteps(rep, line, target)
		if err != nil {
			return err
		}
		if err := checkPending(steps, DirDown); err != nil {
			return err
		}
		return m.runSteps(ctx, conn, res, DirDown, steps, func(e Entry) int64 {
			return appliedBelow(rep, line, e.Version)
		})
	})
	res.Duration = time.Since(start)
	m.prog.finish(err, failDetail(err))
	return res, err
}

// appliedBelow is the newest version of line applied before v.
func appliedBelow(rep *Report, line string, v int64) int64 {
	var below int64
	for _, l := range rep.Lines {
		for _, e := range l.Entries {
			if l.Line == line && (e.State == StateApplied || e.State == StateUnknown) && e.Version < v {
				below = max(below, e.Version)
			}
		}
	}
	return below
}

// downSteps picks the applied migrations to revert, newest first, and
// checks that each can be.
func downSteps(rep *Report, line string, target int64) ([]Entry, error) {
	var applied []Entry
	for _, l := range rep.Lines {
		if l.Line != line {
			continue
		}
		for _, e := range l.Entries {
			if (e.State == StateApplied || e.State == StateUnknown) && e.Version > target {
				applied = append(applied, e)
			}
		}
	}
	slices.Reverse(applied)
	if target < 0 && len(applied) > 1 {
		applied = applied[:1]
	}
	for _, e := range applied {
		switch {
		case e.State == StateUnknown:
			return nil, &status.ActionError{
				Problem: fmt.Sprintf("%s migration %d (%s) is applied but unknown to this binary; it cannot be reverted", line, e.Version, e.Name),
				Hint:    "revert it with the release that has its file",
			}
		case e.migration.parse(nil) != nil:
			return nil, checkPending([]Entry{e}, DirDown)
		case !e.migration.HasDown():
			return nil, &status.ActionError{
				Problem: fmt.Sprintf("%s: %s migration %d has no down migration", e.migration.source(), line, e.Version),
				Hint:    "add a down section (-- +goose Down, -- migrate:down) or a .down.sql file",
			}
		}
	}
	return applied, nil
}
