package runas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
)

const (
	// PostgresName is the account that PostgreSQL packages create, and the
	// one Uplink prefers.
	PostgresName = "postgres"
	// SystemName is the account Uplink creates when there is no postgres
	// user (binaries from a tarball, UPLINK_PG_BINDIR). It is not called
	// postgres so that a package installed later does not find an account
	// it did not make under its own name.
	SystemName = "uplink-pg"
)

// Postgres returns the OS user PostgreSQL programs run as: nil when Uplink
// is not root (they run as Uplink itself), else the postgres user, else a
// system user Uplink creates (see Creator).
func Postgres(ctx context.Context, c *Creator) (*User, error) {
	if !IsRoot() {
		return nil, nil
	}
	if u, err := Lookup(PostgresName); err == nil {
		return u, nil
	}
	return c.Ensure(ctx, SystemName)
}

// Creator makes system users. The zero value acts on the real machine;
// the fields are seams for tests.
type Creator struct {
	LookPath func(string) (string, error)                              // default exec.LookPath
	Run      func(ctx context.Context, argv ...string) ([]byte, error) // default: run, combined output
}

// Ensure returns the user name, creating it as a locked system account
// with no home and no login shell when it does not exist.
func (c *Creator) Ensure(ctx context.Context, name string) (*User, error) {
	if u, err := Lookup(name); err == nil {
		return u, nil
	} else if !errors.As(err, new(user.UnknownUserError)) {
		return nil, err
	}
	cmds, err := c.Commands(name)
	if err != nil {
		return nil, err
	}
	run := c.Run
	if run == nil {
		run = func(ctx context.Context, argv ...string) ([]byte, error) {
			return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		}
	}
	for _, argv := range cmds {
		if out, err := run(ctx, argv...); err != nil {
			return nil, fmt.Errorf("create system user %s: %s: %w: %s", name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
		}
	}
	return Lookup(name)
}

// Commands returns the commands that create a system user called name:
// shadow-utils' useradd where it exists (Debian, Fedora), else BusyBox's
// addgroup and adduser (Alpine).
func (c *Creator) Commands(name string) ([][]string, error) {
	lookPath := c.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if _, err := lookPath("useradd"); err == nil {
		return [][]string{{"useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name}}, nil
	}
	if _, err := lookPath("adduser"); err == nil {
		return [][]string{
			{"addgroup", "-S", name},
			{"adduser", "-S", "-D", "-H", "-h", "/nonexistent", "-s", "/sbin/nologin", "-G", name, name},
		}, nil
	}
	return nil, fmt.Errorf("no postgres OS user, and neither useradd nor adduser to create %s with", name)
}

// CanReach reports an error naming the first directory on the way to
// path that u cannot traverse: PostgreSQL, running as u, must reach its
// data directory, while Uplink runs as root and reaches anything. A nil u
// always can.
func (u *User) CanReach(path string) error {
	if u == nil {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !u.mayEnter(fi) {
			return fmt.Errorf("user %s cannot enter %s (mode %v)", u.Name, dir, fi.Mode().Perm())
		}
		if dir == "/" {
			return nil
		}
	}
}

func (u *User) mayEnter(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	switch {
	case !ok:
		return true // not a Unix file system: let the real attempt tell
	case st.Uid == u.UID:
		return perm&0o100 != 0
	case st.Gid == u.GID:
		return perm&0o010 != 0
	}
	// Supplementary groups are not set for PostgreSQL (NoSetGroups), so
	// only "other" counts.
	return perm&0o001 != 0
}
