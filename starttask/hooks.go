package starttask

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uplinkhq/uplink/status"
)

// Stage is when a hook runs.
type Stage string

const (
	// PostStart hooks run once, in order, after the first ready.
	PostStart Stage = "post-start"
	// PreStop hooks run first when stopping, in order, within the
	// shutdown budget.
	PreStop Stage = "pre-stop"
)

// HookResult is one run of a hook.
type HookResult struct {
	Name     string        `json:"name"`
	Stage    Stage         `json:"stage"`
	File     string        `json:"file,omitempty"`
	Outcome  Outcome       `json:"outcome"` // running, ran or failed
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration,omitempty"`
	Error    string        `json:"error,omitempty"`
	Hint     string        `json:"hint,omitempty"`
	// Output is the end of a command's output, secrets hidden.
	Output string `json:"output,omitempty"`
}

// Hooks runs hooks and keeps their results for /status. A hook's failure
// is a result, never an error that stops anything.
type Hooks struct {
	exec Exec
	log  *slog.Logger

	mu      sync.Mutex
	results []HookResult
}

// NewHooks returns a hook runner whose commands run with x.
func NewHooks(x Exec, log *slog.Logger) *Hooks {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hooks{exec: x, log: log}
}

// name is a hook's name: its own, or its command line.
func (h *Hook) name() string {
	switch {
	case h.Name != "":
		return h.Name
	case h.Command != nil:
		return h.Command.String()
	}
	return "go hook"
}

// Run runs hooks one after the other, each within its timeout, and
// returns how many failed. When ctx ends it stops the running hook and
// skips the rest.
func (hs *Hooks) Run(ctx context.Context, stage Stage, hooks []Hook) (failed int) {
	for _, h := range hooks {
		if ctx.Err() != nil {
			return failed
		}
		if !hs.run(ctx, stage, h) {
			failed++
		}
	}
	return failed
}

func (hs *Hooks) run(ctx context.Context, stage Stage, h Hook) bool {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	hs.mu.Lock()
	i := len(hs.results)
	hs.results = append(hs.results, HookResult{Name: h.name(), Stage: stage, File: h.File, Outcome: OutcomeRunning, Started: time.Now()})
	hs.mu.Unlock()

	var output string
	var err error
	if h.Command != nil {
		output, err = hs.exec.run(ctx, h.Command, []string{"UPLINK_HOOK=" + h.name(), "UPLINK_HOOK_STAGE=" + string(stage)}, timeout)
	} else {
		err = runFunc(ctx, timeout, h.Func)
	}

	hs.mu.Lock()
	res := &hs.results[i]
	res.Duration, res.Output = time.Since(res.Started), output
	res.Outcome = OutcomeRan
	if err != nil {
		res.Outcome, res.Error, res.Hint = OutcomeFailed, hs.exec.redact(err.Error()), hookHint(err)
	}
	r := *res
	hs.mu.Unlock()

	attrs := []any{"hook", r.Name, "stage", string(stage), logDuration, r.Duration.Round(time.Millisecond).String()}
	if output != "" {
		attrs = append(attrs, logOutput, output)
	}
	if err != nil {
		hs.log.Warn("hook failed", append(attrs, logErr, r.Error)...)
		return false
	}
	hs.log.Info("hook ran", attrs...)
	return true
}

func hookHint(err error) string {
	if ce, ok := err.(*CommandError); ok {
		return ce.Hint()
	}
	return "see the error; the service is not affected"
}

// runFunc runs a Go hook with its timeout. A function that ignores ctx
// is left behind once its time is up: nothing else waits on it.
func runFunc(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	if fn == nil {
		return fmt.Errorf("hook has neither Func nor Command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- protect(func() error { return fn(ctx) }) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("still running after its timeout of %s: %w", timeout, ctx.Err())
	}
}

// protect turns a panic in user code into an error.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn()
}

// Results returns every hook run so far, in order.
func (hs *Hooks) Results() []HookResult {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]HookResult(nil), hs.results...)
}

// Check reports the hooks for /status: warn when one failed (the service
// is not affected), each run in Data["hooks"].
func (hs *Hooks) Check() status.Check {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	c := status.Check{Status: status.Pass, Data: map[string]any{"hooks": append([]HookResult(nil), hs.results...)}}
	ran, failed := 0, 0
	for _, r := range hs.results {
		switch r.Outcome {
		case OutcomeRunning:
			c.Detail = fmt.Sprintf("running %s hook %s for %s", r.Stage, r.Name, time.Since(r.Started).Round(100*time.Millisecond))
			c.Since = r.Started
		case OutcomeFailed:
			failed++
			c.Status = status.Warn
			c.LastError, c.LastErrorAt, c.Hint = r.Name+": "+r.Error, r.Started.Add(r.Duration), r.Hint
		default:
			ran++
		}
	}
	if c.Detail == "" {
		c.Detail = fmt.Sprintf("%d ran, %d failed", ran, failed)
	}
	return c
}

// Report records a hook that could not even start (its directory is
// unreadable, say) as a failed run, so that /status shows it.
func (hs *Hooks) Report(stage Stage, name string, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.results = append(hs.results, HookResult{Name: name, Stage: stage, Outcome: OutcomeFailed, Started: time.Now(),
		Error: hs.exec.redact(err.Error()), Hint: status.HintOf(err)})
}
