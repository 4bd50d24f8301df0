package migrate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/status"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestLoadFormats(t *testing.T) {
	const (
		plain  = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
		up     = "CREATE TABLE c (id int);"
		down   = "DROP TABLE c;"
		goose  = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY a_idx ON a (id);\n-- +goose Down\nDROP INDEX a_idx;\n"
		dbmate = "-- migrate:up\nALTER TABLE a ADD x int;\n-- migrate:down\nALTER TABLE a DROP x;\n"
	)
	fsys := files(
		"migrations/001_plain.sql", plain,
		"migrations/002_pair.up.sql", up,
		"migrations/002_pair.down.sql", down,
		"migrations/20240131120000_goose.sql", goose,
		"migrations/3_dbmate.sql", dbmate,
		"migrations/README.md", "not a migration",
		"migrations/sub/004_ignored.sql", "nope",
	)
	migs, err := migrate.Load(fsys, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		version          int64
		name, file, down string
		format           sqlfile.Format
		checksum         string
		stmts            int
		noTx, hasDown    bool
	}
	wants := []want{
		{1, "plain", "migrations/001_plain.sql", "", sqlfile.FormatPlain, sum(plain), 2, false, false},
		{2, "pair", "migrations/002_pair.up.sql", "migrations/002_pair.down.sql", sqlfile.FormatPlain, sum(up), 1, false, true},
		{3, "dbmate", "migrations/3_dbmate.sql", "", sqlfile.FormatDbmate, sum(dbmate), 1, false, true},
		{20240131120000, "goose", "migrations/20240131120000_goose.sql", "", sqlfile.FormatGoose, sum(goose), 1, true, true},
	}
	if len(migs) != len(wants) {
		t.Fatalf("Load returned %d migrations, want %d", len(migs), len(wants))
	}
	for i, w := range wants {
		m := migs[i]
		got := want{m.Version, m.Name, m.File, m.DownFile, m.Format(), m.Checksum(), m.Statements(), m.NoTransaction(), m.HasDown()}
		if got != w {
			t.Errorf("migration %d:\n got  %+v\n want %+v", i, got, w)
		}
	}
	if err := migrate.Validate(migrate.Line{Name: "app", Migrations: migs}); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadRejectsBeforeRunning(t *testing.T) {
	fsys := files(
		"001_a.sql", "SELECT 1;",
		"01_b.sql", "SELECT 2;", // duplicate version 1
		"002_c.up.sql", "SELECT 3;",
		"002_c.sql", "SELECT 4;", // the same version as a pair and a plain file
		"003_d.down.sql", "SELECT 5;", // down without up
		"abc.sql", "SELECT 6;", // no version
		"000_zero.sql", "SELECT 7;", // version 0
		"99999999999999999999_big.sql", "SELECT 8;", // overflows int64
		"005_f.up.sql", "SELECT 10;",
		"005_g.down.sql", "SELECT 11;", // pair with different names
		"006_h.SQL", "SELECT 12;", // would be passed over
	)
	_, err := migrate.Load(fsys, ".")
	if err == nil {
		t.Fatal("Load accepted broken migrations")
	}
	if !status.IsAction(err) {
		t.Errorf("Load error is not an ActionError: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"01_b.sql: duplicate version 1: 001_a.sql",
		"002_c.up.sql: duplicate version 2: 002_c.sql",
		"003_d.down.sql: down migration without its up file",
		"abc.sql: malformed migration file name",
		"000_zero.sql: version 000 is not a positive",
		"99999999999999999999_big.sql: version",
		"005_g.down.sql: version 5 is also named \"f\"",
		"006_h.SQL: migration file extension is not lower-case .sql",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Load error lacks %q:\n%s", want, msg)
		}
	}
	var fe *sqlfile.Error
	if !errors.As(err, &fe) {
		t.Errorf("Load error holds no *sqlfile.Error")
	}
}

// What is in the files is checked by Validate, and by a run before it runs
// anything, not by Load, which only lists them.
func TestFileContentsCheckedBeforeAnythingRuns(t *testing.T) {
	fsys := files(
		"001_a.sql", "SELECT 1;",
		"002_e.sql", "-- +goose Up\nSELECT 9", // goose: no ';' at the end
		"003_pair.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n",
		"003_pair.down.sql", "SELECT 3;", // a down section and a down file
		"004_gone.sql", "SELECT 4;",
	)
	migs, err := migrate.Load(fsys, ".")
	if err != nil {
		t.Fatalf("Load checked contents: %v", err)
	}
	delete(fsys, "004_gone.sql") // listed, then unreadable
	err = migrate.Validate(migrate.Line{Name: "app", Migrations: migs})
	if err == nil || !status.IsAction(err) {
		t.Fatalf("Validate = %v, want an ActionError", err)
	}
	for _, want := range []string{
		"002_e.sql:2: statement does not end with ';'",
		"003_pair.sql: down migration given twice: in this file and in 003_pair.down.sql",
		"004_gone.sql: open 004_gone.sql: file does not exist",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%s", want, err)
		}
	}
	if migs[0].Checksum() != sum("SELECT 1;") || migs[3].Checksum() != "" || migs[1].Statements() != 0 {
		t.Errorf("Checksum, Statements = %q, %q, %d", migs[0].Checksum(), migs[3].Checksum(), migs[1].Statements())
	}
}

