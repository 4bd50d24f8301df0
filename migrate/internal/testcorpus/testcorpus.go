// Package testcorpus finds the external acceptance corpus that tests of
// the migrator, its splitter and its file parser read: the directory
// ../shared/corpus beside the module root (see its README).
package testcorpus

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns <module root>/../shared/corpus/<sub>. A missing corpus fails
// the test rather than skipping it: the corpus is part of the acceptance
// suite, and a test that cannot find it has not passed.
func Dir(t testing.TB, sub string) string {
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

// Files returns the contents of every file of the whole corpus whose name
// ends in one of suffixes, in lexical order of their paths: the seeds of the
// fuzzers and the input of the benchmarks.
func Files(t testing.TB, suffixes ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(Dir(t, ""), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !hasSuffix(d.Name(), suffixes) {
			return err
		}
		b, err := os.ReadFile(path)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hasSuffix(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
