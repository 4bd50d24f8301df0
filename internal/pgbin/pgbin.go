// Package pgbin finds PostgreSQL server binaries on this machine.
//
// Both the lite provisioner and the test helper use it, so that tests find
// PostgreSQL exactly the way the product does.
package pgbin

import (
	"context"
	"errors"
	"fmt"
	"iter"
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

// ErrNotFound is returned, as a *NotFoundError, by Find when no usable
// binaries exist.
var ErrNotFound = errors.New("no PostgreSQL server binaries found")

// NotFoundError says what Find passed over, if anything: installations too
// old, or of another major than a data directory needs.
type NotFoundError struct {
	Rejected []string
}

func (e *NotFoundError) Error() string {
	if len(e.Rejected) == 0 {
		return ErrNotFound.Error()
	}
	return ErrNotFound.Error() + ": passed over " + strings.Join(e.Rejected, "; ")
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Nothing reports whether no PostgreSQL at all was seen, which is when
// installing one can help.
func (e *NotFoundError) Nothing() bool { return len(e.Rejected) == 0 }

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
	for dir := range candidates(ctx) {
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
	return Binaries{}, &NotFoundError{Rejected: rejected}
}

// Ensure is Find, and when no PostgreSQL at all is on the machine, an
// install through in (nil: never install) followed by a second Find. An
// explicit BinDir is never second-guessed by an install.
func Ensure(ctx context.Context, opts Options, in *Installer) (b Binaries, installed bool, err error) {
	b, err = Find(ctx, opts)
	var nf *NotFoundError
	if err == nil || in == nil || opts.BinDir != "" || !errors.As(err, &nf) || !nf.Nothing() {
		return b, false, err
	}
	if err := in.Install(ctx); err != nil {
		return Binaries{}, false, err
	}
	b, err = Find(ctx, opts)
	if err != nil {
		return Binaries{}, true, fmt.Errorf("after installing PostgreSQL: %w", err)
	}
	return b, true, nil
}

// DataMajor returns the major version named by a data directory's
// PG_VERSION file; os.ErrNotExist when the directory holds no cluster.
func DataMajor(dataDir string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("%s/PG_VERSION holds %q, not a major version", dataDir, strings.TrimSpace(string(raw)))
	}
	return major, nil
}

// candidates yields bin directories in search order, highest major first
// within each glob, each once. It is lazy: pg_config runs only when no
// glob matched a usable installation.
func candidates(ctx context.Context) iter.Seq[string] {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		emit := func(dir string) bool {
			// A symlink in PATH (/usr/local/bin/postgres) stands for the
			// directory that has initdb, psql and pg_dump beside it.
			if real, err := filepath.EvalSymlinks(filepath.Join(dir, "postgres")); err == nil {
				dir = filepath.Dir(real)
			}
			if seen[dir] {
				return true
			}
			seen[dir] = true
			return yield(dir)
		}
		for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/libexec/postgresql*", "/usr/pgsql-*/bin"} {
			matches, _ := filepath.Glob(pattern)
			sort.Slice(matches, func(i, j int) bool { return majorInPath(matches[i]) > majorInPath(matches[j]) })
			for _, dir := range matches {
				if !emit(dir) {
					return
				}
			}
		}
		if pgConfig, err := exec.LookPath("pg_config"); err == nil {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
			cancel()
			if err == nil && !emit(strings.TrimSpace(string(out))) {
				return
			}
		}
		if p, err := exec.LookPath("postgres"); err == nil {
			emit(filepath.Dir(p))
		}
	}
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
