// Package pgbin finds PostgreSQL server binaries on this machine.
//
// Both the lite provisioner and the test helper use it, so that tests find
// PostgreSQL exactly the way the product does.
package pgbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MinMajor is the oldest PostgreSQL major version Uplink supports.
const MinMajor = 13

// ErrNotFound is returned by Find when no usable binaries exist.
var ErrNotFound = errors.New("no PostgreSQL server binaries found")

// Binaries is one PostgreSQL installation's bin directory.
type Binaries struct {
	Dir     string // directory holding postgres, initdb, pg_ctl...
	Major   int    // major version, e.g. 15
	Version string // full version as postgres --version prints it, e.g. "15.18"
}

// Path returns the full path of the named program in Dir.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// Has reports whether the named program exists in Dir.
func (b Binaries) Has(name string) bool {
	fi, err := os.Stat(b.Path(name))
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Options steer Find.
type Options struct {
	// BinDir, when set (UPLINK_PG_BINDIR), is the only place looked at.
	BinDir string
	// Major, when set (a data directory's PG_VERSION), is the only major
	// version accepted: a cluster must be run by the major that made it.
	Major int
}

// Find looks for PostgreSQL server binaries, first hit wins: opts.BinDir;
// /usr/lib/postgresql/*/bin (Debian, highest major); /usr/libexec/postgresql*
// and /usr/pgsql-*/bin (Fedora, RHEL); pg_config --bindir; PATH. Each
// candidate is checked by running postgres --version.
func Find(ctx context.Context, opts Options) (Binaries, error) {
	if opts.BinDir != "" {
		b, err := probe(ctx, opts.BinDir)
		if err != nil {
			return Binaries{}, fmt.Errorf("UPLINK_PG_BINDIR=%s: %w", opts.BinDir, err)
		}
		if opts.Major != 0 && b.Major != opts.Major {
			return Binaries{}, fmt.Errorf("UPLINK_PG_BINDIR=%s holds PostgreSQL %d, but the data directory was made by %d", opts.BinDir, b.Major, opts.Major)
		}
		return b, nil
	}
	var rejected []string
	for _, dir := range candidates(ctx) {
		b, err := probe(ctx, dir)
		if err != nil {
			continue
		}
		switch {
		case b.Major < MinMajor:
			rejected = append(rejected, fmt.Sprintf("%s (PostgreSQL %s is older than %d)", dir, b.Version, MinMajor))
		case opts.Major != 0 && b.Major != opts.Major:
			rejected = append(rejected, fmt.Sprintf("%s (PostgreSQL %d, need %d)", dir, b.Major, opts.Major))
		default:
			return b, nil
		}
	}
	if len(rejected) > 0 {
		return Binaries{}, fmt.Errorf("%w: passed over %s", ErrNotFound, strings.Join(rejected, "; "))
	}
	return Binaries{}, ErrNotFound
}

// candidates lists bin directories in search order, highest major first
// within each glob.
func candidates(ctx context.Context) []string {
	var dirs []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/libexec/postgresql*", "/usr/pgsql-*/bin"} {
		matches, _ := filepath.Glob(pattern)
		sort.Slice(matches, func(i, j int) bool { return majorInPath(matches[i]) > majorInPath(matches[j]) })
		dirs = append(dirs, matches...)
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		if err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	return dirs
}

var digits = regexp.MustCompile(`\d+`)

func majorInPath(p string) int {
	n, _ := strconv.Atoi(digits.FindString(p))
	return n
}

// versionLine matches "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
// and development versions such as "17devel" or "16beta2".
var versionLine = regexp.MustCompile(`\(PostgreSQL\)\s+((\d+)(?:\.\d+)*\w*)`)

func probe(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{Dir: dir}
	if !b.Has("postgres") {
		return b, fmt.Errorf("no postgres program in %s", dir)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.Path("postgres"), "--version").Output()
	if err != nil {
		return b, fmt.Errorf("%s --version: %w", b.Path("postgres"), err)
	}
	m := versionLine.FindStringSubmatch(string(out))
	if m == nil {
		return b, fmt.Errorf("%s --version printed %q, not a PostgreSQL version", b.Path("postgres"), strings.TrimSpace(string(out)))
	}
	b.Version = m[1]
	b.Major, _ = strconv.Atoi(m[2])
	return b, nil
}
