package migrate_test

import (
	"os"
	"testing"

	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
)

// River's commit_required set: 003 uses in an IMMUTABLE function the enum
// value 002 adds, which only works if 002 committed before 003 ran.
func TestCorpusRiverCommitRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	migs := load(t, os.DirFS(testcorpus.Dir(t, "river-commit-required")))
	if len(migs) != 3 {
		t.Fatalf("loaded %d migrations, want 3", len(migs))
	}
	m := e.migrator(migrate.Config{}, migrate.Line{Name: "river", Migrations: migs})
	res, err := m.Up(ctx)
	if err != nil || len(res.Applied) != 3 {
		t.Fatalf("Up = %+v, %v", res, err)
	}
	if !scalar[bool](e, "SELECT foobar_in_bitmask(B'00000100', 'baz')") {
		t.Error("foobar_in_bitmask(baz) = false")
	}
	res, err = m.DownTo(ctx, "river", 0)
	if err != nil || len(res.Applied) != 3 {
		t.Fatalf("DownTo 0 = %+v, %v", res, err)
	}
	if scalar[bool](e, "SELECT to_regtype('foobar') IS NOT NULL") {
		t.Error("type foobar still there after DownTo 0")
	}
}

// goose's own end-to-end set for PostgreSQL: Up, then Down all the way.
func TestCorpusGoosePostgres(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	migs := load(t, os.DirFS(testcorpus.Dir(t, "goose-postgres")))
	if len(migs) != 6 || !migs[4].NoTransaction() || migs[3].Statements() != 0 {
		t.Fatalf("loaded %d migrations (5 no-tx %v, 4 statements %d)", len(migs), migs[4].NoTransaction(), migs[3].Statements())
	}
	m := e.migrator(migrate.Config{}, migrate.Line{Name: "goose", Migrations: migs})
	res, err := m.Up(ctx)
	if err != nil || len(res.Applied) != 6 {
		t.Fatalf("Up = %+v, %v", res, err)
	}
	if n := scalar[int](e, "SELECT count(*)::int FROM owners"); n != 4 {
		t.Errorf("owners = %d, want 4", n)
	}
	if !scalar[bool](e, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'owners_owner_name_idx'::regclass") {
		t.Error("concurrent index missing or invalid")
	}
	if !scalar[bool](e, "SELECT to_regprocedure('insert_repository(text, text, owner_type)') IS NOT NULL") {
		t.Error("function insert_repository missing")
	}
	rep, err := m.Status(ctx)
	if err != nil || rep.Lines[0].Current != 6 {
		t.Fatalf("Status = %+v, %v", rep, err)
	}

	res, err = m.DownTo(ctx, "goose", 0)
	if err != nil || len(res.Applied) != 6 || res.Applied[0].Version != 6 || res.Applied[5].Version != 1 {
		t.Fatalf("DownTo 0 = %+v, %v", res, err)
	}
	for _, rel := range []string{"owners", "repos", "owners_owner_name_idx"} {
		if e.tableExists(rel) {
			t.Errorf("%s still there after DownTo 0", rel)
		}
	}
	if n := scalar[int](e, "SELECT count(*)::int FROM uplink.schema_history WHERE line = 'goose'"); n != 0 {
		t.Errorf("%d history rows left after DownTo 0", n)
	}
	// And up again, from nothing.
	if res, err := m.Up(ctx); err != nil || len(res.Applied) != 6 {
		t.Fatalf("Up again = %+v, %v", res, err)
	}
}
