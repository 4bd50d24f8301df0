package lite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/internal/backoff"
	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// Lite runs a private PostgreSQL as Uplink's child process. Create it with
// New; it is safe for concurrent use.
type Lite struct {
	cfg Config
	lay Layout
	log *slog.Logger
	tr  *tracker

	failed     chan error
	failedOnce sync.Once

	// Seams for tests; New sets them to the real machine.
	installer *pgbin.Installer
	creator   *runas.Creator
	deathSig  syscall.Signal // sent to the postmaster if Uplink dies
	// postgresDBDelay is how long after Provision returns the postgres
	// database is made again (see restorePostgresDB).
	postgresDBDelay time.Duration

	mu         sync.Mutex
	provCancel context.CancelCauseFunc // set while Provision runs
	provDone   chan struct{}
	running    bool // Provision succeeded and Stop has not run
	dsn        provision.DSN
	lock       *dirLock
	serverLog  *serverLog
	run        runParams   // what every (re)start of the server needs
	pm         *postmaster // the current server, replaced by restarts
	lastTail   []string    // the server log's end when it was closed
	superStop  context.CancelFunc
	superDone  chan struct{}
}

// runParams are fixed for one Provision: restarts use the same binaries,
// user, password and port, so the DSN handed out stays valid.
type runParams struct {
	bin      pgbin.Binaries
	user     *runas.User
	password string // the application role's: pg/password
	// superPassword is the postgres role's: pg/superuser-password. The
	// application's DSN goes to the app, its tasks, hooks and tools; the
	// superuser's password must not be in it.
	superPassword string
	port          int
}

var _ provision.Provisioner = (*Lite)(nil)

// errStopped is the cause given to a Provision that Stop interrupts.
var errStopped = errors.New("lite: stopped")

// New checks cfg, applies its defaults, and returns a Lite that has not
// touched anything yet.
func New(cfg Config) (*Lite, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "postgres")
	l := &Lite{
		cfg:      cfg,
		lay:      LayoutOf(cfg.DataDir),
		log:      log,
		tr:       newTracker(log, cfg.DataDir),
		failed:   make(chan error, 1),
		creator:  &runas.Creator{},
		deathSig: syscall.SIGINT,

		postgresDBDelay: postgresDBDelay,
	}
	l.installer = &pgbin.Installer{
		Never:  cfg.Install == InstallNever,
		Output: logWriter{log},
		Progress: func(line string) {
			if l.tr.currentStep() != StepInstall {
				l.tr.set(StepInstall, status.Warn, "installing PostgreSQL through the OS package manager")
			}
			l.tr.progress(StepInstall, "installing PostgreSQL: "+line)
		},
	}
	return l, nil
}

// Mode is provision.ModeLite.
func (l *Lite) Mode() provision.Mode { return provision.ModeLite }

// Layout is where l keeps its files.
func (l *Lite) Layout() Layout { return l.lay }

// Status reports the current step, the step history (Data["steps"]), and
// on failure the tail of the server log (Data["log_tail"]). It never
// contains a password.
func (l *Lite) Status() status.Check { return l.tr.snapshot() }

// Failed delivers one error if the server keeps dying: more than
// MaxRestarts failures within RestartWindow.
func (l *Lite) Failed() <-chan error { return l.failed }

