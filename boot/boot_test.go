package boot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// gate is a Provisioner whose Provision waits until the test opens it: it
// stands for "the database is not there yet" without depending on how a
// real provisioner retries. The database behind it is real.
type gate struct {
	open    chan struct{}
	dsn     provision.DSN
	err     error
	events  *events
	stopped bool
	// stopLeft is the time Stop's context had left (0: none, or ended).
	stopLeft time.Duration
	mu       sync.Mutex
}

func newGate(dsn string, ev *events) *gate {
	return &gate{open: make(chan struct{}), dsn: provision.DSN(dsn), events: ev}
}

func (g *gate) Mode() provision.Mode { return provision.ModePro }
func (g *gate) Provision(ctx context.Context) (provision.DSN, error) {
	select {
	case <-g.open:
		return g.dsn, g.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
func (g *gate) Status() status.Check {
	select {
	case <-g.open:
		return status.Check{Status: status.Pass, Detail: "open"}
	default:
		return status.Check{Status: status.Warn, Detail: "waiting for the gate"}
	}
}
func (g *gate) Failed() <-chan error { return nil }
func (g *gate) Stop(ctx context.Context) error {
	g.mu.Lock()
	g.stopped = true
	if dl, ok := ctx.Deadline(); ok && ctx.Err() == nil {
		g.stopLeft = time.Until(dl)
	}
	g.mu.Unlock()
	g.events.add("provisioner stopped")
	return nil
}

// events records what happened, in order, from any goroutine.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
}

// started is a running App under test.
type started struct {
	app  *boot.App
	base string
	logs *testutil.Buffer
	stop func() error // cancels Run and returns its error
}

func start(t *testing.T, cfg boot.Config) *started {
	t.Helper()
	logs := &testutil.Buffer{}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	cfg.Logger = testutil.JSONLogger(io.MultiWriter(logs, t.Output()))
	app, err := boot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Listen(); err != nil {
		t.Fatal(err)
	}
	s := &started{app: app, base: "http://" + app.Addr().String(), logs: logs, stop: runInBackground(app)}
	t.Cleanup(func() { s.stop() })
	return s
}

// runInBackground runs app until stop is called. Stop cancels Run, waits
// for it at most 30s and returns its error, the same on every call.
func runInBackground(app *boot.App) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	return sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("Run did not return within 30s of cancel")
		}
	})
}

func (s *started) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, err := testutil.Get(s.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}

func (s *started) snapshot(t *testing.T) status.Snapshot {
	t.Helper()
	_, snap := getStatus(t, s.base)
	return snap
}

