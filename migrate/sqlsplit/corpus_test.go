package sqlsplit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
)

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
	dir := testcorpus.Dir(t, "atlas-lex")
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
