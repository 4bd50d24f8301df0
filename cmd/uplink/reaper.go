package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// As PID 1 — the entrypoint of a container run without an init — a
// process inherits every orphan of its namespace, and nobody else reaps
// them: the leftovers of hooks and tasks (Uplink kills what a command
// leaves in its process group, and those killed processes are orphans),
// the backends of a postmaster killed with -9. Zombies pile up. So
// `uplink serve` as PID 1 starts itself again as its only child and stays
// a minimal init, as tini would: it forwards signals to the child, reaps
// whatever ends up its child, and exits as the child did.
//
// The child runs in a process group of its own, so that a terminal's
// Ctrl-C reaches it once, through the init, and not a second time
// directly (a second signal means "exit now").

const (
	// initChildEnv marks the child, so that it does not start another.
	initChildEnv = "UPLINK_INIT_CHILD"
	// initEnv set to "off" keeps a PID 1 Uplink from acting as init (run
	// it under tini or docker --init instead).
	initEnv = "UPLINK_INIT"
)

// forwarded are the signals the init passes on to its child.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// actAsInit says whether this process should be the init of a child copy
// of itself: it is PID 1, it serves, it is not that child, and
// UPLINK_INIT is not off.
func actAsInit(pid int, args []string, getenv func(string) string) bool {
	return pid == 1 && len(args) > 0 && args[0] == "serve" && getenv(initChildEnv) == "" && getenv(initEnv) != "off"
}

// runInit starts the same program with the same arguments as its child
// and returns the child's exit code (128+n for a signal n), reaping every
// other child meanwhile.
func runInit() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "uplink: as PID 1, cannot find its own program to start as a child: %v (set %s=off to run without)\n", err, initEnv)
		return exitFailure
	}
	sigs := make(chan os.Signal, 16)
	// Before the child exists: a SIGCHLD must not be missed.
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	child, err := syscall.ForkExec(self, os.Args, &syscall.ProcAttr{
		Env:   append(os.Environ(), initChildEnv+"=1"),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "uplink: as PID 1, cannot start itself as a child: %v (set %s=off to run without)\n", err, initEnv)
		return exitFailure
	}
	for s := range sigs {
		if s != syscall.SIGCHLD {
			syscall.Kill(child, s.(syscall.Signal))
			continue
		}
		// One SIGCHLD may stand for several exits.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid != child {
				continue // an orphan, reaped
			}
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
	return exitFailure
}
