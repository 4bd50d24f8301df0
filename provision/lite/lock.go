package lite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/uplinkhq/uplink/status"
)

// ErrLocked is returned, inside a *status.ActionError, when another Uplink
// process holds the data directory.
var ErrLocked = errors.New("data directory in use by another Uplink")

// dirLock is an flock on <root>/uplink.lock. The kernel drops it when the
// process dies however it dies, so a crash never leaves a stale lock. The
// file is opened close-on-exec: PostgreSQL must not inherit it, or an
// orphaned server would keep the next Uplink out.
type dirLock struct{ f *os.File }

func lockDir(path string) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if raw, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(raw))); perr == nil {
				holder = fmt.Sprintf("pid %d", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &status.ActionError{
				Problem: fmt.Sprintf("%s holds %s", holder, path),
				Err:     ErrLocked,
				Hint:    "stop the other Uplink using this data directory, or set UPLINK_DATA_DIR to another one",
			}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is for the message above only; the flock is the lock.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
