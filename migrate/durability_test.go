package migrate_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/migrate"
)

// A run commits all but its last migration without waiting for the WAL
// flush (see Migrator.runSteps); what Up reports applied must still
// survive a crash the moment it returns. The server is killed right after
// Up: WAL still in PostgreSQL's buffers dies with it (the walwriter writes
// a lazy commit's tail only on its next round, wal_writer_delay later), so
// a run whose last commit did not wait would lose that migration here.
// When the run stops at a failure, the failure's record must carry the
// migrations before it to the disk in the same way.
func TestAppliedMigrationsSurviveACrashRightAfterUp(t *testing.T) {
	t.Parallel()
	t.Run("all applied", func(t *testing.T) { t.Parallel(); crashRightAfterUp(t, false) })
	t.Run("stopped by a failure", func(t *testing.T) { t.Parallel(); crashRightAfterUp(t, true) })
}

func crashRightAfterUp(t *testing.T, fail bool) {
	s := pgtest.Start(t) // its own server: the test kills it
	// The throwaway servers turn synchronous_commit off for speed; this
	// session turns it back on, as on a real server.
	url := s.URL("postgres") + "&options=-c%20synchronous_commit%3Don"
	const n = 30
	fsys := fstest.MapFS{}
	for i := 1; i <= n; i++ {
		fsys[fmt.Sprintf("%03d_t%d.sql", i, i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("CREATE TABLE t%d (id int);", i))}
	}
	if fail {
		fsys[fmt.Sprintf("%03d_broken.sql", n+1)] = &fstest.MapFile{Data: []byte("CREATE TABLE t1 (id int);")}
	}
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.New(cc, migrate.Config{Logger: testLogger(t)}, migrate.Line{Name: "app", Migrations: load(t, fsys)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	res, err := m.Up(ctx)
	s.Kill()
	if fail {
		var pe *migrate.PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("Up = %v, want a *PartialError", err)
		}
		res = pe.Result
	} else if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != n {
		t.Fatalf("applied %d migrations, want %d", len(res.Applied), n)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM uplink.schema_history WHERE line = 'app' AND outcome = 'applied'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if rows != n || tables != n {
		t.Fatalf("after the crash: %d history rows and %d tables, want %d of each", rows, tables, n)
	}
}
