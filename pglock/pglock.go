package pglock

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/backoff"
)

// Key derives the advisory-lock key that protects table schema.table in
// database: the first 8 bytes, big-endian, of
// sha256("uplink:"+database+"."+schema+"."+table).
func Key(database, schema, table string) int64 {
	sum := sha256.Sum256([]byte("uplink:" + database + "." + schema + "." + table))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Defaults for Options.
const (
	DefaultMinBackoff  = 10 * time.Millisecond
	DefaultMaxBackoff  = 250 * time.Millisecond
	DefaultReportEvery = 10 * time.Second
)

// Options tune Acquire. The zero value is ready to use.
type Options struct {
	// MinBackoff is the pause after the first failed poll; it doubles on
	// each further one up to MaxBackoff. Each pause is drawn at random
	// from its upper half so that many waiters do not poll in step.
	// Defaults: 10ms and 250ms, so a released lock is noticed within a
	// quarter second while a hundred waiters cost the server a few hundred
	// trivial queries a second.
	MinBackoff, MaxBackoff time.Duration
	// ReportEvery is how often OnWait is called while waiting, after the
	// first call on first contention. Default 10s.
	ReportEvery time.Duration
	// OnWait, when set, is told who holds the lock, so the caller can log
	// it and show "waiting for lock" in /status. It runs on the waiting
	// goroutine and should return quickly.
	OnWait func(Wait)
	// Needed, when set, is asked whether the caller still needs the lock
	// each time a holder let go of it and the next poll still found it
	// taken (another waiter was quicker): the work the caller waited to
	// do may be done by now. Returning false ends the wait with
	// ErrNotNeeded. It runs on the waiting session between polls, so it
	// may query it, but must not leave a transaction open: a waiter holds
	// no snapshot while it waits.
	Needed func(ctx context.Context) (bool, error)
}

func (o Options) withDefaults() Options {
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = DefaultReportEvery
	}
	return o
}

