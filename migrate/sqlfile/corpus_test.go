package sqlfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

func parseFile(t *testing.T, path string) (*File, error) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(filepath.Base(path), src)
}

func sqlOf(stmts []sqlsplit.Statement) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.SQL)
	}
	return out
}

// TestGooseValidUp compares the Up statements of goose's own parser tests
// with goose's goldens, trimmed of surrounding whitespace.
func TestGooseValidUp(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(testcorpus.Dir(t, "goose-sqlparser/valid-up"), "test*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no valid-up cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := parseFile(t, filepath.Join(dir, "input.sql"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Format != FormatGoose {
				t.Errorf("Format = %q; want goose", f.Format)
			}
			goldens, _ := filepath.Glob(filepath.Join(dir, "*.up.golden.sql"))
			var want []string
			for _, g := range goldens {
				b, err := os.ReadFile(g)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, strings.TrimSpace(string(b)))
			}
			got := sqlOf(f.Up.Statements)
			if filepath.Base(dir) == "test08" {
				gooseCommentStatements(t, got, want)
				return
			}
			compare(t, got, want)
		})
	}
}

// gooseCommentStatements checks test08, which ends with three MySQL
// versioned comments, "/*!80031 ALTER TABLE ... */;". goose returns each as
// a statement; to PostgreSQL each is a comment and an empty statement, a
// no-op, and sqlsplit drops it. The other statements must match.
func gooseCommentStatements(t *testing.T, got, want []string) {
	var real, comments []string
	for _, w := range want {
		stmts, err := sqlsplit.Split(w)
		if err != nil {
			t.Fatal(err)
		}
		if len(stmts) == 0 {
			comments = append(comments, w)
		} else {
			real = append(real, w)
		}
	}
	compare(t, got, real)
	if len(comments) > 0 && !t.Failed() {
		t.Skipf("finding: goose returns %d comment-only statements (MySQL /*!...*/;) that are no-ops in PostgreSQL; sqlsplit drops them: %q", len(comments), comments)
	}
}

func compare(t *testing.T, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("statement %d missing; want:\n%s", i+1, want[i])
		case i >= len(want):
			t.Errorf("extra statement %d:\n%s", i+1, got[i])
		case got[i] != want[i]:
			t.Errorf("statement %d:\ngot:\n%s\nwant:\n%s", i+1, got[i], want[i])
		}
	}
}

func TestGooseValidTxn(t *testing.T) {
	dir := testcorpus.Dir(t, "goose-sqlparser/valid-txn")
	tests := []struct {
		file     string
		up, down int
		noTx     bool
	}{
		{"00001_create_users_table.sql", 2, 1, false},
		{"00002_rename_root.sql", 1, 1, false},
		{"00003_no_transaction.sql", 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := parseFile(t, filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Down == nil {
				t.Fatal("no Down section")
			}
			if len(f.Up.Statements) != tt.up || len(f.Down.Statements) != tt.down {
				t.Errorf("%d up and %d down statements; want %d and %d", len(f.Up.Statements), len(f.Down.Statements), tt.up, tt.down)
			}
			if f.Up.NoTransaction != tt.noTx || f.Down.NoTransaction != tt.noTx {
				t.Errorf("NoTransaction up %v, down %v; want %v", f.Up.NoTransaction, f.Down.NoTransaction, tt.noTx)
			}
		})
	}
}

func TestGooseInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testcorpus.Dir(t, "goose-sqlparser/invalid/up"), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid cases: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := parseFile(t, path)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %+v, %v; want an *Error", f, err)
			}
			// Each case has "SELECT * FROM bar" without ';' on line 2 or 3.
			name := filepath.Base(path)
			if pe.File != name || pe.Line < 2 || !strings.Contains(pe.Msg, "does not end with ';'") || pe.Hint == "" {
				t.Errorf("error %q does not name the file, the line and the missing ';' with a hint", err)
			}
			if !strings.HasPrefix(err.Error(), name+":") {
				t.Errorf("error %q does not start with %q", err, name+":")
			}
			t.Log(err)
		})
	}
}

// TestGoosePostgres parses goose's end-to-end PostgreSQL migrations.
func TestGoosePostgres(t *testing.T) {
	dir := testcorpus.Dir(t, "goose-postgres")
	tests := []struct {
		file     string
		up, down int
		noTx     bool
	}{
		{"00001_table.sql", 1, 1, false},
		{"00002_insert.sql", 3, 1, false},
		{"00003_alter.sql", 1, 1, false},
		{"00004_empty.sql", 0, -1, false},
		{"00005_no_tx.sql", 1, 1, true},
		{"00006_complex.sql", 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := parseFile(t, filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			down := -1
			if f.Down != nil {
				down = len(f.Down.Statements)
			}
			if f.Format != FormatGoose || len(f.Up.Statements) != tt.up || down != tt.down || f.Up.NoTransaction != tt.noTx {
				t.Errorf("%s, %d up, %d down, no transaction %v; want goose, %d, %d, %v",
					f.Format, len(f.Up.Statements), down, f.Up.NoTransaction, tt.up, tt.down, tt.noTx)
			}
		})
	}
}

// TestRiverPlain parses River's migrations, plain files with one direction
// each.
func TestRiverPlain(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testcorpus.Dir(t, "river-commit-required"), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no river files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := parseFile(t, path)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := 1
			if filepath.Base(path) == "002_second.down.sql" {
				want = 0 // comments only
			}
			if f.Format != FormatPlain || f.Down != nil || len(f.Up.Statements) != want {
				t.Errorf("%s, down %v, %d statements; want plain, no down, %d", f.Format, f.Down, len(f.Up.Statements), want)
			}
		})
	}
}
