package boot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// recorder is an app service that records its lifecycle and checks that
// the pool is usable whenever it runs.
type recorder struct {
	name string
	app  *boot.App
	ev   *events
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Start(ctx context.Context) error {
	if err := r.app.Pool().Ping(ctx); err != nil {
		return fmt.Errorf("%s started without a usable pool: %w", r.name, err)
	}
	r.ev.add("start " + r.name)
	return nil
}
func (r *recorder) Stop(ctx context.Context) error {
	// The pool must still be open while services stop: they may need it
	// to finish their work.
	if err := r.app.Pool().Ping(ctx); err != nil {
		r.ev.add("stop " + r.name + " WITHOUT POOL")
		return nil
	}
	r.ev.add("stop " + r.name)
	return nil
}

func TestServicesStartAfterThePoolAndStopBeforeIt(t *testing.T) {
	db := pgtest.Start(t)
	ev := &events{}
	g := newGate(db.URL("postgres"), ev)
	app, err := boot.New(boot.Config{Provisioner: g, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	app.Add(&recorder{name: "a", app: app, ev: ev}, &recorder{name: "b", app: app, ev: ev})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	close(g.open)
	waitApp(t, app, status.PhaseReady, 10*time.Second)

	snap := app.Status()
	svc := snap.Checks["services"]
	if svc.Status != status.Pass || len(svc.Data) != 4 || svc.Data["jobs"] == nil {
		t.Errorf("services check = %+v; want pass with pool, jobs, a and b", svc)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "stop b", "stop a", "provisioner stopped"}
	if fmt.Sprint(ev.list) != fmt.Sprint(want) {
		t.Errorf("lifecycle = %v; want %v", ev.list, want)
	}
}

func TestCrashLoopingServiceEndsInError(t *testing.T) {
	db := pgtest.Start(t)
	g := newGate(db.URL("postgres"), &events{})
	app, err := boot.New(boot.Config{Provisioner: g, HTTPAddr: "127.0.0.1:0", RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	app.Add(supervise.Func("panicky", func(ctx context.Context) error {
		time.Sleep(5 * time.Millisecond)
		panic("this service is broken")
	}))
	crashLoop(t, app, g)
}

// A service that keeps failing with an error that looks like a lost
// connection (an EOF from a feed it reads) while the database answers is
// crashing, not suffering an outage: it ends in error too.
func TestServiceFailingWithEOFWhileTheDatabaseIsUpEndsInError(t *testing.T) {
	g := newOpenGate(pgtest.Shared(t).NewDatabase(t))
	app, err := boot.New(boot.Config{Provisioner: g, HTTPAddr: "127.0.0.1:0", RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	app.Add(supervise.Func("feed", func(ctx context.Context) error {
		time.Sleep(5 * time.Millisecond)
		return fmt.Errorf("parse feed: %w", io.EOF)
	}))
	crashLoop(t, app, g)
}

func crashLoop(t *testing.T, app *boot.App, g *gate) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	waitApp(t, app, status.PhaseError, 10*time.Second)
	snap := app.Status()
	if snap.Hint == "" || snap.Checks["services"].Status != status.Fail {
		t.Errorf("error status = reason %q hint %q services %+v", snap.Reason, snap.Hint, snap.Checks["services"])
	}
	cancel()
	<-done
}

func waitApp(t *testing.T, app *boot.App, p status.Phase, bound time.Duration) {
	t.Helper()
	for t0 := time.Now(); app.Phase() != p; time.Sleep(20 * time.Millisecond) {
		if time.Since(t0) > bound {
			s := app.Status()
			t.Fatalf("phase %s not reached within %s: %s (%s) %+v", p, bound, s.Phase, s.Reason, s.Checks)
		}
	}
}

func TestIsOutage(t *testing.T) {
	cases := map[error]bool{
		nil:                            false,
		errors.New("bug"):              false,
		context.DeadlineExceeded:       true,
		&pgconn.PgError{Code: "57P01"}: true,
		&pgconn.PgError{Code: "08006"}: true,
		&pgconn.PgError{Code: "53300"}: true,
		&pgconn.PgError{Code: "42P01"}: false,
		fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "57P03"}): true,
	}
	for err, want := range cases {
		if got := boot.IsOutage(err); got != want {
			t.Errorf("IsOutage(%v) = %v, want %v", err, got, want)
		}
	}
	// A real refused connection.
	_, err := pgconn.Connect(context.Background(), fmt.Sprintf("postgres://x@127.0.0.1:%d/x?connect_timeout=1", pgtest.FreePort(t)))
	if !boot.IsOutage(err) {
		t.Errorf("IsOutage(refused connection %v) = false", err)
	}
}

// A pool whose every connection is in use is a busy replica, not one that
// lost its database: the watch asks the database on a connection of its
// own and the phase stays ready.
func TestBusyPoolIsNotALostDatabase(t *testing.T) {
	// The watch's ping of a busy pool opens a session of its own: a SCRAM
	// login of 15-30 ms on an idle 2-core machine, past 100 ms under the
	// whole suite's load. A ping that waited on the busy pool instead
	// would still fail within 0.6 s, inside the 1.5 s watched below.
	app := start(t, boot.Config{Provisioner: newOpenGate(pgtest.Shared(t).NewDatabase(t)),
		WatchInterval: 100 * time.Millisecond, PingTimeout: 500 * time.Millisecond}).app
	waitApp(t, app, status.PhaseReady, 20*time.Second)
	pool := app.Pool()
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	for until := time.Now().Add(1500 * time.Millisecond); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
		if p := app.Phase(); p != status.PhaseReady {
			t.Fatalf("phase %s with the pool busy and the database up: %s", p, app.Status().Reason)
		}
	}
}

// A DATABASE_URL may size the app's pool (pool_max_conns, pgxpool's own
// setting); the migrator and task runner, on connections of their own,
// must not send it to the server, which refuses unknown parameters.
func TestPoolSettingsInTheURL(t *testing.T) {
	app := start(t, boot.Config{Provisioner: newOpenGate(pgtest.Shared(t).NewDatabase(t) + "&pool_max_conns=2")}).app
	waitApp(t, app, status.PhaseReady, 20*time.Second)
	if n := app.Pool().Config().MaxConns; n != 2 {
		t.Errorf("pool MaxConns = %d, want 2 from the URL", n)
	}
}

// Config.PoolMaxConns (--pool-max-conns) sizes the pool in any mode.
func TestPoolMaxConnsSetting(t *testing.T) {
	app := start(t, boot.Config{Provisioner: newOpenGate(pgtest.Shared(t).NewDatabase(t)), PoolMaxConns: 3}).app
	waitApp(t, app, status.PhaseReady, 20*time.Second)
	if n := app.Pool().Config().MaxConns; n != 3 {
		t.Errorf("pool MaxConns = %d, want 3", n)
	}
	if _, err := boot.New(boot.Config{PoolMaxConns: -1}); err == nil {
		t.Error("a negative pool size was accepted")
	}
}
