// Command migrun applies one directory of migrations with one tool, once,
// and prints a JSON line: how long the run took from before loading the
// files to after closing the connection, and how many times the client
// wrote to the server (one write per round trip: pgx sends a whole
// request in one write).
//
// Each run is its own process, as a service's boot is, so no tool
// inherits another's warm caches, and the 20-process case runs the very
// same code.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gm "github.com/golang-migrate/migrate/v4"
	gmpgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	tern "github.com/jackc/tern/v2/migrate"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/uplinkhq/uplink/migrate"
)

// Result is migrun's output.
type Result struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Writes  int64         `json:"writes"`
	// Load is how long uplink's migrate.Load took (list, check names; the
	// files are read in Up).
	Load time.Duration `json:"load_ns,omitempty"`
	// Started and Ended are wall-clock unix nanoseconds, and Locked and
	// LockWait uplink's own report, so that many processes at once can be
	// laid out on one timeline.
	Started  int64         `json:"started"`
	Ended    int64         `json:"ended"`
	Locked   bool          `json:"locked,omitempty"`
	LockWait time.Duration `json:"lock_wait_ns,omitempty"`
	Applied  int           `json:"applied,omitempty"`
}

// res is filled in as the run goes.
var res Result

func main() {
	tool := flag.String("tool", "", "uplink, goose, golang-migrate, tern, floor or floor-1rt")
	dir := flag.String("dir", "", "migrations directory, in the tool's format")
	dsn := flag.String("dsn", "", "database URL")
	gooseRetry := flag.Uint64("goose-retry", 5, "goose session locker's retry period in seconds (its default 5, its minimum 1)")
	floorLock := flag.Bool("floor-lock", false, "floor: take pg_advisory_lock (blocking) first, for runs with many processes")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	began := time.Now()
	res.Started = began.UnixNano()
	var writes atomic.Int64
	cc, err := pgx.ParseConfig(*dsn)
	if err != nil {
		fail(err)
	}
	cc.DialFunc = countingDialer(&writes)
	ctx := context.Background()
	switch *tool {
	case "uplink":
		err = runUplink(ctx, cc, *dir)
	case "goose":
		err = runGoose(ctx, cc, *dir, *gooseRetry)
	case "golang-migrate":
		err = runGolangMigrate(cc, *dir)
	case "tern":
		err = runTern(ctx, cc, *dir)
	case "floor":
		err = runFloor(ctx, cc, *dir, *floorLock, false)
	case "floor-1rt":
		err = runFloor(ctx, cc, *dir, *floorLock, true)
	default:
		err = fmt.Errorf("unknown tool %q", *tool)
	}
	if err != nil {
		fail(err)
	}
	res.Elapsed, res.Ended, res.Writes = time.Since(began), time.Now().UnixNano(), writes.Load()
	json.NewEncoder(os.Stdout).Encode(res)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "migrun:", err)
	os.Exit(1)
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

func countingDialer(n *atomic.Int64) pgconn.DialFunc {
	d := &net.Dialer{KeepAlive: 5 * time.Minute}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, n}, nil
	}
}

// runUplink is how a service boots: Load, New, Up, with the defaults.
func runUplink(ctx context.Context, cc *pgx.ConnConfig, dir string) error {
	began := time.Now()
	migs, err := migrate.Load(os.DirFS(dir), ".")
	if err != nil {
		return err
	}
	res.Load = time.Since(began)
	m, err := migrate.New(cc, migrate.Config{}, migrate.Line{Name: "app", Migrations: migs})
	if err != nil {
		return err
	}
	r, err := m.Up(ctx)
	if r != nil {
		res.Locked, res.LockWait, res.Applied = r.Locked, r.LockWait, len(r.Applied)
	}
	return err
}

// runGoose uses the Provider API with its Postgres session locker, as a
// service with replicas would.
func runGoose(ctx context.Context, cc *pgx.ConnConfig, dir string, retry uint64) error {
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	// The same total patience as goose's default (5s × 60), whatever the period.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(retry, max(1, 300/retry)))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(dir), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// runGolangMigrate uses its pgx/v5 driver; its Up locks with
// pg_advisory_lock.
func runGolangMigrate(cc *pgx.ConnConfig, dir string) error {
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	drv, err := gmpgx.WithInstance(db, &gmpgx.Config{})
	if err != nil {
		return err
	}
	src, err := iofs.New(os.DirFS(dir), ".")
	if err != nil {
		return err
	}
	m, err := gm.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, gm.ErrNoChange) {
		return err
	}
	return nil
}

// runTern uses tern's Migrator; it locks with pg_advisory_lock.
func runTern(ctx context.Context, cc *pgx.ConnConfig, dir string) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	m, err := tern.NewMigrator(ctx, conn, "public.schema_version")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(os.DirFS(dir)); err != nil {
		return err
	}
	return m.Migrate(ctx)
}

// runFloor is the least a hand-written migrator does: read the applied
// versions, then for each pending file one transaction holding the file's
// SQL and its history row. It checks nothing else (no checksums, no
// settings, no lock unless asked). oneTrip sends each migration as one
// simple-protocol request (BEGIN; sql; INSERT; COMMIT): the round-trip
// minimum, shown for reference.
func runFloor(ctx context.Context, cc *pgx.ConnConfig, dir string, takeLock, oneTrip bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type file struct {
		version int64
		name    string
	}
	var files []file // ReadDir sorts by name, and names are zero-padded
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		files = append(files, file{n, e.Name()})
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if takeLock {
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(4242)"); err != nil {
			return err
		}
	}
	applied := map[int64]bool{}
	rows, _ := conn.Query(ctx, "SELECT version FROM floor_history")
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // first run
		if _, err := conn.Exec(ctx, "CREATE TABLE floor_history (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, f := range files {
		if applied[f.version] {
			continue
		}
		body, err := os.ReadFile(dir + "/" + f.name)
		if err != nil {
			return err
		}
		if oneTrip {
			q := fmt.Sprintf("BEGIN; %s; INSERT INTO floor_history (version) VALUES (%d); COMMIT", body, f.version)
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			continue
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO floor_history (version) VALUES ($1)", f.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}
