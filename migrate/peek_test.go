package migrate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/migrate"
)

// UpPeeking looks at the history on the caller's connection first: with
// nothing pending it never opens a session of its own (here its own
// connection settings point at a port nobody listens on), and what Up
// would refuse it refuses on the first look.
func TestUpPeekingOpensNoSessionWhenUpToDate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	fsys := files("001_users.sql", "CREATE TABLE users (id int);")
	res, err := e.app(migrate.Config{}, fsys).UpPeeking(ctx, e.db)
	if err != nil || len(res.Applied) != 1 || !res.Locked {
		t.Fatalf("UpPeeking with a pending migration = %+v, %v; want it applied under the lock", res, err)
	}

	nowhere, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", pgtest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	unreachable := func(kv ...string) *migrate.Migrator {
		fs := files(kv...)
		m, err := migrate.New(nowhere, migrate.Config{Logger: testLogger(t)}, migrate.Line{Name: "app", Migrations: load(t, fs)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := unreachable("001_users.sql", "CREATE TABLE users (id int);")
	res, err = m.UpPeeking(ctx, e.db)
	if err != nil || len(res.Applied) != 0 || res.Locked {
		t.Fatalf("UpPeeking with nothing pending = %+v, %v; want nothing done, no session opened", res, err)
	}
	if c := m.Check(); c.Detail != "up to date" {
		t.Errorf("Check after an up-to-date peek = %+v", c)
	}

	_, err = unreachable("001_users.sql", "CREATE TABLE users (id bigint);").UpPeeking(ctx, e.db)
	var drift *migrate.DriftError
	if !errors.As(err, &drift) {
		t.Fatalf("UpPeeking over a changed file = %v; want a *DriftError from the first look", err)
	}

	_, err = unreachable("001_users.sql", "CREATE TABLE users (id int);", "002_more.sql", "SELECT 1;").UpPeeking(ctx, e.db)
	if err == nil {
		t.Fatal("UpPeeking with a pending migration and an unreachable session succeeded")
	}
}
