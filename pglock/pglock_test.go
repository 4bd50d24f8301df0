package pglock_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/pglock"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url, app string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = app
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// advisoryLocks counts the advisory locks pid holds.
func advisoryLocks(t *testing.T, conn *pgx.Conn, pid uint32) int {
	t.Helper()
	var n int
	err := conn.QueryRow(testContext(t),
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1", int64(pid)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// held is lock key taken on a session of its own, application "holder".
func held(t *testing.T, ctx context.Context, url string, key int64) (*pglock.Lock, *pgx.Conn) {
	t.Helper()
	conn := connect(t, url, "holder")
	lock, err := pglock.Acquire(ctx, conn, key, pglock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return lock, conn
}

// asleep is options for a waiter that backs off a minute between polls;
// it closes sleeping when the waiter listens and is about to sleep: after
// its second failed poll (reports come after each).
func asleep(sleeping chan struct{}) pglock.Options {
	return pglock.Options{
		MinBackoff: time.Minute, MaxBackoff: time.Minute, ReportEvery: time.Nanosecond,
		OnWait: func(w pglock.Wait) {
			if w.Polls == 2 {
				close(sleeping)
			}
		},
	}
}

func TestKey(t *testing.T) {
	// The derivation is documented; pin it so a change is a conscious one
	// (two versions of Uplink with different keys would not exclude each
	// other). sha256("uplink:app.uplink.schema_history") starts f20a4829556bc732.
	if got, want := pglock.Key("app", "uplink", "schema_history"), int64(-0xdf5b7d6aa9438ce); got != want {
		t.Errorf("Key = %#x, want %#x", got, want)
	}
	keys := map[int64]string{}
	for _, parts := range [][3]string{
		{"app", "uplink", "schema_history"},
		{"app2", "uplink", "schema_history"},
		{"app", "other", "schema_history"},
		{"app", "uplink", "history"},
		{"App", "uplink", "schema_history"},
	} {
		k := pglock.Key(parts[0], parts[1], parts[2])
		if prev, ok := keys[k]; ok {
			t.Errorf("Key%v = Key%v", parts, prev)
		}
		keys[k] = parts[0] + "." + parts[1] + "." + parts[2]
	}
}

func TestWaiterSeesHolderAndCancelLeavesNothing(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t)
	key := pglock.Key("db", "s", "t")
	holderConn := connect(t, url, "the-holder")
	waiterConn := connect(t, url, "the-waiter")
	observer := connect(t, url, "observer")

	lock, err := pglock.Acquire(ctx, holderConn, key, pglock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if held, err := lock.Held(ctx); err != nil || !held {
		t.Fatalf("Held = %v, %v", held, err)
	}

	waits := make(chan pglock.Wait, 16)
	waitCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var returned time.Time
	go func() {
		_, err := pglock.Acquire(waitCtx, waiterConn, key, pglock.Options{
			ReportEvery: 20 * time.Millisecond,
			OnWait:      func(w pglock.Wait) { waits <- w },
		})
		returned = time.Now()
		done <- err
	}()

	// First contention is reported at once, then every ReportEvery.
	for i := 0; i < 3; i++ {
		w := <-waits
		if !w.Known || w.Holder.PID != int(holderConn.PgConn().PID()) || w.Holder.ApplicationName != "the-holder" {
			t.Fatalf("wait report %d = %+v, want holder pid %d app the-holder", i, w, holderConn.PgConn().PID())
		}
		if w.Key != key || w.Polls < 1 {
			t.Fatalf("wait report %d = %+v", i, w)
		}
	}
	cancelled := time.Now()
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire after cancel = %v, want context.Canceled", err)
	}
	if d := returned.Sub(cancelled); d > time.Second {
		t.Fatalf("Acquire returned %s after cancel, want < 1s", d)
	}
	if n := advisoryLocks(t, observer, waiterConn.PgConn().PID()); n != 0 {
		t.Fatalf("cancelled waiter holds %d advisory locks", n)
	}

	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatalf("second Release = %v, want nil (idempotent)", err)
	}
	if n := advisoryLocks(t, observer, holderConn.PgConn().PID()); n != 0 {
		t.Fatalf("released holder still holds %d advisory locks", n)
	}
	// The lock is free for anyone now, the waiter's session included.
	l2, err := pglock.Acquire(ctx, observer, key, pglock.Options{
		OnWait: func(w pglock.Wait) { t.Errorf("waited for a free lock: %+v", w) },
	})
	if err != nil {
		t.Fatal(err)
	}
	l2.Release(ctx)
}

func TestHolderSessionEndsWaiterTakesOver(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t)
	key := pglock.Key("db", "s", "takeover")
	lock, holderConn := held(t, ctx, url, key)
	waiterConn := connect(t, url, "waiter")
	admin := connect(t, url, "admin")

	waiting := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		var once bool
		l, err := pglock.Acquire(ctx, waiterConn, key, pglock.Options{OnWait: func(pglock.Wait) {
			if !once {
				once = true
				close(waiting)
			}
		}})
		if err == nil {
			var held bool
			held, err = l.Held(ctx)
			if err == nil && !held {
				err = errors.New("Held = false after Acquire")
			}
		}
		got <- err
	}()
	<-waiting
	// The holder's session is killed from outside, as an operator or a
	// crash would: the lock goes with it.
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(holderConn.PgConn().PID())); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// The old holder finds out on its next use of the session.
	holderConn.Exec(ctx, "SELECT 1")
	if err := lock.Release(ctx); !errors.Is(err, pglock.ErrLost) {
		t.Fatalf("Release after session loss = %v, want ErrLost", err)
	}
}