func TestValidate(t *testing.T) {
	noop := func(context.Context, migrate.DB) error { return nil }
	migs := load(t, files(
		"001_cic.sql", "CREATE TABLE t (x int);\n/* build it */ CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x);\n",
		"002_txn.sql", "BEGIN;\nCREATE TABLE u (x int);\nCOMMIT;\n",
		"003_vacuum.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nVACUUM t;\nBEGIN; SELECT 1; COMMIT;\n",
		"004_reindex.sql", "REINDEX (VERBOSE) TABLE CONCURRENTLY t;",
		"005_twophase.sql", "CREATE TABLE v (x int);\nPREPARE TRANSACTION 'v';\n",
		"006_dealloc.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nDEALLOCATE ALL;\nDISCARD ALL;\n",
	))
	err := migrate.Validate(
		migrate.Line{Name: "app", Migrations: append(migs,
			migrate.GoMigration(1, "dup", noop, nil),
			migrate.GoMigration(5, "no_up", nil, nil),
			migrate.GoMigration(6, "", noop, nil),
		)},
		migrate.Line{Name: "app"},
		migrate.Line{Name: ""},
	)
	if err == nil || !status.IsAction(err) {
		t.Fatalf("Validate = %v, want an ActionError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"001_cic.sql:2:16: statement 2 (CREATE UNIQUE INDEX CONCURRENTLY) cannot run inside a transaction; mark the file",
		"002_txn.sql:1:1: statement 1 (BEGIN) controls the transaction",
		"002_txn.sql:3:1: statement 3 (COMMIT) controls the transaction",
		"004_reindex.sql:1:1: statement 1 (REINDEX VERBOSE TABLE CONCURRENTLY) cannot run inside a transaction",
		"005_twophase.sql:2:1: statement 2 (PREPARE) controls the transaction",
		"006_dealloc.sql:3:1: statement 1 (DEALLOCATE ALL) would drop what the migration session holds",
		"006_dealloc.sql:4:1: statement 2 (DISCARD ALL) would drop what the migration session holds",
		"duplicate version 1: 001_cic.sql and go:0001_dup",
		"go:0005_no_up: no up migration",
		"go:0006_: migration without a name",
		`migration line "app" given twice`,
		"a migration line has no name",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "003_vacuum") {
		t.Errorf("a NO TRANSACTION file may VACUUM and control its transactions:\n%s", msg)
	}
}

func TestTasksLineNameIsReserved(t *testing.T) {
	err := migrate.Validate(migrate.Line{Name: migrate.TasksLine})
	if err == nil || !strings.Contains(err.Error(), "startup tasks") {
		t.Fatalf("Validate(line %q) = %v; want it refused", migrate.TasksLine, err)
	}
}

// Files of an os.DirFS are read by a shortcut of their own (open relative
// to the directory): the same contents and errors as any fs.FS.
func TestLoadFromOSDirectory(t *testing.T) {
	root := t.TempDir()
	const plain, up, down = "CREATE TABLE a (id int);\n", "CREATE TABLE b (id int);", "DROP TABLE b;"
	big := strings.Repeat("-- a long comment to make the file larger than a page\n", 200) + "SELECT 1;\n"
	dir := filepath.Join(root, "db")
	testutil.WriteFiles(t, dir, map[string]string{
		"0001_a.sql": plain, "0002_b.up.sql": up, "0002_b.down.sql": down, "0003_big.sql": big, "0004_gone.sql": "SELECT 4;",
	})
	migs, err := migrate.Load(os.DirFS(root), "db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "0004_gone.sql")); err != nil {
		t.Fatal(err)
	}
	err = migrate.Validate(migrate.Line{Name: "app", Migrations: migs})
	if err == nil || !strings.Contains(err.Error(), "db/0004_gone.sql: open db/0004_gone.sql: no such file or directory") {
		t.Errorf("Validate = %v, want the missing file named", err)
	}
	for i, want := range []string{plain, up, big} {
		if got := migs[i].Checksum(); got != sum(want) {
			t.Errorf("%s: checksum %s, want %s", migs[i].File, got, sum(want))
		}
	}
	if !migs[1].HasDown() || migs[2].Statements() != 1 {
		t.Errorf("pair has down %v, big file has %d statements", migs[1].HasDown(), migs[2].Statements())
	}
}
