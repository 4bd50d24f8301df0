// Package status holds the values every Uplink component reports and that
// /status renders: the boot phase, per-component checks and the snapshot
// that ties them together. It imports only the standard library so that
// every other package, public or internal, can depend on it without cycles.
package status

import (
	"errors"
	"time"
)

// Phase is where the boot sequence stands.
type Phase string

// The phases, in the order a healthy boot walks them. Degraded, Error and
// Stopping can be entered from several places; see boot's package doc.
const (
	PhaseProvisioning Phase = "provisioning"
	PhaseMigrating    Phase = "migrating"
	PhaseTasks        Phase = "tasks"
	PhaseStarting     Phase = "starting"
	PhaseReady        Phase = "ready"
	PhaseDegraded     Phase = "degraded"
	PhaseError        Phase = "error"
	PhaseStopping     Phase = "stopping"
)

// Level is the health of one check or of the whole process, in the words of
// the IETF health-check draft that load balancers and dashboards understand.
type Level string

const (
	Pass Level = "pass"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Worse returns the more severe of two levels.
func Worse(a, b Level) Level {
	rank := func(l Level) int {
		switch l {
		case Fail:
			return 2
		case Warn:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Check is one component's report: the database, the migrations, the tasks,
// a service. Every field is safe to show to anyone who can reach /status:
// components must redact secrets before they put text here.
type Check struct {
	Status Level `json:"status"`
	// Detail says in a few words what the component is doing or waiting for.
	Detail string `json:"detail,omitempty"`
	// Since is when Status last changed.
	Since time.Time `json:"since,omitzero"`
	// LastError is the most recent failure, redacted. It stays after a
	// recovery so that an operator can see what happened.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Hint is what a person should do, when only a person can fix it.
	Hint string `json:"hint,omitempty"`
	// Attempts counts tries of the current step (connects, restarts...).
	Attempts int `json:"attempts,omitempty"`
	// NextRetry is when the component tries again, if it is retrying.
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Data carries component-specific values (versions, pool stats, steps).
	// Values must marshal to JSON.
	Data map[string]any `json:"data,omitempty"`
}

// Transition is one phase change, kept so /status can show how boot went.
type Transition struct {
	Phase  Phase     `json:"phase"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Snapshot is the whole process's status at one instant; /status is its JSON.
type Snapshot struct {
	Status  Level     `json:"status"`
	Phase   Phase     `json:"phase"`
	Mode    string    `json:"mode"`
	Since   time.Time `json:"since"`
	Started time.Time `json:"started"`
	Version string    `json:"version"`
	// Reason says why the process is in its phase when that is not obvious
	// (error, degraded, stopping).
	Reason      string           `json:"reason,omitempty"`
	Hint        string           `json:"hint,omitempty"`
	Checks      map[string]Check `json:"checks"`
	Transitions []Transition     `json:"transitions,omitempty"`
}

// Ready reports whether the snapshot is in the one phase that serves traffic.
func (s Snapshot) Ready() bool { return s.Phase == PhaseReady }

// ActionError marks a failure that only a person can fix (bad configuration,
// a failed migration, missing binaries without permission to install them).
// Boot moves to PhaseError on it instead of retrying, and shows Hint.
// Error leaves the hint out so that it is not said twice where both are
// shown; whoever reports an error to a person shows HintOf(err) beside it.
type ActionError struct {
	// Problem is one line naming what is wrong.
	Problem string
	// Hint is what to do about it.
	Hint string
	// Err is the underlying cause, if any.
	Err error
}

func (e *ActionError) Error() string {
	msg := e.Problem
	if e.Err != nil {
		if msg == "" {
			msg = e.Err.Error()
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	return msg
}

func (e *ActionError) Unwrap() error { return e.Err }

// NeedsAction wraps err as an ActionError with a hint. A nil err gives nil.
func NeedsAction(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &ActionError{Err: err, Hint: hint}
}

// IsAction reports whether err, or any error it wraps, needs a person.
func IsAction(err error) bool {
	var ae *ActionError
	return errors.As(err, &ae)
}

// HintOf returns the hint of the first ActionError in err's chain, or "".
func HintOf(err error) string {
	var ae *ActionError
	if errors.As(err, &ae) {
		return ae.Hint
	}
	return ""
}
