package supervise

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// Service is one long-running part of an app.
type Service interface {
	// Name identifies the service in logs and /status; unique in a
	// Supervisor.
	Name() string
	// Start starts the service and returns once it runs, or failed to.
	// Long-running work happens in goroutines the service owns. ctx lives
	// as long as this run: the supervisor cancels it when the caller of
	// Supervisor.Start gives up, and after Stop returns or runs out of
	// time, so a service may keep it as its lifetime context (River's
	// Client.Start does) and treat its end as "stop now".
	Start(ctx context.Context) error
	// Stop stops the service gracefully, bounded by ctx. It must tolerate
	// being called twice and after a failed Start, which the supervisor
	// does to clean up whatever a failed or panicking Start left behind.
	Stop(ctx context.Context) error
}

// Watched is a Service that can end on its own after a successful Start.
// Without it the supervisor trusts a started service to keep running.
type Watched interface {
	Service
	// Done returns the channel on which the current run reports why it
	// ended; a nil error or a closed channel counts as ErrExited. The
	// supervisor calls it after each successful Start and stops reading
	// once it calls Stop.
	Done() <-chan error
}

// ErrExited is the crash reason of a run that ended with no error while
// nobody had asked it to stop.
var ErrExited = errors.New("service ended on its own")

// PanicError is a panic recovered from a service: from its Start or Stop,
// or from the goroutine of a Func service. It counts as a crash.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is sees
// through panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// protect calls fn and turns a panic into a *PanicError.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// Func adapts run, which works until its ctx ends, into a Watched service.
// run is called in a goroutine the service owns; when it returns before
// Stop, or panics, the supervisor restarts it. run should return when ctx
// ends; its result is then ignored.
func Func(name string, run func(ctx context.Context) error) Watched {
	return &funcService{name: name, run: run}
}

type funcService struct {
	name string
	run  func(ctx context.Context) error

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error    // buffered: the result waits until the supervisor reads it, or is dropped
	exited chan struct{} // closed when the goroutine has returned
}

var _ Watched = (*funcService)(nil)

func (f *funcService) Name() string { return f.name }

func (f *funcService) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exited != nil {
		return fmt.Errorf("supervise: %s: the previous run has not returned yet", f.name)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	done, exited := make(chan error, 1), make(chan struct{})
	f.done, f.exited = done, exited
	go func() {
		defer close(exited)
		done <- protect(func() error { return f.run(ctx) })
	}()
	return nil
}

func (f *funcService) Done() <-chan error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// Stop cancels the run and waits for its goroutine, bounded by ctx.
func (f *funcService) Stop(ctx context.Context) error {
	f.mu.Lock()
	cancel, exited := f.cancel, f.exited
	f.mu.Unlock()
	if exited == nil {
		return nil
	}
	cancel()
	select {
	case <-exited:
	case <-ctx.Done():
		return fmt.Errorf("supervise: %s: run did not return: %w", f.name, context.Cause(ctx))
	}
	// Only now may a later Start run again: one goroutine at a time.
	f.mu.Lock()
	f.cancel, f.done, f.exited = nil, nil, nil
	f.mu.Unlock()
	return nil
}
