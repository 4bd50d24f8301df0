package starttask

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/uplinkhq/uplink/provision"
)

// Exec is what commands run with, shared by tasks and hooks.
type Exec struct {
	// Vars are added to the process environment of every command: boot
	// gives DATABASE_URL and UPLINK_ENV, UPLINK_MODE, UPLINK_HTTP_ADDR,
	// UPLINK_VERSION. A task also gets UPLINK_TASK and UPLINK_FRESH, a
	// hook UPLINK_HOOK.
	Vars []string
	// Secrets are hidden from output tails wherever they appear (boot
	// gives the database password), except one shorter than 4 characters,
	// which would hide ordinary words; passwords inside connection
	// strings are hidden anyway.
	Secrets []string
	// TailBytes is how much of a command's output is kept for /status and
	// the history table. Default 2048.
	TailBytes int
}

// killGrace is how long a command's process group has between SIGTERM
// and SIGKILL once its time is up.
const killGrace = 3 * time.Second

// exitNotFound is the shell's exit status for a command it cannot find.
const exitNotFound = 127

// CommandError is a command that failed: its exit status, or that it ran
// past its timeout, and the end of its output.
type CommandError struct {
	Command  string
	ExitCode int // -1 when it did not exit on its own
	TimedOut bool
	Timeout  time.Duration
	Output   string // the tail, redacted
	Err      error
}

func (e *CommandError) Error() string { return e.Command + ": " + e.describe() }

// describe is the failure without the command, for a message that names
// the command's file already.
func (e *CommandError) describe() string {
	var msg string
	switch {
	case e.TimedOut:
		msg = fmt.Sprintf("still running after its timeout of %s; its process group was killed", e.Timeout)
	case e.ExitCode == exitNotFound:
		msg = fmt.Sprintf("command not found (exit status %d)", e.ExitCode)
	case e.ExitCode >= 0:
		msg = fmt.Sprintf("exit status %d", e.ExitCode)
	default:
		msg = e.Err.Error()
	}
	if last := lastLine(e.Output); last != "" && !e.TimedOut {
		msg += ": " + last
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// Hint says what to do about a failed command.
func (e *CommandError) Hint() string {
	switch {
	case e.TimedOut:
		return "find out why it hangs (see the end of its output), or give it more time with timeout= in its header"
	case e.ExitCode == exitNotFound:
		return "check the command's spelling, install it, or give its full path"
	case errors.Is(e.Err, os.ErrNotExist):
		return "check the path; the file is gone or its #! interpreter is missing"
	case errors.Is(e.Err, os.ErrPermission):
		return "make it executable (chmod +x) and readable"
	}
	return "see the end of its output and fix it"
}

// run runs c with timeout in its own process group and returns its output
// tail. Whatever is left of the group when it ends is killed.
func (x *Exec) run(ctx context.Context, c *Command, extra []string, timeout time.Duration) (string, error) {
	path, args := c.Path, c.Args
	if c.Shell != "" {
		path, args = "/bin/sh", []string{"-c", c.Shell}
	}
	// Output goes to a file rather than a pipe: a grandchild that keeps
	// the pipe open cannot then hold up Wait.
	out, err := os.CreateTemp("", "uplink-output-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()

	cmd := exec.Command(path, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(append(os.Environ(), x.Vars...), extra...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a killed Uplink takes the command with it (its own
	// group-mates are KillRunning's, on a forced exit).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", &CommandError{Command: c.String(), ExitCode: -1, Err: err}
	}
	pgid := cmd.Process.Pid
	running.add(pgid)
	defer running.remove(pgid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case err = <-done:
	case <-tctx.Done():
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(killGrace):
			syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // what it left running in its group
	tail := x.tail(out)
	switch {
	case ctx.Err() != nil:
		return tail, ctx.Err()
	case tctx.Err() != nil:
		return tail, &CommandError{Command: c.String(), ExitCode: -1, TimedOut: true, Timeout: timeout, Output: tail, Err: tctx.Err()}
	case err != nil:
		ce := &CommandError{Command: c.String(), ExitCode: -1, Output: tail, Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		return tail, ce
	}
	return tail, nil
}

// tail returns the end of a command's output, from a line start, with
// secrets hidden.
func (x *Exec) tail(f *os.File) string {
	n := int64(x.TailBytes)
	if n <= 0 {
		n = 2048
	}
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, fi.Size()-n)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return ""
	}
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	return x.redact(strings.TrimRight(s, "\n"))
}

// redact hides connection-string passwords and every secret in s.
func (x *Exec) redact(s string) string {
	s = provision.Redact(s)
	for _, secret := range x.Secrets {
		if len(secret) >= 4 { // a short one would hide ordinary words
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// running is the process groups of the commands running now.
var running = groups{m: map[int]bool{}}

type groups struct {
	mu sync.Mutex
	m  map[int]bool
}

func (g *groups) add(pgid int)    { g.mu.Lock(); g.m[pgid] = true; g.mu.Unlock() }
func (g *groups) remove(pgid int) { g.mu.Lock(); delete(g.m, pgid); g.mu.Unlock() }

// KillRunning kills the process groups of every task and hook command
// running now, with everything they started: for a process about to exit
// at once (a second SIGTERM), which would otherwise leave them running
// with no one to wait for them.
func KillRunning() {
	running.mu.Lock()
	defer running.mu.Unlock()
	for pgid := range running.m {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
