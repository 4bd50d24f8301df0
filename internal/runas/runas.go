// Package runas runs PostgreSQL programs as an unprivileged OS user when
// Uplink itself runs as root: PostgreSQL refuses to run as root, and it
// should not have root's reach anyway.
package runas

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// User is the OS account PostgreSQL programs run as. The zero value, and a
// nil *User, mean "as the current user" (Uplink is not root).
type User struct {
	Name string
	UID  uint32
	GID  uint32
	Home string
}

// Lookup finds an OS user by name.
func Lookup(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &User{Name: name, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}, nil
}

// LookupID finds an OS user by uid.
func LookupID(uid uint32) (*User, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	return Lookup(u.Username)
}

// IsRoot reports whether this process has root's user id.
func IsRoot() bool { return os.Geteuid() == 0 }

// Apply makes a command started with attr run as u, in its own process
// group (so signals to Uplink's terminal do not reach it, and Uplink can
// signal the whole group). A nil u keeps the current user.
func (u *User) Apply(attr *syscall.SysProcAttr) {
	attr.Setpgid = true
	if u == nil {
		return
	}
	// No supplementary groups: with NoSetGroups the child would keep
	// root's (gid 0 among them) and read what group root may read.
	attr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
}

// Chown gives path to u; a nil u does nothing.
func (u *User) Chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.UID), int(u.GID))
}

// Env returns the environment a program running as u should see: HOME and
// USER changed, the rest inherited, so that PostgreSQL programs do not try
// to read root's home directory.
func (u *User) Env(base []string) []string {
	if u == nil {
		return base
	}
	out := make([]string, 0, len(base)+2)
	for _, kv := range base {
		if hasKey(kv, "HOME") || hasKey(kv, "USER") || hasKey(kv, "LOGNAME") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
}

func hasKey(kv, key string) bool {
	return len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '='
}

// Command prepares name to run as u (nil: the current user) in its own
// process group, from /, with an environment fit for u. The kernel kills
// it if Uplink's thread that started it dies (Pdeathsig, set after the
// credential change so that it survives it); callers may choose another
// signal.
func (u *User) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	u.Apply(cmd.SysProcAttr)
	cmd.Env = u.Env(os.Environ())
	// A cwd the user may not enter (root's home) makes some PostgreSQL
	// programs fail with "could not identify current directory".
	cmd.Dir = "/"
	return cmd
}