// Provision brings the server up and returns a DSN over its unix socket,
// for the application role and database. See the package documentation
// for the steps. A second call while the server runs returns the same
// DSN; a call after an error starts over.
func (l *Lite) Provision(ctx context.Context) (provision.DSN, error) {
	l.mu.Lock()
	switch {
	case l.running:
		defer l.mu.Unlock()
		return l.dsn, nil
	case l.provCancel != nil:
		l.mu.Unlock()
		return "", errors.New("lite: Provision is already running")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	l.provCancel, l.provDone = cancel, done
	l.mu.Unlock()

	dsn, err := l.provisionRetrying(ctx)
	stopped := errors.Is(context.Cause(ctx), errStopped)
	cancel(nil)

	// Status first: Stop waits for done, and its caller may look next.
	switch {
	case stopped:
		l.tr.set(StepStopped, status.Warn, "stopped before PostgreSQL was ready")
	case err != nil:
		l.tr.fail(err, status.HintOf(err), l.tail())
	}
	l.mu.Lock()
	l.provCancel = nil
	close(done)
	if err == nil {
		l.running, l.dsn = true, dsn
		l.tr.setServing(true)
	}
	l.mu.Unlock()
	return dsn, err
}

// provisionRetrying runs provision until it succeeds, ctx ends, or it
// fails in a way a person must fix (a *status.ActionError). Other
// failures may fix themselves (a dead server's process not yet gone, a
// port taken in a race, a disk full for a moment): they are retried with
// back-off, RestartBackoffMin to RestartBackoffMax, each attempt shown in
// Status, MaxRestarts times, as a running server's deaths are; one more
// failure is for a person (a configuration PostgreSQL refuses fails the
// same way every time), with the server log's tail.
func (l *Lite) provisionRetrying(ctx context.Context) (provision.DSN, error) {
	for attempt := 1; ; attempt++ {
		dsn, err := l.provision(ctx)
		if err == nil || ctx.Err() != nil || status.IsAction(err) {
			return dsn, err
		}
		if attempt > l.cfg.MaxRestarts {
			return "", &status.ActionError{
				Problem: fmt.Sprintf("PostgreSQL did not start, %d times", attempt),
				Err:     err,
				Hint:    "see the server log's tail in /status and " + l.lay.LogFile + ", fix what it names, and restart Uplink",
			}
		}
		wait := l.restartDelay(attempt)
		l.tr.retrying(attempt, time.Now().Add(wait), err, l.tail())
		l.log.Warn("postgres: start failed; trying again", "err", provision.Redact(err.Error()),
			"attempt", attempt, "retry_in", wait.Round(time.Millisecond).String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", context.Cause(ctx)
		case <-t.C:
		}
	}
}

// restartDelay is the wait before the nth attempt to start the server
// again. Never under RestartBackoffMin, which Exp's jitter would go to
// half of: a server back within a second could come and go between two
// of boot's pings, unseen.
func (l *Lite) restartDelay(n int) time.Duration {
	return max(backoff.Exp(n, l.cfg.RestartBackoffMin, l.cfg.RestartBackoffMax), l.cfg.RestartBackoffMin)
}

// provision does the work of Provision. Whatever it set up is undone when
// it fails, so a retry starts from a clean slate.
func (l *Lite) provision(ctx context.Context) (_ provision.DSN, err error) {
	defer func() {
		if err != nil {
			l.rollback()
		}
	}()
	var sp startPlan
	if err := l.claim(ctx, &sp); err != nil {
		return "", err
	}
	if err := l.prepare(ctx, &sp); err != nil {
		return "", err
	}
	return l.serve(ctx, sp)
}

// startPlan is what the steps before the first start decide.
type startPlan struct {
	rp          runParams
	cluster     clusterState
	st          state  // pg/state.json, updated as the plan is made
	appVerifier string // a fresh cluster's application role's, made ahead
}

// claim checks the data directory, finds the binaries and takes the lock.
// Binaries come before anything is created: a refusal (a foreign
// directory, a wrong major, no PostgreSQL and no permission to install)
// leaves the directory as it was.
func (l *Lite) claim(ctx context.Context, sp *startPlan) error {
	lay := l.lay
	l.tr.set(StepCheck, status.Warn, "checking "+lay.Root)
	_, major, err := lay.inspect()
	if err != nil {
		return err
	}
	if err := lay.checkSocketPath(); err != nil {
		return err
	}
	sp.st, err = readState(lay.State)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Warn("state file unreadable; rebuilding it", "path", lay.State, "err", err)
	}
	if sp.rp.bin, err = l.binaries(ctx, major, sp.st); err != nil {
		return err
	}
	if err := mkdirRoot(lay.Root); err != nil {
		return &status.ActionError{Problem: "cannot create the data directory", Err: err, Hint: "set UPLINK_DATA_DIR to a directory Uplink may write"}
	}
	lock, err := lockDir(lay.Lock)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.lock = lock
	l.mu.Unlock()
	// Again under the lock: another Uplink may have initialised meanwhile.
	if sp.cluster, major, err = lay.inspect(); err != nil {
		return err
	}
	if major != 0 && major != sp.rp.bin.Major {
		if sp.rp.bin, err = l.binaries(ctx, major, state{}); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		path string
		perm fs.FileMode
	}{{lay.PG, 0o755}, {lay.LogDir, 0o700}} {
		// Chmod after Mkdir: a umask of 077 would leave pg/ closed to the
		// postgres user.
		if err := os.Mkdir(d.path, d.perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Chmod(d.path, d.perm); err != nil {
			return err
		}
	}
	l.noteLeftovers()
	return nil
}

// prepare readies what the server needs: its OS user, the password, the
// cluster (initdb on first start), no orphan in the way, a free port.
func (l *Lite) prepare(ctx context.Context, sp *startPlan) error {
	var err error
	if sp.rp.user, err = l.serverUser(ctx, sp.cluster); err != nil {
		return err
	}
	if sp.rp.password, err = l.password(sp.cluster); err != nil {
		return err
	}
	if sp.rp.superPassword, err = l.superPassword(sp.rp.password); err != nil {
		return err
	}
	if err := l.prepareRunDir(sp.rp.user); err != nil {
		return err
	}
	if sp.cluster == noCluster {
		// Made now so that its MAC goes into the state file with the
		// port, in the one write of a first start.
		sp.appVerifier = scramVerifier(sp.rp.password, appIterations)
		sp.st.AppVerifierMAC = verifierMAC(sp.rp.password, sp.appVerifier)
		if err := l.initdb(ctx, sp.rp); err != nil {
			return err
		}
		sp.st.Created = time.Now().UTC()
	}
	if err := l.stopOrphan(); err != nil {
		return err
	}
	if err := l.pickPort(&sp.st, sp.rp.bin); err != nil {
		return err
	}
	sp.rp.port = sp.st.Port
	l.tr.setInfo(map[string]any{"bindir": sp.rp.bin.Dir, "version": sp.rp.bin.Version, "port": sp.rp.port})
	return nil
}

// serve starts the server, hands over the application's role and
// database, and leaves the server to the supervisor.
//
// A start on a cluster whose role and database an earlier start checked
// (see quickStart) proves the server ready with the application's own
// login, through Config.Probe, and leaves the superuser's checks to the
// supervisor, after the boot. Any other start logs in as the superuser
// first and makes or repairs the role and database before returning.
func (l *Lite) serve(ctx context.Context, sp startPlan) (provision.DSN, error) {
	srvLog, err := openServerLog(l.lay.LogFile, l.cfg.LogMaxBytes, l.cfg.LogKeep, l.log)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.serverLog, l.run = srvLog, sp.rp
	l.mu.Unlock()
	dsn := socketDSN(l.lay.Run, sp.rp.port, l.cfg.User, sp.rp.password, l.cfg.Database)

	var (
		pm    *postmaster
		conn  *pgx.Conn // the superuser's, when it logged in to check
		later func(context.Context)
	)
	if quick := l.quickStart(sp); quick {
		pm, err = l.start(ctx, StepStart, func(ctx context.Context) error {
			err := l.probe(ctx, dsn)
			if refusedApp(err) {
				// The server answers; the role or database needs the
				// superuser. Checked below, as on a first start.
				quick = false
				return nil
			}
			return err
		})
		if err == nil && quick {
			later = l.checkLater
		}
		if err == nil && !quick {
			l.setServer(pm) // for the rollback, should the check fail
			l.log.Warn("the application's role or database refused the login; checking them as the superuser")
			err = l.superPing(l.cfg.Database, func(c *pgx.Conn) { conn = c })(ctx)
		}
	} else {
		// On an existing cluster, the first connection goes to the
		// application's database: the first backend in a database after a
		// server start rebuilds that database's relation cache file, and
		// doing it here spares boot's first connection, a few milliseconds.
		// A fresh cluster has no application database yet.
		db := maintenanceDB
		if sp.cluster == clusterExists {
			db = l.cfg.Database
		}
		pm, err = l.start(ctx, StepStart, l.superPing(db, func(c *pgx.Conn) { conn = c }))
	}
	if err != nil {
		return "", err
	}
	l.setServer(pm)

	if conn != nil {
		app, err := l.checkApp(ctx, conn, sp)
		if app.changed {
			// Recorded after the fact: the step is quick, and the history
			// should show that this start made the role or database.
			l.tr.set(StepCreateDatabase, status.Warn, fmt.Sprintf("created or repaired role %s and database %s", l.cfg.User, l.cfg.Database))
		}
		if err != nil {
			return "", err
		}
		if app.needPostgresDB {
			later = l.restorePostgresDB
		}
	}
	l.tr.set(StepReady, status.Pass, fmt.Sprintf("PostgreSQL %s ready on port %d", sp.rp.bin.Version, sp.rp.port))

	superCtx, superStop := context.WithCancel(context.WithoutCancel(ctx))
	superDone := make(chan struct{})
	l.mu.Lock()
	l.superStop, l.superDone = superStop, superDone
	l.mu.Unlock()
	go l.supervise(superCtx, pm, superDone, later)
	return dsn, nil
}

// quickStart says whether this start may skip the superuser's login: the
// cluster exists, and an earlier start of this version checked the
// application's role and database (it recorded the role's verifier) and
// logged in as the superuser with pg/superuser-password as it is now. A
// role or database changed or renamed since shows as a refused login of
// the probe, which falls back to the full check; a superuser password
// changed inside the cluster shows in checkLater's warning, and the next
// start does the full check.
func (l *Lite) quickStart(sp startPlan) bool {
	return sp.cluster == clusterExists && sp.st.AppVerifierMAC != "" &&
		sp.st.SuperPasswordMAC == passwordMAC(sp.rp.superPassword)
}

// probe is Config.Probe, or a login of its own that it closes again.
func (l *Lite) probe(ctx context.Context, dsn provision.DSN) error {
	if l.cfg.Probe != nil {
		_, err := l.cfg.Probe(ctx, dsn)
		return err
	}
	conn, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// refusedApp reports a probe refused for the role (a wrong password or no
// such role: PostgreSQL does not say which) or for the database.
func refusedApp(err error) bool {
	var pgErr *pgconn.PgError
	return cannotEnter(err) || errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// setServer records the running server, which Stop and a failed
// Provision's rollback stop.
func (l *Lite) setServer(pm *postmaster) {
	l.mu.Lock()
	l.pm = pm
	l.mu.Unlock()
}

// checkApp runs ensureApp on the superuser's conn, closes conn, and
// records the role's verifier in the state file when it changed.
func (l *Lite) checkApp(ctx context.Context, conn *pgx.Conn, sp startPlan) (appResult, error) {
	app, err := ensureApp(ctx, conn, appSpec{role: l.cfg.User, db: l.cfg.Database, password: sp.rp.password, superPassword: sp.rp.superPassword,
		fresh: sp.cluster == noCluster, verifier: sp.appVerifier, known: sp.st.AppVerifierMAC})
	// Closed now: while it is connected to template1, no database can be
	// created from it, and the application's cannot be renamed.
	conn.Close(context.WithoutCancel(ctx))
	if app.rehashed {
		l.log.Info("rewrote the postgres role's password verifier: its own password (pg/superuser-password), few SCRAM iterations for quicker logins", "iterations", superIterations)
	}
	if err != nil {
		return app, err
	}
	if super := passwordMAC(sp.rp.superPassword); app.mac != sp.st.AppVerifierMAC || super != sp.st.SuperPasswordMAC {
		// A repair, or the first start of this version.
		sp.st.AppVerifierMAC, sp.st.SuperPasswordMAC = app.mac, super
		if err := writeState(l.lay.State, sp.st); err != nil {
			l.log.Warn("could not record the application role's verifier; the next start checks it the slow way", "path", l.lay.State, "err", err)
		}
	}
	return app, nil
}

// checkLater is what a quick start left out, run by the supervisor after
// the boot: the superuser's checks of ensureApp (its own verifier, the
// postgres database). A failure is logged; the server keeps serving the
// application, whose login the start proved.
func (l *Lite) checkLater(ctx context.Context) {
	st, _ := readState(l.lay.State)
	conn, err := l.superConnect(ctx, maintenanceDB)
	if err == nil {
		var app appResult
		l.mu.Lock()
		rp := l.run
		l.mu.Unlock()
		app, err = l.checkApp(ctx, conn, startPlan{rp: rp, cluster: clusterExists, st: st})
		if app.changed {
			l.log.Warn(fmt.Sprintf("repaired role %s or database %s after the start", l.cfg.User, l.cfg.Database))
		}
		if err == nil && app.needPostgresDB {
			l.restorePostgresDB(ctx)
		}
	}
	if err != nil && ctx.Err() == nil {
		l.log.Warn("the superuser's check of the cluster after the start failed; the next start checks before it is ready", "err", err)
		// checkApp writes the file only when it succeeds: st is still its content.
		if st.SuperPasswordMAC != "" {
			st.SuperPasswordMAC = ""
			if werr := writeState(l.lay.State, st); werr != nil {
				l.log.Warn("could not update the state file", "path", l.lay.State, "err", werr)
			}
		}
	}
}

// binaries finds the server programs, for the cluster's major if there is
// a cluster, and installs them when the machine has none at all.
//
// The ones the last start recorded are used without running them when
// postgres there is the same file (binStamp): running postgres --version
// is most of a warm start's own time.
func (l *Lite) binaries(ctx context.Context, major int, last state) (pgbin.Binaries, error) {
	l.tr.set(StepFindBinaries, status.Warn, "looking for PostgreSQL server binaries")
	opts := pgbin.Options{BinDir: l.cfg.BinDir, Major: major}
	if major != 0 && last.Major == major && last.Stamp != "" && (opts.BinDir == "" || opts.BinDir == last.BinDir) &&
		binStamp(last.BinDir) == last.Stamp {
		return pgbin.Binaries{Dir: last.BinDir, Major: last.Major, Version: last.Version}, nil
	}
	b, _, err := pgbin.Ensure(ctx, opts, l.installer)
	var nf *pgbin.NotFoundError
	switch {
	case err == nil:
		l.log.Info("postgres binaries", "bindir", b.Dir, "version", b.Version)
		return b, nil
	case status.IsAction(err) || ctx.Err() != nil:
		return b, err
	case opts.BinDir != "":
		return b, &status.ActionError{Problem: "no usable PostgreSQL in UPLINK_PG_BINDIR", Err: err,
			Hint: "point UPLINK_PG_BINDIR at the bin directory of PostgreSQL " + majorText(major) + ", or unset it"}
	case major != 0:
		return b, &status.ActionError{
			Problem: fmt.Sprintf("the cluster in %s was made by PostgreSQL %d, and no PostgreSQL %d binaries are installed", l.lay.Data, major, major),
			Err:     err,
			Hint:    fmt.Sprintf("install PostgreSQL %d (Debian: apt-get install postgresql-%d), or upgrade the cluster with pg_upgrade; Uplink never re-initialises an existing cluster", major, major),
		}
	case errors.As(err, &nf):
		return b, &status.ActionError{Problem: "no usable PostgreSQL server binaries", Err: err,
			Hint: fmt.Sprintf("install PostgreSQL %d or newer and set UPLINK_PG_BINDIR, or set DATABASE_URL to use an existing server (pro mode)", pgbin.MinMajor)}
	}
	return b, err
}

func majorText(major int) string {
	if major == 0 {
		return fmt.Sprintf("%d or newer", pgbin.MinMajor)
	}
	return fmt.Sprint(major)
}

// serverUser picks the OS user PostgreSQL runs as. As root: the owner of an
// existing cluster (PostgreSQL insists on it), else postgres, else a
// system user created for it. Not root: Uplink's own user.
func (l *Lite) serverUser(ctx context.Context, cluster clusterState) (*runas.User, error) {
	if !runas.IsRoot() {
		return nil, nil
	}
	var u *runas.User
	var err error
	if cluster == clusterExists {
		fi, serr := os.Stat(l.lay.Data)
		if serr != nil {
			return nil, serr
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		if uid == 0 {
			return nil, &status.ActionError{Problem: l.lay.Data + " is owned by root, and PostgreSQL will not run as root",
				Hint: "give it to the postgres user: chown -R postgres:postgres " + l.lay.Data}
		}
		u, err = runas.LookupID(uid)
	} else {
		u, err = runas.Postgres(ctx, l.creator)
	}
	if err != nil {
		return nil, &status.ActionError{Problem: "no OS user to run PostgreSQL as", Err: err, Hint: "create a postgres system user (useradd --system postgres)"}
	}
	if err := u.CanReach(l.lay.Data); err != nil {
		return nil, &status.ActionError{Problem: "PostgreSQL cannot reach its data directory", Err: err,
			Hint: "let that directory be traversed (chmod o+x), or set UPLINK_DATA_DIR elsewhere (default /var/lib/uplink)"}
	}
	return u, nil
}

// password reads pg/password, creating it only for a cluster yet to be
// made: an existing cluster without its password file cannot be opened,
// and Uplink does not reset the password behind anyone's back.
func (l *Lite) password(cluster clusterState) (string, error) {
	pw, err := readPassword(l.lay.Password)
	switch {
	case err == nil:
		return pw, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	case cluster == clusterExists:
		return "", &status.ActionError{Problem: l.lay.Password + " is missing, and the cluster in " + l.lay.Data + " needs it",
			Hint: "restore pg/password from a backup of this data directory"}
	}
	return newPassword(l.lay.Password)
}

// superPassword reads pg/superuser-password, creating it when missing: on
// a new cluster, and on one made before the superuser had a password of
// its own, where it shared the application's. Such a cluster's superuser
// still logs in with the application's password (superDSN falls back to
// it), and ensureApp then gives it the new one. An application role
// that is the superuser itself (UPLINK_DB_USER=postgres) has one
// password.
func (l *Lite) superPassword(appPassword string) (string, error) {
	if l.cfg.User == superuser {
		return appPassword, nil
	}
	pw, err := readPassword(l.lay.SuperPassword)
	if errors.Is(err, fs.ErrNotExist) {
		return newPassword(l.lay.SuperPassword)
	}
	return pw, err
}

func (l *Lite) prepareRunDir(u *runas.User) error {
	if err := os.Mkdir(l.lay.Run, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return u.Chown(l.lay.Run)
}

// noteLeftovers cleans up what only Uplink writes and names what it
// will not delete.
func (l *Lite) noteLeftovers() {
	// initdb's password file, if a crash kept it from being removed.
	os.Remove(l.lay.initdbPwfile())
	stale, _ := filepath.Glob(filepath.Join(l.lay.PG, "data.initdb-*"))
	for _, dir := range stale {
		l.log.Warn("left over from an interrupted initdb; it holds no data and can be deleted", "path", dir)
	}
}

// initdb creates the cluster in a fresh directory beside pg/data and
// renames it into place once complete, so that an initdb killed halfway
// never leaves a pg/data that looks like a cluster but is not one.
func (l *Lite) initdb(ctx context.Context, rp runParams) error {
	l.tr.set(StepInitdb, status.Warn, "initdb: creating the cluster with PostgreSQL "+rp.bin.Version)
	target, staging := l.lay.Data, ""
	if _, err := os.Stat(l.lay.Data); errors.Is(err, fs.ErrNotExist) {
		dir, err := os.MkdirTemp(l.lay.PG, "data.initdb-")
		if err != nil {
			return err
		}
		target, staging = dir, dir
	}
	if err := os.Chmod(target, 0o700); err != nil {
		return err
	}
	if err := rp.user.Chown(target); err != nil {
		return err
	}
	if staging == "" {
		// In place: a kill now would leave a PG_VERSION in a cluster that
		// is not whole; the marker says so to the next start (inspect).
		if err := writeFileAtomic(l.lay.initdbMarker(), []byte("initdb into pg/data began; removed once it completes\n"), 0o600); err != nil {
			return err
		}
	}
	// initdb sets the superuser's password with ALTER ROLE ... PASSWORD,
	// which stores a SCRAM verifier as it is: so initdb gets the verifier
	// with superIterations, never the password, and the logins of every
	// start are cheap from the first (see roles.go).
	pwfile := l.lay.initdbPwfile()
	if err := os.WriteFile(pwfile, []byte(scramVerifier(rp.superPassword, superIterations)+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := rp.user.Chown(pwfile); err != nil {
		return err
	}
	cmd := rp.user.Command(ctx, rp.bin.Path("initdb"), "-D", target, "-U", superuser, "--pwfile", pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		l.log.Debug("initdb: " + line)
	}
	if err != nil {
		if staging != "" {
			os.Remove(staging) // initdb empties it on failure; a non-empty one stays
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return &status.ActionError{Problem: "initdb failed: " + err.Error() + ": " + lastLines(string(out), 3),
			Hint: "fix what initdb reports (disk space, permissions), then restart Uplink"}
	}
	if staging != "" {
		if err := os.Rename(staging, l.lay.Data); err != nil {
			return err
		}
	} else if err := os.Remove(l.lay.initdbMarker()); err != nil {
		return err
	}
	return syncDir(l.lay.PG)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

func (l *Lite) stopOrphan() error {
	res, err := stopOrphan(l.lay.Data, l.cfg.StopTimeout, l.cfg.QuitTimeout)
	switch {
	case res.identity == procOurs:
		l.tr.set(StepOrphan, status.Warn, fmt.Sprintf("stopped a postgres (pid %d) left running by a previous Uplink", res.pid))
		l.log.Warn("stopped a left-over postgres", "pid", res.pid, "signals", fmt.Sprint(res.signals))
	case res.identity == procForeign:
		l.log.Warn("postmaster.pid named a process that is not our postgres; removed the stale file", "pid", res.pid)
	}
	return err
}

// pickPort keeps the port in the state file while it is free, and picks
// and records a new one when another program has taken it.
func (l *Lite) pickPort(st *state, bin pgbin.Binaries) error {
	old := st.Port
	if old == 0 || !portFree(old) {
		p, err := freePort()
		if err != nil {
			return err
		}
		st.Port = p
		if old != 0 {
			l.log.Warn("port taken by another program; moving the server", "old_port", old, "port", p)
		}
	}
	next := *st
	next.Major, next.Version, next.BinDir, next.Stamp = bin.Major, bin.Version, bin.Dir, binStamp(bin.Dir)
	next.Database, next.User = l.cfg.Database, l.cfg.User
	if next == *st && old == st.Port && old != 0 {
		return nil
	}
	*st = next
	return writeState(l.lay.State, next)
}

// start runs the server and waits until ping succeeds. A server that
// fails to come up is stopped before start returns, and returned too, so
// the supervisor can count its failure.
func (l *Lite) start(ctx context.Context, step Step, ping func(context.Context) error) (*postmaster, error) {
	l.mu.Lock()
	rp, srvLog := l.run, l.serverLog
	l.mu.Unlock()
	l.tr.set(step, status.Warn, fmt.Sprintf("starting PostgreSQL %s on port %d", rp.bin.Version, rp.port))
	pm, err := startPostmaster(rp.bin, l.lay, rp.port, rp.user, l.deathSig, srvLog, l.tr.event)
	if err != nil {
		return nil, err
	}
	err = pm.waitReady(ctx, l.cfg.StartTimeout, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return ping(ctx)
	})
	if err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w: %s", err, strings.Join(srvLog.Tail(3), " | "))
		}
		pm.stop(context.WithoutCancel(ctx), l.cfg.StopTimeout, l.cfg.QuitTimeout)
		return pm, err
	}
	return pm, nil
}

// superPing is a readiness check for start: the superuser logs in over the
// socket, to database db, else (db missing or closed) to template1.
// withConn, if set, receives that first connection; otherwise it is
// closed.
func (l *Lite) superPing(db string, withConn func(*pgx.Conn)) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := l.superConnect(ctx, db)
		if db != maintenanceDB && cannotEnter(err) {
			conn, err = l.superConnect(ctx, maintenanceDB)
		}
		if err != nil {
			return err
		}
		if withConn != nil { // its first query proves the server answers
			withConn(conn)
			return nil
		}
		_, err = conn.Exec(ctx, "SELECT 1")
		conn.Close(ctx)
		return err
	}
}

// supervise restarts the server whenever it dies, until ctx ends or the
// failures exceed the limit. The port stays the same: the DSN handed out
// names it (the socket file is called after it). later, if set, runs
// postgresDBDelay after supervise begins, while the server is up: work
// kept off the boot's path (see serve).
func (l *Lite) supervise(ctx context.Context, pm *postmaster, done chan struct{}, later func(context.Context)) {
	defer close(done)
	var laterC <-chan time.Time
	if later != nil {
		t := time.NewTimer(l.postgresDBDelay)
		defer t.Stop()
		laterC = t.C
	}
	var failures []time.Time
	exited, cause := pm.exited, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-laterC:
			if pm == nil || !pm.alive() {
				// Down: the restart below comes first, then a new wait.
				laterC = time.After(l.postgresDBDelay)
				continue
			}
			laterC = nil
			later(ctx)
			continue
		case <-exited:
		}
		if pm != nil {
			// The backends of a killed postmaster still hold its shared
			// memory; a new one started beside them would fail.
			pm.killGroup()
			runas.WaitGone(pm.pid, 5*time.Second)
			pm.waitChildren(5 * time.Second)
			cause = fmt.Sprintf("postgres (pid %d) exited: %s", pm.pid, pm.state)
		}
		l.log.Error("postgres stopped unexpectedly", "err", cause)
		now := time.Now()
		failures = append(failures, now)
		for now.Sub(failures[0]) > l.cfg.RestartWindow {
			failures = failures[1:]
		}
		if len(failures) > l.cfg.MaxRestarts {
			err := fmt.Errorf("postgres failed %d times within %s; giving up. Last: %s", len(failures), l.cfg.RestartWindow, cause)
			l.tr.fail(err, "see "+l.lay.LogFile+"; fix the cause and restart Uplink", l.tail())
			l.failedOnce.Do(func() { l.failed <- err })
			return
		}
		delay := l.restartDelay(len(failures))
		l.tr.restarting(len(failures), now.Add(delay), cause, l.tail())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next, err := l.start(ctx, StepStart, l.superPing(maintenanceDB, nil))
		switch {
		case err == nil:
			pm, exited = next, next.exited
			l.tr.set(StepReady, status.Pass, "ready again after a restart")
		case ctx.Err() != nil:
			return // start has stopped what it started
		default:
			pm, exited, cause = nil, closedChan, err.Error()
		}
		l.setServer(pm)
	}
}

// superConnect logs in as the superuser to db: with its own password or,
// on a cluster from before it had one, with the application's, which it
// shared then (ensureApp gives it its own).
func (l *Lite) superConnect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := connect(ctx, l.superDSNIn(db))
	if status.IsAction(err) { // refused the password
		l.mu.Lock()
		rp := l.run
		l.mu.Unlock()
		if rp.superPassword != rp.password {
			if old, oerr := connect(ctx, socketDSN(l.lay.Run, rp.port, superuser, rp.password, db)); oerr == nil {
				return old, nil
			}
		}
	}
	return conn, err
}

// superDSN reaches the maintenance database as the superuser, over the
// socket.
func (l *Lite) superDSN() provision.DSN { return l.superDSNIn(maintenanceDB) }

func (l *Lite) superDSNIn(db string) provision.DSN {
	l.mu.Lock()
	rp := l.run
	l.mu.Unlock()
	return socketDSN(l.lay.Run, rp.port, superuser, rp.superPassword, db)
}

// postgresDBDelay is the quiet period before the postgres database is made
// again on a fresh cluster. CREATE DATABASE copies template1 and syncs
// it, 90-130 ms of work on a 2-core machine: started as soon as Provision
// returned, it competed for the cores with boot's migrations, on the way
// to ready. Five seconds is well after boot is ready on any machine
// Uplink targets (a cold boot's work after provisioning takes a fifth of
// a second here), and soon enough for an operator's psql.
const postgresDBDelay = 5 * time.Second

// restorePostgresDB runs on the supervisor's goroutine, so Stop waits for
// it, and Stop's cancel ends it. It never leaves half a database: CREATE
// DATABASE is one transaction, and a cancelled or interrupted one (Stop's
// fast shutdown terminates its backend) removes what it copied; a server
// killed meanwhile can leave copied files behind, but no database.
//
// A failure, or a process that stops first, costs only convenience: the
// next start tries again. Tools that find no postgres database meanwhile
// say so (psql), or fall back to template1 (pg_dumpall).
func (l *Lite) restorePostgresDB(ctx context.Context) {
	if err := createPostgresDB(ctx, l.superDSN()); err != nil && ctx.Err() == nil {
		l.log.Warn("could not create the postgres database (tools expect it; nothing else does)", "err", err)
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// tail is the end of the server log, for /status.
func (l *Lite) tail() []string {
	l.mu.Lock()
	srvLog, last := l.serverLog, l.lastTail
	l.mu.Unlock()
	if srvLog == nil {
		return last
	}
	return srvLog.Tail(15)
}

// Stop shuts the server down (see Config.StopTimeout) and releases the
// data directory. It interrupts a Provision under way. It is idempotent.
func (l *Lite) Stop(ctx context.Context) error {
	l.mu.Lock()
	if l.provCancel != nil {
		l.provCancel(errStopped)
	}
	provDone := l.provDone
	l.mu.Unlock()
	if provDone != nil {
		<-provDone // a failed Provision rolls back on its own
	}

	l.mu.Lock()
	superStop, superDone := l.superStop, l.superDone
	l.superStop, l.superDone = nil, nil
	wasRunning := l.running
	l.running = false
	l.mu.Unlock()
	if !wasRunning {
		return nil
	}
	l.tr.setServing(false)
	if superStop != nil {
		superStop()
		<-superDone
	}
	l.tr.set(StepStop, status.Warn, "stopping PostgreSQL")
	err := l.shutdown(ctx)
	l.tr.set(StepStopped, status.Warn, "PostgreSQL stopped")
	return err
}

// rollback undoes a failed Provision.
func (l *Lite) rollback() { l.shutdown(context.Background()) }

// shutdown stops the server if one runs, then closes the log and drops
// the lock: in that order, so no second Uplink starts beside a server
// still shutting down.
func (l *Lite) shutdown(ctx context.Context) error {
	l.mu.Lock()
	pm, srvLog, lock := l.pm, l.serverLog, l.lock
	l.pm, l.serverLog, l.lock = nil, nil, nil
	l.mu.Unlock()
	var err error
	if pm != nil {
		err = pm.stop(ctx, l.cfg.StopTimeout, l.cfg.QuitTimeout)
		if pm.logDone != nil {
			select {
			case <-pm.logDone:
			case <-time.After(2 * time.Second): // a straggler holds the pipe; its lines are not worth the wait
			}
		}
	}
	if srvLog != nil {
		srvLog.Close()
		last := srvLog.Tail(15) // for Status after a failed Provision
		l.mu.Lock()
		l.lastTail = last
		l.mu.Unlock()
	}
	lock.release()
	return err
}

// logWriter sends the package manager's output to the log a line at a
// time (pgbin splits it).
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("install: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
