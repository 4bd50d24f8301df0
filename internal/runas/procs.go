package runas

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// procStat returns the state and process group of pid from /proc/PID/stat.
func procStat(pid string) (state byte, pgrp int, ok bool) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain anything, so
	// fields are counted from the last ')'.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0][0], pgrp, err == nil
}

// Alive reports whether pid exists and is not a zombie. A zombie has
// exited and released everything but its process table entry, which only
// its parent (init, for orphans; not every init reaps) can clear.
func Alive(pid int) bool {
	state, _, ok := procStat(strconv.Itoa(pid))
	return ok && state != 'Z' && state != 'X'
}

// GroupAlive reports whether any live (non-zombie) process is in process
// group pgid. Note that PostgreSQL's postmaster puts each child in a
// session of its own: its group holds the postmaster alone, and waiting for
// the children takes another signal (lite waits for the server's stderr
// pipe to close).
func GroupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		state, pgrp, ok := procStat(e.Name())
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// WaitGone polls until neither pid nor any process of the group it leads
// is alive, or d passes; it reports whether they are gone. They are not
// necessarily our children, so there is nothing to wait on but /proc.
func WaitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for Alive(pid) || GroupAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
