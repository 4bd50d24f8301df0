package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/status"
)

func TestNoTransactionResumesAfterLastGoodStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	head := "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE log (step int);\nINSERT INTO log VALUES (1);\nCREATE INDEX CONCURRENTLY log_step ON log (step);\n"
	broken := head + "INSERT INTO log VALUES (1/0);\nINSERT INTO log VALUES (4);\n"
	_, err := e.app(migrate.Config{}, files("001_build.sql", broken)).Up(ctx)
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.Statement != 4 || me.SQLState != "22012" || me.FileLine != 6 || !status.IsAction(err) {
		t.Fatalf("Up = %v", err)
	}
	r := e.record("app", "1")
	if r.Outcome != migrate.OutcomeFailed || r.StatementsDone != 3 || len(r.StatementHashes) != 3 || r.FailedStatement != 4 {
		t.Fatalf("row after failure = %+v", r)
	}
	rep, err := e.app(migrate.Config{}, files("001_build.sql", broken)).Status(ctx)
	if err != nil || rep.Lines[0].Entries[0].Resume != 3 {
		t.Fatalf("Status resume = %+v, %v", rep, err)
	}

	// Fix the failing statement: the three before it committed and are
	// unchanged, so the retry starts at the fourth (CREATE TABLE again
	// would fail, and the INSERT would run twice).
	fixed := head + "INSERT INTO log VALUES (3);\nINSERT INTO log VALUES (4);\n"
	res, err := e.app(migrate.Config{}, files("001_build.sql", fixed)).Up(ctx)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Resumed != 3 || res.Applied[0].Attempt != 2 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if got := scalar[string](e, "SELECT string_agg(step::text, ',' ORDER BY step) FROM log"); got != "1,3,4" {
		t.Errorf("log = %s, want 1,3,4", got)
	}
	if r := e.record("app", "1"); r.Outcome != migrate.OutcomeApplied || r.StatementsDone != 5 || r.FailedStatement != 0 {
		t.Errorf("row after retry = %+v", r)
	}
}

func TestNoTransactionChangedPrefixRunsAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	broken := "-- migrate:up transaction:false\nCREATE TABLE IF NOT EXISTS n (x int);\nINSERT INTO n VALUES (1);\nSELECT 1/0;\n"
	if _, err := e.app(migrate.Config{}, files("001_n.sql", broken)).Up(ctx); err == nil {
		t.Fatal("Up of 1/0 succeeded")
	}
	// Statement 2 changed: only statement 1 is skipped.
	fixed := "-- migrate:up transaction:false\nCREATE TABLE IF NOT EXISTS n (x int);\nINSERT INTO n VALUES (2);\nSELECT 1;\n"
	res, err := e.app(migrate.Config{}, files("001_n.sql", fixed)).Up(ctx)
	if err != nil || res.Applied[0].Resumed != 1 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if got := scalar[string](e, "SELECT string_agg(x::text, ',' ORDER BY x) FROM n"); got != "1,2" {
		t.Errorf("n = %s, want 1,2", got)
	}
}

func TestInvalidIndexIsReportedNotSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	e.exec("CREATE TABLE dupes (x int); INSERT INTO dupes VALUES (1), (1)")
	// Statements around the index: the one after it must not run while
	// the index is invalid, or the retry would run it twice.
	mig := files("001_unique.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE before_idx (x int);\n"+
		"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dupes_x ON dupes (x);\nCREATE TABLE after_idx (x int);\n")

	_, err := e.app(migrate.Config{}, mig).Up(ctx)
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.SQLState != "23505" || len(me.InvalidIndexes) != 1 || me.InvalidIndexes[0] != "public.dupes_x" {
		t.Fatalf("first Up = %v (%+v)", err, me)
	}
	if !strings.Contains(err.Error(), "left index public.dupes_x invalid") ||
		!strings.Contains(status.HintOf(err), "DROP INDEX CONCURRENTLY public.dupes_x;") {
		t.Errorf("error or hint does not name the invalid index: %v (hint %q)", err, status.HintOf(err))
	}

	// The data is fixed but the invalid index is still there: IF NOT
	// EXISTS would now succeed without building anything.
	e.exec("DELETE FROM dupes WHERE ctid = (SELECT max(ctid) FROM dupes)")
	_, err = e.app(migrate.Config{}, mig).Up(ctx)
	if !errors.As(err, &me) || len(me.InvalidIndexes) != 1 || !strings.Contains(me.Message, "index public.dupes_x is invalid") || !status.IsAction(err) {
		t.Fatalf("Up over the invalid index = %v", err)
	}
	if r := e.record("app", "1"); r.Outcome != migrate.OutcomeFailed || r.StatementsDone != 1 || me.Statement != 2 {
		t.Errorf("row = %+v, error at statement %d; want failed at 2, the CREATE INDEX to run again", r, me.Statement)
	}
	if e.tableExists("after_idx") {
		t.Error("the statement after the invalid index ran")
	}
	rep, err := e.app(migrate.Config{}, mig).Status(ctx)
	if err != nil || len(rep.InvalidIndexes) != 1 || rep.InvalidIndexes[0] != "public.dupes_x" {
		t.Errorf("Status invalid indexes = %v, %v", rep.InvalidIndexes, err)
	}

	e.exec("DROP INDEX CONCURRENTLY dupes_x")
	if _, err := e.app(migrate.Config{}, mig).Up(ctx); err != nil {
		t.Fatalf("Up after the drop: %v", err)
	}
	if !scalar[bool](e, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dupes_x'::regclass") {
		t.Error("index not valid after the successful run")
	}
}

// A no-transaction Go migration that leaves a transaction open is
// refused, rolled back, and not recorded as applied.
func TestNoTxGoMigrationLeavingATransactionOpenFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	line := migrate.Line{Name: "app", Migrations: []*migrate.Migration{
		migrate.GoMigration(1, "open", func(ctx context.Context, db migrate.DB) error {
			_, err := db.Exec(ctx, "BEGIN; CREATE TABLE half (x int)")
			return err
		}, nil, migrate.WithoutTransaction()),
	}}
	_, err := e.migrator(migrate.Config{}, line).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "left a transaction open") {
		t.Fatalf("Up = %v; want the open transaction refused", err)
	}
	if e.tableExists("half") || e.record("app", "1").Outcome == migrate.OutcomeApplied {
		t.Error("the open transaction's work was kept, or recorded as applied")
	}
}