// Holder describes the session holding a lock, as pg_locks and
// pg_stat_activity show it.
type Holder struct {
	PID             int    `json:"pid"`
	ApplicationName string `json:"application_name,omitempty"`
	ClientAddr      string `json:"client_addr,omitempty"`
	// State is pg_stat_activity.state: "active" while the holder runs a
	// statement, "idle in transaction" between statements.
	State string `json:"state,omitempty"`
	// Age is how long the holder's session has existed. PostgreSQL does not
	// record when a lock was granted; Uplink takes its lock right after
	// connecting, so the session's age is a close upper bound.
	Age time.Duration `json:"age"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d", h.PID)
	if h.ApplicationName != "" {
		s += fmt.Sprintf(" (app %s, %s)", h.ApplicationName, h.Age.Round(time.Second))
	} else {
		s += fmt.Sprintf(" (%s)", h.Age.Round(time.Second))
	}
	return s
}

// Wait is one report from a waiting Acquire.
type Wait struct {
	Key int64
	// Holder is who held the lock at the last poll. Known is false when
	// the holder could not be seen (it let go between the poll and the
	// look-up, or the role may not read pg_locks).
	Holder Holder
	Known  bool
	// Waited is how long Acquire has been waiting; Polls how many times it
	// asked.
	Waited time.Duration
	Polls  int
}

// Errors returned by Release.
var (
	// ErrLost means the session that held the lock has ended, so
	// PostgreSQL has already dropped the lock (and rolled back whatever
	// was in flight on it).
	ErrLost = errors.New("pglock: session ended, lock already dropped")
	// ErrNotHeld means the session is alive but does not hold the lock.
	ErrNotHeld = errors.New("pglock: lock not held by this session")
	// ErrNotNeeded is returned by Acquire when Options.Needed said the
	// lock is no longer needed; nothing is held.
	ErrNotNeeded = errors.New("pglock: stopped waiting, the lock is no longer needed")
)

// Lock is a held advisory lock. It belongs to the session it was taken on.
type Lock struct {
	conn       *pgx.Conn
	key        int64
	acquiredAt time.Time
	waited     time.Duration
	released   bool
}

// Acquire polls pg_try_advisory_lock(key) on conn until it gets the lock
// or ctx ends. conn must be the session the caller then does its work on:
// the lock lives and dies with it.
//
// After its first failed poll Acquire listens on the lock's channel (see
// Channel), so that a Release wakes it at once; between notifications it
// polls with back-off, which is how it notices a holder that died without
// a word. With Options.Needed it also stops waiting, with ErrNotNeeded,
// once the lock is no longer needed.
//
// When ctx ends Acquire returns ctx's error promptly and holds nothing: a
// poll in flight is interrupted by pgx closing the connection (its default
// on cancellation), which ends the session and any lock with it, and a lock
// granted just as ctx ended is handed back.
func Acquire(ctx context.Context, conn *pgx.Conn, key int64, opts Options) (*Lock, error) {
	opts = opts.withDefaults()
	w := &waiter{ctx: ctx, conn: conn, key: key, start: time.Now()}
	var nextReport time.Time // zero: report on first contention
	listen := true           // until LISTEN is known not to work
	woken := false           // a release was announced since the last poll
	for polls := 1; ; polls++ {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
		if err != nil {
			return nil, w.fail("try lock", err)
		}
		if ok {
			return w.granted()
		}
		if woken && opts.Needed != nil {
			needed, err := opts.Needed(ctx)
			if err != nil {
				return nil, w.fail("ask whether the lock is still needed", err)
			}
			if !needed {
				w.unlisten()
				return nil, ErrNotNeeded
			}
		}
		if opts.OnWait != nil && !time.Now().Before(nextReport) {
			h, known, err := HolderOf(ctx, conn, key)
			if err != nil && ctx.Err() != nil {
				return nil, w.fail("", err)
			}
			opts.OnWait(Wait{Key: key, Holder: h, Known: known && err == nil, Waited: time.Since(w.start), Polls: polls})
			nextReport = time.Now().Add(opts.ReportEvery)
		}
		if listen && !w.listening {
			if err := w.listen(); err != nil {
				if ctx.Err() != nil {
					return nil, w.fail("", err)
				}
				listen = false // a hot standby, say: poll only
			}
			// A release between the poll and LISTEN notified nobody:
			// poll again before waiting.
			continue
		}
		woken, err = w.sleep(backoff.Exp(polls, opts.MinBackoff, opts.MaxBackoff))
		if err != nil {
			return nil, w.fail("wait for the lock's release", err)
		}
	}
}

// Channel is the LISTEN/NOTIFY channel on which Release announces that
// lock key is free: "uplink_lock_" and the key as 16 hex digits.
func Channel(key int64) string { return fmt.Sprintf("uplink_lock_%016x", uint64(key)) }

// waiter is the state of one Acquire between polls.
type waiter struct {
	ctx       context.Context
	conn      *pgx.Conn
	key       int64
	start     time.Time
	listening bool
}

// fail describes an error of the wait; once ctx has ended, that is the
// error, whatever the session said.
func (w *waiter) fail(doing string, err error) error {
	if w.ctx.Err() != nil {
		return fmt.Errorf("pglock: waiting for lock %d: %w", w.key, context.Cause(w.ctx))
	}
	return fmt.Errorf("pglock: %s %d: %w", doing, w.key, err)
}

func (w *waiter) granted() (*Lock, error) {
	l := &Lock{conn: w.conn, key: w.key, acquiredAt: time.Now(), waited: time.Since(w.start)}
	if w.ctx.Err() != nil {
		// Granted as the caller gave up: the caller will not release what
		// it never got, so hand it back now.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), time.Second)
		l.Release(rctx)
		cancel()
		return nil, fmt.Errorf("pglock: waiting for lock %d: %w", w.key, context.Cause(w.ctx))
	}
	w.unlisten()
	return l, nil
}

func (w *waiter) listen() error {
	if _, err := w.conn.Exec(w.ctx, "LISTEN "+pgx.Identifier{Channel(w.key)}.Sanitize()); err != nil {
		return err
	}
	w.listening = true
	return nil
}

// unlisten stops listening, so that the session carries no registration
// into the work (or out of a wait that was given up). Best effort: a
// session that cannot UNLISTEN is about to fail anyway.
func (w *waiter) unlisten() {
	if !w.listening || w.ctx.Err() != nil {
		return
	}
	w.conn.Exec(w.ctx, "UNLISTEN "+pgx.Identifier{Channel(w.key)}.Sanitize())
	w.listening = false
}

// sleep waits up to d, or until a notification on the lock's channel
// when listening, and reports whether one came. The session stays idle,
// outside any transaction, meanwhile.
func (w *waiter) sleep(d time.Duration) (bool, error) {
	if !w.listening {
		select {
		case <-w.ctx.Done():
			return false, w.ctx.Err()
		case <-time.After(d):
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, d)
	defer cancel()
	_, err := w.conn.WaitForNotification(ctx)
	switch {
	case err == nil:
		return true, nil
	case w.ctx.Err() != nil:
		return false, w.ctx.Err()
	case ctx.Err() != nil && !w.conn.IsClosed():
		return false, nil // the back-off ran out: poll again
	}
	return false, err
}

// holderQuery finds the session holding an advisory lock on a bigint key
// in the current database (see the package doc for how the key is split).
const holderQuery = `
SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), ''),
       coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.backend_start), 0)::float8
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = (($1::bigint >> 32) & 4294967295)::oid
  AND l.objid = ($1::bigint & 4294967295)::oid
  AND l.objsubid = 1
