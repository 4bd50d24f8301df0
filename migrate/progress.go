package migrate

import (
	"fmt"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/pglock"
	"github.com/uplinkhq/uplink/status"
)

// progress is what the migrator is doing, for Check. Every method is safe
// for concurrent use: /status reads it while a run writes it.
type progress struct {
	mu      sync.Mutex
	state   string // idle, checking, waiting, applying, reverting, done, failed
	detail  string
	since   time.Time
	lines   []lineProgress
	holder  *pglock.Holder
	step    int // 1-based index of the running step
	steps   int
	lastErr error
	errAt   time.Time
}

type lineProgress struct {
	Line    string `json:"line"`
	Current int64  `json:"current"`
	Target  int64  `json:"target"`
}

func (p *progress) set(state, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(state, detail)
}

func (p *progress) setLocked(state, detail string) {
	if state != p.state || detail != p.detail {
		p.since = time.Now()
	}
	p.state, p.detail = state, detail
	if state != "waiting" {
		p.holder = nil
	}
}

// report records the versions found in the database.
func (p *progress) report(r *Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = p.lines[:0]
	for _, l := range r.Lines {
		p.lines = append(p.lines, lineProgress{Line: l.Line, Current: l.Current, Target: l.Target})
	}
}

func (p *progress) waiting(w pglock.Wait) {
	p.mu.Lock()
	defer p.mu.Unlock()
	detail := "waiting for the migration lock"
	if w.Known {
		detail = "waiting for lock held by " + w.Holder.String()
	}
	p.setLocked("waiting", detail)
	if w.Known {
		h := w.Holder
		p.holder = &h
	}
}

func (p *progress) running(e Entry, dir Direction, step, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	verb := "applying"
	if dir == DirDown {
		verb = "reverting"
	}
	p.step, p.steps = step, steps
	p.setLocked(verb, fmt.Sprintf("%s %s %04d_%s (%d/%d)", verb, e.Line, e.Version, e.Name, step, steps))
}

// ran moves a line's current version after a step.
func (p *progress) ran(line string, current int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.lines {
		if p.lines[i].Line == line {
			p.lines[i].Current = current
		}
	}
}

// finish records the end of a run; detail says what failed.
func (p *progress) finish(err error, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.lastErr, p.errAt = err, time.Now()
		p.setLocked("failed", detail)
		return
	}
	p.lastErr = nil
	p.step, p.steps = 0, 0
	p.setLocked("done", "up to date")
}

// Check reports the migrator's progress for /status: what it is doing
// ("waiting for lock held by pid 4242 (app uplink, 12s)", "applying app
// 0007_add_users (3/9)"), each line's current and target version, and the
// last failure with its hint. A failure stays until a later run succeeds.
// Data holds "state" (checking, waiting, locked, applying, reverting,
// done or failed), "lines" (each line's current and target version),
// "lock_holder" while waiting, and "step"/"steps" while applying.
func (m *Migrator) Check() status.Check {
	p := &m.prog
	p.mu.Lock()
	defer p.mu.Unlock()
	c := status.Check{Status: status.Pass, Detail: p.detail, Since: p.since, Data: map[string]any{}}
	if p.state == "" {
		c.Detail = "not run yet"
	}
	c.Data["state"] = p.state
	if len(p.lines) > 0 {
		c.Data["lines"] = append([]lineProgress(nil), p.lines...)
	}
	if p.holder != nil {
		c.Data["lock_holder"] = *p.holder
	}
	if p.steps > 0 {
		c.Data["step"], c.Data["steps"] = p.step, p.steps
	}
	if p.lastErr != nil {
		c.Status = status.Fail
		c.LastError, c.LastErrorAt = p.lastErr.Error(), p.errAt
		c.Hint = status.HintOf(p.lastErr)
	}
	return c
}
