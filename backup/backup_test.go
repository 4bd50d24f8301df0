package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPruneDeletesOnlyOldBackups(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir,
		"uplink-20260101T000000.000Z.dump", "uplink-20260102T000000.000Z.dump", "uplink-20260103T000000.000Z.dump",
		// Not backups of ours: never deleted, whatever their age.
		"notes.txt", "uplink-manual.dump", ".uplink-20250101T000000.000Z.dump.partial", "uplink-20250101T000000.000Z.dump.bak")
	deleted, err := Prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "uplink-20260101T000000.000Z.dump")}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v; want %v", deleted, want)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 6 {
		t.Errorf("%d files left; want 6: the 2 newest backups and the 4 others", len(left))
	}
	if d, err := Prune(dir, -1); err != nil || len(d) != 0 {
		t.Errorf("Prune with Keep < 0 deleted %v (%v)", d, err)
	}
}

func TestScheduleCountsFromTheNewestBackup(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	s := &schedule{dir: dir, interval: 24 * time.Hour}
	if got := s.Next(now); !got.Equal(now.Add(time.Minute)) {
		t.Errorf("no backup yet: first at %s; want a minute after start", got)
	}
	touch(t, dir, "uplink-20260110T060000.000Z.dump") // six hours ago
	s = &schedule{dir: dir, interval: 24 * time.Hour}
	if got, want := s.Next(now), now.Add(18*time.Hour); !got.Equal(want) {
		t.Errorf("after a restart: first at %s; want %s, a day after the newest backup", got, want)
	}
	if got, want := s.Next(now.Add(18*time.Hour)), now.Add(42*time.Hour); !got.Equal(want) {
		t.Errorf("later runs at %s; want %s", got, want)
	}
}
