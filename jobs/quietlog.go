package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// quietHandler passes River's log records on, except that a warning or
// error repeated with the same message is let through once per back-off
// step (after 1 s, 2 s, 4 s... up to max) with the number of copies it
// held back. While the database is gone each of River's loops (a fetch
// per queue every poll, the notifier, the elector, the completer) fails
// on every turn; this turns that into a line per step, while a single
// error, or the first of a burst, still shows at once.
//
// Records below Warn pass untouched: River logs per-job outcomes there,
// and each of them is worth its line.
type quietHandler struct {
	next     slog.Handler
	min, max time.Duration
	now      func() time.Time
	st       *quietState // shared by the handlers WithAttrs and WithGroup derive
}

type quietState struct {
	mu    sync.Mutex
	seen  map[string]*burst
	calls int
}

// burst is one repeated message.
type burst struct {
	last    time.Time // when it was last logged or held back
	next    time.Time // held back until then
	step    int
	dropped int
}

// quietKey is the attribute that counts the copies held back.
const quietKey = "repeated"

func newQuietHandler(next slog.Handler, min, max time.Duration, now func() time.Time) *quietHandler {
	return &quietHandler{next: next, min: min, max: max, now: now, st: &quietState{seen: map[string]*burst{}}}
}

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	dropped, pass := h.admit(r.Message)
	if !pass {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(quietKey, dropped))
	}
	return h.next.Handle(ctx, r)
}

// admit decides whether a record with this message is logged now, and
// how many copies were held back since the last one that was.
func (h *quietHandler) admit(msg string) (dropped int, pass bool) {
	now := h.now()
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.seen[msg]
	if b == nil || now.Sub(b.last) > h.max {
		// A message quiet for a whole step of the longest kind starts a
		// new burst: the next outage is reported at once again.
		b = &burst{}
		s.seen[msg] = b
	}
	b.last = now
	if now.Before(b.next) {
		b.dropped++
		return 0, false
	}
	dropped, b.dropped = b.dropped, 0
	b.next = now.Add(min(h.min<<min(b.step, 30), h.max))
	b.step++
	if s.calls++; s.calls%1024 == 0 {
		s.forget(now, h.max)
	}
	return dropped, true
}

// forget drops bursts that ended long ago, so that messages carrying
// changing text do not grow the map without end.
func (s *quietState) forget(now time.Time, max time.Duration) {
	for msg, b := range s.seen {
		if now.Sub(b.last) > max {
			delete(s.seen, msg)
		}
	}
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

var _ slog.Handler = (*quietHandler)(nil)
