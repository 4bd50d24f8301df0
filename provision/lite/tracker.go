package lite

import (
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// Step names one stage of provisioning or supervision, as Status reports
// it in Data["step"] and Data["steps"].
type Step string

const (
	StepCheck          Step = "check"           // inspecting and locking the data directory
	StepFindBinaries   Step = "find-binaries"   // looking for postgres and initdb
	StepInstall        Step = "install"         // OS package manager at work
	StepInitdb         Step = "initdb"          // creating the cluster
	StepOrphan         Step = "orphan"          // stopping a server a killed Uplink left behind
	StepStart          Step = "start"           // postgres started, not yet accepting connections
	StepRecover        Step = "recover"         // crash recovery: replaying WAL after an unclean stop
	StepCreateDatabase Step = "create-database" // first start: application role and database
	StepReady          Step = "ready"           // accepting connections
	StepRestart        Step = "restart"         // the server died; waiting to start it again
	StepRetry          Step = "retry"           // a start failed in a way that may fix itself; trying again
	StepStop           Step = "stop"            // shutting the server down
	StepStopped        Step = "stopped"         // Stop finished
	StepFailed         Step = "failed"          // a person must act, or restarts were exhausted
)

// StepRecord is one entry of the step history, oldest first.
type StepRecord struct {
	Step   Step      `json:"step"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

const maxHistory = 32

// tracker holds what Status reports. It never blocks on anything but its
// own mutex, so /status stays quick whatever the server does.
type tracker struct {
	log *slog.Logger

	mu      sync.Mutex
	check   status.Check
	step    Step
	history []StepRecord
	info    map[string]any // data_dir, bindir, version, port
	serving bool           // Provision has returned a DSN and Stop has not run
}

func newTracker(log *slog.Logger, dataDir string) *tracker {
	t := &tracker{log: log, info: map[string]any{"data_dir": dataDir}}
	t.check = status.Check{Status: status.Warn, Detail: "not started", Since: time.Now()}
	return t
}

// set moves to step. Text is redacted here as a last line of defence:
// nothing in Status may carry a password.
func (t *tracker) set(step Step, level status.Level, detail string) {
	detail = provision.Redact(detail)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(step, level, detail)
}

func (t *tracker) setLocked(step Step, level status.Level, detail string) {
	now := time.Now()
	if level != t.check.Status {
		t.check.Since = now
	}
	t.check.Status, t.check.Detail = level, detail
	t.check.Hint, t.check.Attempts, t.check.NextRetry = "", 0, time.Time{}
	delete(t.info, "log_tail")
	if step != t.step {
		t.step = step
		t.history = append(t.history, StepRecord{Step: step, At: now, Detail: detail})
		if len(t.history) > maxHistory {
			t.history = t.history[len(t.history)-maxHistory:]
		}
		t.log.Info("postgres: "+detail, "step", string(step))
	}
}

// progress changes the detail within a step (install output), without a
// history entry or a log line.
func (t *tracker) progress(step Step, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.step == step {
		t.check.Detail = provision.Redact(detail)
	}
}

// fail records an error; with a hint it is one a person must act on.
func (t *tracker) fail(err error, hint string, tail []string) {
	msg := provision.Redact(err.Error())
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(StepFailed, status.Fail, msg)
	t.check.Hint = hint
	t.check.LastError, t.check.LastErrorAt = msg, time.Now()
	if len(tail) > 0 {
		t.info["log_tail"] = tail
	}
}

// restarting reports a server that died and when it comes back.
func (t *tracker) restarting(attempt int, next time.Time, cause string, tail []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.awaitLocked(StepRestart, "postgres stopped unexpectedly; restarting", attempt, next, cause)
	t.info["log_tail"] = tail
}

// retrying reports a start that failed in a way that may fix itself, and
// when the next attempt comes.
func (t *tracker) retrying(attempt int, next time.Time, err error, tail []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.awaitLocked(StepRetry, "start failed; trying again", attempt, next, err.Error())
	t.check.Hint = ""
	if len(tail) > 0 {
		t.info["log_tail"] = tail
	}
}

// awaitLocked records a failure that is tried again at next.
func (t *tracker) awaitLocked(step Step, detail string, attempt int, next time.Time, cause string) {
	t.setLocked(step, status.Warn, detail)
	t.check.Attempts, t.check.NextRetry = attempt, next
	t.check.LastError, t.check.LastErrorAt = provision.Redact(cause), time.Now()
}

// event follows recovery the server does on its own: a backend crash
// makes the postmaster reinitialise without exiting.
func (t *tracker) event(ev event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case ev == evRecovering && t.step != StepRecover:
		t.setLocked(StepRecover, status.Warn, "crash recovery: replaying the write-ahead log after an unclean stop")
	case ev == evReady && t.step == StepRecover && t.serving:
		t.setLocked(StepReady, status.Pass, "ready after crash recovery")
	}
}

func (t *tracker) setServing(v bool) {
	t.mu.Lock()
	t.serving = v
	t.mu.Unlock()
}

func (t *tracker) setInfo(kv map[string]any) {
	t.mu.Lock()
	maps.Copy(t.info, kv)
	t.mu.Unlock()
}

func (t *tracker) currentStep() Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.step
}

func (t *tracker) snapshot() status.Check {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.check
	c.Data = maps.Clone(t.info)
	c.Data["step"] = t.step
	c.Data["steps"] = append([]StepRecord(nil), t.history...)
	return c
}