// getStatus fetches base/status: its HTTP code and the snapshot.
func getStatus(t *testing.T, base string) (int, status.Snapshot) {
	t.Helper()
	code, body, err := testutil.Get(base + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	return code, snap
}

// waitPhase polls /status until the phase is p or the bound passes, and
// returns how long it took.
func (s *started) waitPhase(t *testing.T, p status.Phase, bound time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		snap := s.snapshot(t)
		if snap.Phase == p {
			return time.Since(t0)
		}
		if time.Since(t0) > bound {
			t.Fatalf("phase %s not reached within %s; status: phase %s, reason %q, checks %+v", p, bound, snap.Phase, snap.Reason, snap.Checks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStatusIsServedBeforeTheDatabase(t *testing.T) {
	ev := &events{}
	g := newGate("", ev)
	t0 := time.Now()
	s := start(t, boot.Config{Provisioner: g})

	code, body := s.get(t, "/livez")
	if code != http.StatusOK {
		t.Fatalf("/livez = %d %q", code, body)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("/livez answered %s after start; want within 1s", d)
	}
	code, body = s.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "provisioning") {
		t.Errorf("/readyz = %d %q; want 503 naming the phase", code, body)
	}
	snap := s.snapshot(t)
	if snap.Phase != status.PhaseProvisioning || snap.Status != status.Warn || snap.Mode != "pro" {
		t.Errorf("status = phase %s, status %s, mode %q", snap.Phase, snap.Status, snap.Mode)
	}
	if snap.Checks["database"].Detail != "waiting for the gate" {
		t.Errorf("database check = %+v; want the provisioner's own report", snap.Checks["database"])
	}
	if snap.Version == "" || snap.Since.IsZero() || snap.Started.IsZero() {
		t.Errorf("status lacks version or times: %+v", snap)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop during provisioning: %v", err)
	}
}

func TestWalkToReadyThenDegradedAndBack(t *testing.T) {
	db := pgtest.Start(t)
	ev := &events{}
	g := newGate(db.URL("postgres"), ev)
	s := start(t, boot.Config{Provisioner: g})
	close(g.open)
	s.waitPhase(t, status.PhaseReady, 10*time.Second)

	code, _ := s.get(t, "/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz in ready = %d", code)
	}
	snap := s.snapshot(t)
	var walked []status.Phase
	for _, tr := range snap.Transitions {
		walked = append(walked, tr.Phase)
		if tr.At.IsZero() {
			t.Errorf("transition without a time: %+v", tr)
		}
	}
	want := []status.Phase{status.PhaseProvisioning, status.PhaseMigrating, status.PhaseTasks, status.PhaseStarting, status.PhaseReady}
	if !equalPhases(walked, want) {
		t.Errorf("walked %v; want %v", walked, want)
	}
	if snap.Status != status.Pass {
		t.Errorf("ready with status %s; checks %+v", snap.Status, snap.Checks)
	}
	if s.app.Pool() == nil {
		t.Fatal("no pool once ready")
	}

	db.Kill()
	took := s.waitPhase(t, status.PhaseDegraded, 5*time.Second)
	t.Logf("degraded %s after the database was killed", took)
	if code, _ := s.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz in degraded = %d", code)
	}
	if code, _ := s.get(t, "/livez"); code != http.StatusOK {
		t.Errorf("/livez in degraded = %d", code)
	}
	snap = s.snapshot(t)
	if c := snap.Checks["database"]; c.Status != status.Fail || c.LastError == "" || c.NextRetry.IsZero() || c.Attempts == 0 {
		t.Errorf("database check while down = %+v", c)
	}
	if snap.Status != status.Fail {
		t.Errorf("overall status while degraded = %s", snap.Status)
	}

	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	took = s.waitPhase(t, status.PhaseReady, 10*time.Second)
	t.Logf("ready %s after the database returned", took)
	if c := s.snapshot(t).Checks["database"]; c.Status != status.Pass {
		t.Errorf("database check after recovery = %+v", c)
	}
}

func equalPhases(a, b []status.Phase) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestActionErrorLeavesTheProcessUpInPhaseError(t *testing.T) {
	ev := &events{}
	g := newGate("", ev)
	g.err = &status.ActionError{Problem: "the database refused our password", Hint: "fix DATABASE_URL"}
	close(g.open)
	s := start(t, boot.Config{Provisioner: g})
	s.waitPhase(t, status.PhaseError, 5*time.Second)
	snap := s.snapshot(t)
	if snap.Hint != "fix DATABASE_URL" || !strings.Contains(snap.Reason, "refused our password") || snap.Status != status.Fail {
		t.Errorf("error status = reason %q, hint %q, status %s", snap.Reason, snap.Hint, snap.Status)
	}
	if code, _ := s.get(t, "/livez"); code != http.StatusOK {
		t.Errorf("/livez in error = %d; the process must stay alive", code)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "error") {
		t.Errorf("/readyz in error = %d %q", code, body)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"hint":"fix DATABASE_URL"`) || !strings.Contains(logs, `"phase":"error"`) {
		t.Errorf("the error and its hint are not in the log:\n%s", logs)
	}
}

func TestUnknownModeIsPhaseError(t *testing.T) {
	s := start(t, boot.Config{Mode: "cloud"})
	s.waitPhase(t, status.PhaseError, 5*time.Second)
	if snap := s.snapshot(t); !strings.Contains(snap.Reason, `unknown mode "cloud"`) || !strings.Contains(snap.Hint, "auto, lite or pro") {
		t.Errorf("reason %q, hint %q", snap.Reason, snap.Hint)
	}
}

func TestShutdownStopsInOrderAndInTime(t *testing.T) {
	db := pgtest.Start(t)
	ev := &events{}
	g := newGate(db.URL("postgres"), ev)
	s := start(t, boot.Config{Provisioner: g})
	close(g.open)
	s.waitPhase(t, status.PhaseReady, 10*time.Second)
	pool := s.app.Pool()

	t0 := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("stopping took %s; want within 10s", d)
	}
	if s.app.Phase() != status.PhaseStopping {
		t.Errorf("phase after Run = %s", s.app.Phase())
	}
	if err := pool.Ping(context.Background()); err == nil {
		t.Error("pool still usable after Run returned")
	}
	if !g.stopped {
		t.Error("provisioner not stopped")
	}
	if _, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", s.app.Addr().String()); err == nil {
		t.Error("HTTP still accepting after Run returned")
	}
}

func TestHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	app, err := boot.New(boot.Config{HTTPAddr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(context.Background())
	if !status.IsAction(err) || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(status.HintOf(err), "another program listens") {
		t.Fatalf("Run on a taken address = %v (hint %q)", err, status.HintOf(err))
	}
}

func TestNoPasswordInStatusOrLogs(t *testing.T) {
	db := pgtest.Start(t)
	const pw = "GrepMeBootPassw0rd"
	conn, err := pgx.Connect(context.Background(), db.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "CREATE ROLE grepme LOGIN SUPERUSER PASSWORD '"+pw+"'"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	url := strings.Replace(db.URL("postgres"), "postgres:"+db.Password, "grepme:"+pw, 1)

	g := newGate(url, &events{})
	s := start(t, boot.Config{Provisioner: g})
	close(g.open)
	s.waitPhase(t, status.PhaseReady, 10*time.Second)
	db.Kill()
	s.waitPhase(t, status.PhaseDegraded, 5*time.Second)
	_, body := s.get(t, "/status")
	_, metrics := s.get(t, "/metrics")
	s.stop()
	for where, text := range map[string]string{"/status": body, "/metrics": metrics, "logs": s.logs.String()} {
		if strings.Contains(text, pw) {
			t.Errorf("the password appears in %s", where)
		}
	}
}

func TestMetrics(t *testing.T) {
	g := newGate("", &events{})
	s := start(t, boot.Config{Provisioner: g, Version: "v9.9.9"})
	code, body := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`uplink_phase{phase="provisioning"} 1`, `uplink_phase{phase="ready"} 0`, `uplink_ready 0`, `uplink_info{mode="pro",version="v9.9.9"} 1`, `uplink_check_status{check="database"} 1`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
