package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/uplinkhq/uplink/provision/lite"
)

// Defaults for Config.
const (
	DefaultInterval = 24 * time.Hour
	DefaultKeep     = 7
	DefaultTimeout  = time.Hour
)

// Queue is the River queue backups run in, one at a time, apart from the
// app's queues.
const Queue = "uplink_backup"

// Config tunes backups. The zero value backs up daily and keeps 7.
type Config struct {
	// Interval is the time between two backups, counted from the newest
	// one on disk, so that restarts do not reset it. Default 24h; negative
	// turns backups off.
	Interval time.Duration
	// Keep is how many backups are kept; older ones are deleted after each
	// successful backup. Default 7; negative keeps them all.
	Keep int
	// Timeout bounds one pg_dump. Default 1h.
	Timeout time.Duration
}

// Enabled reports whether backups run at all.
func (c Config) Enabled() bool { return c.Interval >= 0 }

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Dir is where the backups of a data directory go: <data>/pg/backups.
func Dir(dataDir string) string { return filepath.Join(lite.LayoutOf(dataDir).PG, "backups") }

// backupName matches the files this package writes, and only those:
// uplink-20260102T150405.123Z.dump, which sort by time.
var backupName = regexp.MustCompile(`^uplink-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.dump$`)

const timeLayout = "20060102T150405.000Z"

// List returns the backups in dir, oldest first. Files of any other name
// are not backups and are not listed.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && backupName.MatchString(e.Name()) {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(names)
	return names, nil
}

// Run dumps the lite database of dataDir into Dir(dataDir) and returns
// the new file's path. The dump is written under a hidden partial name and
// renamed once complete and synced, so a listed backup is always whole.
func Run(ctx context.Context, dataDir string, now time.Time) (string, error) {
	ci, err := lite.ReadConnInfo(dataDir)
	if err != nil {
		return "", err
	}
	dir := Dir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	final := filepath.Join(dir, "uplink-"+now.UTC().Format(timeLayout)+".dump")
	partial := filepath.Join(dir, "."+filepath.Base(final)+".partial")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ci.Tool("pg_dump"), "--format=custom", "--file="+partial)
	// Only what pg_dump needs: a PGSERVICE or PGHOST of the operator's
	// shell must not send the dump elsewhere.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}, ci.Env()...)
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		os.Remove(partial) // our own, incomplete
		return "", fmt.Errorf("pg_dump: %w: %s", err, lastBytes(stderr.Bytes(), 2000))
	}
	if err := syncFile(partial); err != nil {
		os.Remove(partial)
		return "", err
	}
	if err := os.Rename(partial, final); err != nil {
		os.Remove(partial)
		return "", err
	}
	return final, syncFile(dir)
}

// Prune deletes the oldest backups in dir beyond keep (negative: none)
// and returns what it deleted.
func Prune(dir string, keep int) ([]string, error) {
	if keep < 0 {
		return nil, nil
	}
	names, err := List(dir)
	if err != nil || len(names) <= keep {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(n); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, n)
	}
	return deleted, errors.Join(errs...)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Args is the backup job. It has no fields: the worker knows the data
// directory.
type Args struct{}

// Kind implements river.JobArgs.
func (Args) Kind() string { return "uplink_backup" }

// InsertOpts keeps backups in their queue, one unfinished at a time: a
// backup that waits or retries is not joined by the next.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Queue,
		MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled,
		}},
	}
}
