package boot

import (
	"maps"
	"time"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// maxTransitions bounds the history /status shows: a database that comes
// and goes for a month must not grow it without end.
const maxTransitions = 50

// setPhase records and logs a transition. Reason and hint are redacted:
// they often carry an error's text.
func (a *App) setPhase(p status.Phase, reason, hint string) {
	reason, hint = provision.Redact(reason), provision.Redact(hint)
	now := time.Now()
	a.mu.Lock()
	from := a.phase
	if from == p && a.reason == reason {
		a.mu.Unlock()
		return
	}
	if from == status.PhaseStopping {
		// Nothing leaves stopping: a walk step that ends after the
		// signal must not flip readiness back on.
		a.mu.Unlock()
		return
	}
	a.phase, a.reason, a.hint = p, reason, hint
	if from != p {
		a.phaseSince = now
	}
	a.transitions = append(a.transitions, status.Transition{Phase: p, At: now, Reason: reason})
	if n := len(a.transitions); n > maxTransitions {
		a.transitions = append(a.transitions[:1], a.transitions[n-maxTransitions+1:]...)
	}
	a.mu.Unlock()

	attrs := []any{logPhase, string(p), logFrom, string(from)}
	if reason != "" {
		attrs = append(attrs, logReason, reason)
	}
	if hint != "" {
		attrs = append(attrs, logHint, hint)
	}
	switch p {
	case status.PhaseError:
		a.log.Error("phase "+string(p), attrs...)
	case status.PhaseDegraded:
		a.log.Warn("phase "+string(p), attrs...)
	default:
		a.log.Info("phase "+string(p), attrs...)
	}
}

// Phase is the current phase.
func (a *App) Phase() status.Phase {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phase
}

// setCheck replaces one of the checks boot owns, keeping Since when the
// level did not change.
func (a *App) setCheck(name string, c status.Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.checks[name]; ok && old.Status == c.Status && !old.Since.IsZero() {
		c.Since = old.Since
	} else if c.Since.IsZero() {
		c.Since = time.Now()
	}
	a.checks[name] = c
}

// setRetry records that a step is waiting to retry (nil: it no longer is).
// Status lays it over the step's own check, which knows what failed but
// not when boot tries again.
func (a *App) setRetry(name string, c *status.Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c == nil {
		delete(a.retries, name)
		return
	}
	a.retries[name] = *c
}

// Status returns a snapshot for /status. It calls components' Status
// methods, which must not block on I/O.
func (a *App) Status() status.Snapshot {
	a.mu.Lock()
	s := status.Snapshot{
		Phase:       a.phase,
		Mode:        string(a.mode),
		Since:       a.phaseSince,
		Started:     a.started,
		Version:     a.cfg.Version,
		Reason:      a.reason,
		Hint:        a.hint,
		Checks:      maps.Clone(a.checks),
		Transitions: append([]status.Transition(nil), a.transitions...),
	}
	prov, down, sup, retries := a.prov, a.dbDown, a.sup, maps.Clone(a.retries)
	a.mu.Unlock()
	if sup != nil {
		s.Checks["services"] = servicesCheck(sup)
		a.serviceChecks(s.Checks)
	}
	if c, ok := a.migrationsCheck(); ok {
		s.Checks["migrations"] = c
	}
	a.addTaskChecks(s.Checks)
	for name, r := range retries {
		c, ok := s.Checks[name]
		if !ok {
			c = r
		}
		c.Status = status.Worse(c.Status, r.Status)
		c.Attempts, c.NextRetry = r.Attempts, r.NextRetry
		if c.LastError == "" {
			c.LastError, c.LastErrorAt = r.LastError, r.LastErrorAt
		}
		s.Checks[name] = c
	}

	if prov != nil {
		db := prov.Status()
		if down != nil {
			// The provisioner may still think all is well (pro mode
			// does not watch); the watch knows better.
			db.Status, db.Detail, db.Since = down.Status, down.Detail, down.Since
			db.LastError, db.LastErrorAt, db.NextRetry, db.Attempts = down.LastError, down.LastErrorAt, down.NextRetry, down.Attempts
		}
		s.Checks["database"] = db
	}
	s.Status = overall(s.Phase, s.Checks)
	return s
}

// overall maps the phase and the checks to pass/warn/fail: fail when not
// serving for a reason (error, degraded), warn while coming up, stopping
// or when ready with a component warning, pass when ready and all pass.
func overall(p status.Phase, checks map[string]status.Check) status.Level {
	switch p {
	case status.PhaseError, status.PhaseDegraded:
		return status.Fail
	case status.PhaseReady:
		// Ready serves traffic: a failing component (a best-effort task,
		// a post-start hook) is worth a warning, not a fail.
		for _, c := range checks {
			if c.Status != status.Pass {
				return status.Warn
			}
		}
		return status.Pass
	}
	return status.Warn
}