func TestReleaseNotHeld(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t)
	conn := connect(t, url, "x")
	lock, err := pglock.Acquire(ctx, conn, 42, pglock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	if err := lock.Release(ctx); !errors.Is(err, pglock.ErrNotHeld) {
		t.Fatalf("Release = %v, want ErrNotHeld", err)
	}
}

func TestAcquireOnDeadContext(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	conn := connect(t, url, "x")
	observer := connect(t, url, "observer")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pglock.Acquire(ctx, conn, 7, pglock.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if !conn.IsClosed() {
		if n := advisoryLocks(t, observer, conn.PgConn().PID()); n != 0 {
			t.Fatalf("holds %d locks after a cancelled Acquire", n)
		}
	}
}

// A release wakes a waiter at once: this one would otherwise sleep half a
// minute or more between polls.
func TestReleaseWakesWaiter(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t)
	key := pglock.Key("db", "s", "notify")
	lock, _ := held(t, ctx, url, key)
	waiterConn := connect(t, url, "waiter")
	sleeping := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		l, err := pglock.Acquire(ctx, waiterConn, key, asleep(sleeping))
		if err == nil {
			var listening int
			if err = waiterConn.QueryRow(ctx, "SELECT count(*) FROM pg_listening_channels()").Scan(&listening); err == nil && listening != 0 {
				err = errors.New("the new holder still listens on the lock's channel")
			}
			l.Release(ctx) // before the test ends and closes the session
		}
		got <- err
	}()
	<-sleeping
	released := time.Now()
	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter still asleep 10s after the release")
	}
	if d := time.Since(released); d > 5*time.Second {
		t.Errorf("waiter took the lock %s after the release", d)
	}
}

// A waiter woken by a release that finds the lock taken again asks
// Needed, and stops when the lock is no longer needed, holding nothing.
func TestWaiterStopsWhenNotNeeded(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t)
	key := pglock.Key("db", "s", "needed")
	lock, _ := held(t, ctx, url, key)
	defer lock.Release(ctx)
	waiterConn := connect(t, url, "waiter")
	observer := connect(t, url, "observer")
	sleeping := make(chan struct{})
	var asked atomic.Int32
	done := make(chan error, 1)
	go func() {
		opts := asleep(sleeping)
		opts.Needed = func(ctx context.Context) (bool, error) {
			asked.Add(1)
			// The waiter's session is idle between polls: it can ask.
			var one int
			err := waiterConn.QueryRow(ctx, "SELECT 1").Scan(&one)
			return false, err
		}
		_, err := pglock.Acquire(ctx, waiterConn, key, opts)
		done <- err
	}()
	<-sleeping
	if asked.Load() != 0 {
		t.Fatal("Needed asked before any release")
	}
	// As a release would, while the holder keeps the lock: the waiter wakes,
	// finds it taken, and asks.
	if _, err := observer.Exec(ctx, "SELECT pg_notify($1, '')", pglock.Channel(key)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, pglock.ErrNotNeeded) {
			t.Fatalf("Acquire = %v, want ErrNotNeeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not stop after the notification")
	}
	if asked.Load() != 1 {
		t.Errorf("Needed asked %d times, want 1", asked.Load())
	}
	if n := advisoryLocks(t, observer, waiterConn.PgConn().PID()); n != 0 {
		t.Errorf("waiter that stopped holds %d advisory locks", n)
	}
	if held, err := lock.Held(ctx); err != nil || !held {
		t.Errorf("holder Held = %v, %v", held, err)
	}
}
