package pgbin

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	b, err := Find(context.Background(), Options{})
	if errors.Is(err, ErrNotFound) {
		t.Skip("no PostgreSQL here")
	}
	if err != nil {
		t.Fatal(err)
	}
	// Whatever the hit (a glob, pg_config, a symlink in PATH), the
	// directory is the real one, with the other programs beside postgres.
	for _, prog := range []string{"postgres", "initdb"} {
		if !b.Has(prog) {
			t.Errorf("%s has no %s", b.Dir, prog)
		}
	}
	if b.Major < MinMajor || b.Version == "" {
		t.Errorf("version %q, major %d", b.Version, b.Major)
	}
	same, err := Find(context.Background(), Options{Major: b.Major, BinDir: b.Dir})
	if err != nil || same.Dir != b.Dir {
		t.Errorf("Find with its own BinDir and major: %+v, %v", same, err)
	}
	if _, err := Find(context.Background(), Options{Major: b.Major + 1, BinDir: b.Dir}); err == nil {
		t.Error("BinDir of another major accepted")
	}
}

func TestDataMajor(t *testing.T) {
	dir := t.TempDir()
	if _, err := DataMajor(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("16\n"), 0o600)
	if m, err := DataMajor(dir); m != 16 || err != nil {
		t.Errorf("got %d, %v", m, err)
	}
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("sixteen\n"), 0o600)
	if _, err := DataMajor(dir); err == nil {
		t.Error("garbage accepted")
	}
}