LIMIT 1`

// HolderOf returns the session holding key in conn's database; false when
// nobody holds it.
func HolderOf(ctx context.Context, conn *pgx.Conn, key int64) (Holder, bool, error) {
	var h Holder
	var age float64
	err := conn.QueryRow(ctx, holderQuery, key).Scan(&h.PID, &h.ApplicationName, &h.ClientAddr, &h.State, &age)
	if errors.Is(err, pgx.ErrNoRows) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, err
	}
	h.Age = time.Duration(age * float64(time.Second))
	return h, true, nil
}

// Key returns the lock's key.
func (l *Lock) Key() int64 { return l.key }

// Waited returns how long Acquire waited for the lock.
func (l *Lock) Waited() time.Duration { return l.waited }

// AcquiredAt returns when the lock was granted.
func (l *Lock) AcquiredAt() time.Time { return l.acquiredAt }

// Held asks PostgreSQL whether this session still holds the lock.
func (l *Lock) Held(ctx context.Context) (bool, error) {
	if l.conn.IsClosed() {
		return false, nil
	}
	h, known, err := HolderOf(ctx, l.conn, l.key)
	if err != nil {
		return false, err
	}
	return known && uint32(h.PID) == l.conn.PgConn().PID(), nil
}

// Release gives the lock back and notifies its channel, so that waiters
// poll at once instead of at their next back-off. It is idempotent. It returns ErrLost when
// the session has ended (PostgreSQL dropped the lock then) and ErrNotHeld
// when the session is alive but no longer holds it.
func (l *Lock) Release(ctx context.Context) error {
	if l.released {
		return nil
	}
	if l.conn.IsClosed() {
		l.released = true
		return ErrLost
	}
	// Waiters listening on the channel wake when this commits, after the
	// unlock took effect. The notification makes the statement a
	// transaction that writes its commit to the WAL; nothing in it needs
	// to be durable, so outside a transaction of the caller's it does not
	// wait for the disk (synchronous_commit off, for this statement only).
	var ok bool
	q, into := "SELECT pg_advisory_unlock($1), pg_notify($2, '')", []any{&ok, nil}
	if l.conn.PgConn().TxStatus() == 'I' {
		q, into = q+", set_config('synchronous_commit', 'off', true)", append(into, nil)
	}
	if err := l.conn.QueryRow(ctx, q, l.key, Channel(l.key)).Scan(into...); err != nil {
		if l.conn.IsClosed() {
			l.released = true
			return fmt.Errorf("%w: %v", ErrLost, err)
		}
		return fmt.Errorf("pglock: release %d: %w", l.key, err)
	}
	l.released = true
	if !ok {
		return ErrNotHeld
	}
	return nil
}
