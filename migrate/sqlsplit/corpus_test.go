package sqlsplit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir returns <module root>/../shared/corpus/<sub>, the acceptance
// corpus kept beside the repository. A missing corpus fails the test: it is
// the point of the test, not an optional extra.
func corpusDir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpus", sub)
	if _, err := os.Stat(corpus); err != nil {
		t.Fatalf("acceptance corpus missing: %v", err)
	}
	return corpus
}

// goldenStatements reads an Atlas golden file: statements separated by lines
// "-- end --".
func goldenStatements(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stmts []string
		cur   strings.Builder
	)
	for line := range strings.Lines(string(b)) {
		if strings.TrimRight(line, "\r\n") == "-- end --" {
			stmts = append(stmts, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

func TestAtlasCorpus(t *testing.T) {
	dir := corpusDir(t, "atlas-lex")
	inputs, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatalf("no *.sql cases in %s", dir)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want := goldenStatements(t, in+".golden")
			got, err := Split(string(src))
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			for i := range max(len(got), len(want)) {
				switch {
				case i >= len(got):
					t.Errorf("statement %d missing; want:\n%s", i+1, want[i])
				case i >= len(want):
					t.Errorf("extra statement %d:\n%s", i+1, got[i].SQL)
				case got[i].SQL != want[i]:
					t.Errorf("statement %d:\ngot:\n%s\nwant:\n%s", i+1, got[i].SQL, want[i])
				}
			}
			checkInvariants(t, string(src), got)
		})
	}
}
