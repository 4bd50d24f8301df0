// Package pgrun runs PostgreSQL programs for the benchmarks: as the
// postgres OS user when the benchmark runs as root (PostgreSQL refuses
// root), each in its own process group so a stop reaches its children.
//
// It is deliberately independent of Uplink's internal packages: the
// floors it builds must not share code with what they measure.
package pgrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is the OS account PostgreSQL runs as; nil means the current user.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
}

// ServerUser returns the postgres OS user when running as root, else nil.
func ServerUser() (*User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres OS user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}, nil
}

// Command prepares a program to run as u, in its own process group, from
// / (root's home is closed to postgres), killed if the benchmark dies.
func (u *User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = os.Environ()
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
		cmd.Env = append(cmd.Env, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
	}
	return cmd
}

// Chown gives path to u; nil does nothing.
func (u *User) Chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.UID), int(u.GID))
}

// BinDir returns $UPLINK_PG_BINDIR or the highest /usr/lib/postgresql/N/bin.
func BinDir() (string, error) {
	if d := os.Getenv("UPLINK_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) < majorOf(dirs[j]) })
	if len(dirs) == 0 {
		return "", errors.New("no /usr/lib/postgresql/*/bin; set UPLINK_PG_BINDIR")
	}
	return dirs[len(dirs)-1], nil
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Version is `postgres --version` of binDir.
func Version(binDir string) string {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// TempDir makes a 0755 directory the postgres user can traverse.
func TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop sends sig to cmd's process group and waits for cmd, killing the
// group after wait.
func Stop(cmd *exec.Cmd, sig syscall.Signal, wait time.Duration) error {
	if cmd.Process == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %s after %s; killed", cmd.Path, wait, sig)
	}
}

// WaitSQL connects to dsn and runs SELECT 1 until it works, every poll,
// for at most limit. A failed authentication stops it at once.
func WaitSQL(dsn string, poll, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if strings.Contains(err.Error(), "password authentication failed") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(poll)
	}
}
