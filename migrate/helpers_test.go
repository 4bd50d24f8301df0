package migrate_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/pglock"
)

// The test binary doubles as the program of the multi-process tests:
// started with childEnv set, it runs Up once and exits.
const (
	childEnv    = "UPLINK_MIGRATETEST_CHILD"
	childURL    = "UPLINK_MIGRATETEST_URL"
	childDir    = "UPLINK_MIGRATETEST_DIR"
	childApp    = "UPLINK_MIGRATETEST_APP"
	childSignal = "waiting for the migration lock"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	pgtest.Main(m)
}

// childMain is one replica: Up on the given directory, logging to stderr.
func childMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	migs, err := migrate.Load(os.DirFS(os.Getenv(childDir)), ".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cc, err := pgx.ParseConfig(os.Getenv(childURL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m, err := migrate.New(cc, migrate.Config{
		ApplicationName: os.Getenv(childApp),
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
		// Report at once, then often: the kill test waits for the first
		// report as its signal that this process is waiting.
		Lock: lockOpts(),
	}, migrate.Line{Name: "app", Migrations: migs})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res, err := m.Up(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	fmt.Printf("applied %d locked %v\n", len(res.Applied), res.Locked)
	return 0
}

func lockOpts() pglock.Options { return pglock.Options{ReportEvery: time.Second} }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends a migrator's log lines to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one test database.
type env struct {
	t   *testing.T
	url string
	db  *pgx.Conn // for the test's own queries
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	return &env{t: t, url: url, db: connect(t, url)}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) migrator(cfg migrate.Config, lines ...migrate.Line) *migrate.Migrator {
	e.t.Helper()
	cc, err := pgx.ParseConfig(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(e.t)
	}
	m, err := migrate.New(cc, cfg, lines...)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// app is a migrator of one line "app" loaded from files.
func (e *env) app(cfg migrate.Config, files fstest.MapFS) *migrate.Migrator {
	e.t.Helper()
	return e.migrator(cfg, migrate.Line{Name: "app", Migrations: load(e.t, files)})
}

func load(t *testing.T, fsys fs.FS) []*migrate.Migration {
	t.Helper()
	migs, err := migrate.Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

// scalar runs a one-value query on the test's connection.
func scalar[T any](e *env, sql string, args ...any) T {
	e.t.Helper()
	var v T
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) record(line, key string) migrate.Record {
	e.t.Helper()
	r, ok, err := migrate.NewHistory(migrate.DefaultSchema, migrate.DefaultTable).Get(context.Background(), e.db, line, key)
	if err != nil || !ok {
		e.t.Fatalf("history row %s/%s: found %v, %v", line, key, ok, err)
	}
	return r
}

func (e *env) hasRecord(line, key string) bool {
	e.t.Helper()
	_, ok, err := migrate.NewHistory(migrate.DefaultSchema, migrate.DefaultTable).Get(context.Background(), e.db, line, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func (e *env) tableExists(name string) bool {
	e.t.Helper()
	return scalar[bool](e, "SELECT to_regclass($1) IS NOT NULL", name)
}

// advisoryLocks counts granted advisory locks in the test database.
func (e *env) advisoryLocks() int {
	e.t.Helper()
	return scalar[int](e, `SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
}

func (e *env) dbName() string {
	e.t.Helper()
	return scalar[string](e, "SELECT current_database()")
}

// lockedWriter is a process's output, safe for the process and a test
// reading it.
type lockedWriter struct {
	testutil.Buffer
	// on, if set, is called with each write.
	on func(string)
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	if w.on != nil {
		w.on(string(p))
	}
	return w.Buffer.Write(p)
}
