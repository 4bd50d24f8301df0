package lite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/status"
)

// postmaster is one run of `postgres -D`, Uplink's child.
type postmaster struct {
	pid    int
	exited chan struct{} // closed once the postmaster has been reaped
	state  *os.ProcessState
	// logDone is closed when every process holding the server's stderr
	// has exited and its last line is in the log.
	logDone chan struct{}

	mu         sync.Mutex
	ready      chan struct{} // closed on "ready to accept connections"
	readySeen  bool
	recovering bool
}

// serverArgs are the settings Uplink enforces. On the command line they
// win over postgresql.conf and ALTER SYSTEM, so nobody can move the
// server onto a public address or turn fsync off by accident.
func serverArgs(lay Layout, port int) []string {
	return []string{
		"-D", lay.Data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + lay.Run,
		"-c", "fsync=on",
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
		"-c", "log_line_prefix=" + logLinePrefix,
		"-c", "lc_messages=C",
		"-c", "cluster_name=uplink",
	}
}

// startPostmaster starts the server. on is told about recovery as it
// happens, on the log consumer's goroutine.
//
// The process is started, waited for and released on one goroutine locked
// to its OS thread: the kernel's parent-death signal follows the thread
// that forked, not the process, and Go may retire idle threads.
func startPostmaster(bin pgbin.Binaries, lay Layout, port int, user *runas.User, deathSig syscall.Signal, log *serverLog, on func(event)) (*postmaster, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	pm := &postmaster{exited: make(chan struct{}), logDone: make(chan struct{}), ready: make(chan struct{})}
	// Not tied to a context: the server outlives Provision's, and stop
	// ends it with the signals PostgreSQL understands.
	cmd := user.Command(context.Background(), bin.Path("postgres"), serverArgs(lay, port)...)
	// SIGINT is a fast shutdown: if Uplink dies, its server shuts down
	// cleanly instead of lingering without a supervisor.
	cmd.SysProcAttr.Pdeathsig = deathSig
	cmd.Stdout, cmd.Stderr = w, w

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		w.Close() // the children hold their own copies
		started <- err
		if err != nil {
			r.Close()
			return
		}
		cmd.Wait()
		pm.state = cmd.ProcessState
		close(pm.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin.Path("postgres"), err)
	}
	pm.pid = cmd.Process.Pid
	go func() {
		defer close(pm.logDone)
		defer r.Close()
		log.consume(r, func(ev event) {
			pm.note(ev)
			if on != nil {
				on(ev)
			}
		})
	}()
	return pm, nil
}

func (pm *postmaster) note(ev event) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	switch ev {
	case evRecovering:
		pm.recovering = true
	case evReady:
		pm.recovering = false
		if !pm.readySeen {
			pm.readySeen = true
			close(pm.ready)
		}
	}
}

func (pm *postmaster) isRecovering() bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.recovering
}

func (pm *postmaster) alive() bool {
	select {
	case <-pm.exited:
		return false
	default:
		return true
	}
}

// errExited is returned by waitReady when the server exits while starting.
var errExited = errors.New("postgres exited while starting")

// waitReady waits until ping succeeds. It tries as soon as the server says
// it is ready, and once a second in case that line was missed. A start
// that shows no sign of life within startTimeout fails; crash recovery is
// waited for however long it takes.
func (pm *postmaster) waitReady(ctx context.Context, startTimeout time.Duration, ping func(context.Context) error) error {
	started := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ready := pm.ready
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-pm.exited:
			return fmt.Errorf("%w (%s)", errExited, pm.state)
		case <-ready:
			ready = nil // from now on, the ticker paces retries
		case <-tick.C:
		}
		switch lastErr = ping(ctx); {
		case lastErr == nil:
			return nil
		case status.IsAction(lastErr): // a wrong password: waiting will not help
			return lastErr
		}
		if !pm.isRecovering() && time.Since(started) > startTimeout {
			return fmt.Errorf("postgres did not accept connections within %s: %w", startTimeout, lastErr)
		}
	}
}

// stop shuts the server down: SIGINT (fast shutdown: clients are
// disconnected, a checkpoint is written), then SIGQUIT (immediate
// shutdown, crash recovery at next start), then SIGKILL to the whole
// process group. When ctx ends the remaining stages follow without waiting.
func (pm *postmaster) stop(ctx context.Context, stopTimeout, quitTimeout time.Duration) error {
	stages := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, stopTimeout}, {syscall.SIGQUIT, quitTimeout}}
	for _, st := range stages {
		if !pm.alive() {
			return nil
		}
		syscall.Kill(pm.pid, st.sig)
		wait := st.wait
		if ctx.Err() != nil {
			wait = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-pm.exited:
			t.Stop()
			return nil
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	pm.killGroup()
	select {
	case <-pm.exited:
		runas.WaitGone(pm.pid, 5*time.Second)
		pm.waitChildren(5 * time.Second)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("postgres (pid %d) survived SIGKILL", pm.pid)
	}
	return fmt.Errorf("postgres did not shut down after SIGINT and SIGQUIT; killed its process group")
}

// killGroup kills whatever is left of the server's process group: after
// the postmaster dies, its backends linger until they notice, and they
// keep the shared memory that the next start needs.
// waitChildren waits, at most d, for the dead postmaster's children to
// exit. They run in sessions of their own (PostgreSQL's children call
// setsid), out of reach of killGroup, and leave on noticing their parent's
// death; until then they hold the shared memory a new server needs. Each
// holds the server's stderr, so logDone closing means the last has gone.
func (pm *postmaster) waitChildren(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-pm.logDone:
	case <-t.C:
	}
}

func (pm *postmaster) killGroup() {
	if pm.pid > 1 { // kill(-0) would hit Uplink's own group
		syscall.Kill(-pm.pid, syscall.SIGKILL)
	}
}
