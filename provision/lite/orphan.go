package lite

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uplinkhq/uplink/internal/runas"
)

// A postmaster.pid names the server that last ran on the cluster. When
// Uplink was killed its server may still run (if the parent-death signal
// could not fire, or its shutdown is still under way), or its pid may
// since have gone to another program. Only a process that is provably a
// postgres on this very data directory is stopped.

// pidFilePID reads the postmaster's pid from the first line of
// postmaster.pid; 0 when there is no file.
func pidFilePID(dataDir string) (int, error) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, sc.Err() // empty: a server that died while writing it
	}
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s/postmaster.pid: bad pid line %q", dataDir, sc.Text())
	}
	return pid, nil
}

// procIdentity is what /proc says a process is.
type procIdentity int

const (
	procGone    procIdentity = iota // no such process, or a zombie
	procOurs                        // a postgres whose cwd is our data directory
	procForeign                     // alive and provably something else
	procUnknown                     // alive, but /proc would not say what
)

// identify tells whether pid is a postgres running on dataDir: its
// executable is named postgres (" (deleted)" after a package upgrade
// replaced the file) and its working directory, which the postmaster sets
// to its data directory, is dataDir.
func identify(pid int, dataDir string) procIdentity {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || !runas.Alive(pid) {
			return procGone // zombies have no exe link
		}
		return procUnknown
	}
	if filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "postgres" {
		return procForeign
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return procUnknown
	}
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	if strings.TrimSuffix(cwd, " (deleted)") != want {
		return procForeign
	}
	return procOurs
}

// orphanResult says what stopOrphan found and did, for the log.
type orphanResult struct {
	pid      int
	identity procIdentity
	signals  []syscall.Signal
}

// stopOrphan stops a server left running on dataDir by a previous Uplink:
// SIGINT (fast shutdown), then SIGQUIT, then SIGKILL to its process group.
// A postmaster.pid naming a live process that is not ours is removed: it
// is a stale lock file (not data), and PostgreSQL would refuse to start
// if the reused pid belongs to its own OS user.
func stopOrphan(dataDir string, stopTimeout, quitTimeout time.Duration) (orphanResult, error) {
	pid, err := pidFilePID(dataDir)
	if err != nil || pid == 0 {
		return orphanResult{}, err
	}
	res := orphanResult{pid: pid, identity: identify(pid, dataDir)}
	switch res.identity {
	case procGone, procUnknown:
		// PostgreSQL checks a stale file itself; unknown is left to it too.
		return res, nil
	case procForeign:
		return res, os.Remove(filepath.Join(dataDir, "postmaster.pid"))
	}
	for _, st := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, stopTimeout}, {syscall.SIGQUIT, quitTimeout}, {syscall.SIGKILL, 5 * time.Second}} {
		syscall.Kill(pid, st.sig)
		if st.sig == syscall.SIGKILL {
			syscall.Kill(-pid, st.sig) // Uplink started it in its own process group
		}
		res.signals = append(res.signals, st.sig)
		if runas.WaitGone(pid, st.wait) {
			return res, nil
		}
	}
	return res, fmt.Errorf("left-over postgres (pid %d) on %s survived SIGKILL", pid, dataDir)
}
