package pro_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/pro"
	"github.com/uplinkhq/uplink/status"
)

func TestReachableServer(t *testing.T) {
	t.Parallel()
	s := pgtest.Shared(t)
	user, db := newRole(t, s, "")
	forms := map[string]string{
		"url":       appURL("127.0.0.1", s.Port, user, db, "sslmode=disable"),
		"key=value": fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=%s sslmode=disable", s.Port, user, secret, db),
	}
	for name, url := range forms {
		t.Run(name, func(t *testing.T) {
			p, logs := newPro(t, pro.Config{URL: url})
			dsn, err := provisionNow(t, p)
			if err != nil {
				t.Fatal(err)
			}
			if dsn.Secret() != url {
				t.Errorf("DSN = %q, want the URL unchanged", dsn)
			}
			conn, err := pgx.Connect(t.Context(), dsn.Secret())
			if err != nil {
				t.Fatalf("the DSN does not connect: %v", err)
			}
			conn.Close(t.Context())

			c := p.Status()
			if c.Status != status.Pass || c.Attempts != 1 || c.Hint != "" || !c.NextRetry.IsZero() {
				t.Errorf("status after connecting: %+v", c)
			}
			if !regexp.MustCompile(`^connected: PostgreSQL 1\d\.\d+$`).MatchString(c.Detail) {
				t.Errorf("Detail = %q", c.Detail)
			}
			want := map[string]any{"host": "127.0.0.1", "port": uint16(s.Port), "database": db, "user": user, "sslmode": "disable"}
			for k, v := range want {
				if c.Data[k] != v {
					t.Errorf("Data[%s] = %v, want %v", k, c.Data[k], v)
				}
			}
			if v, _ := c.Data["server_version"].(string); !strings.HasPrefix(c.Detail, "connected: PostgreSQL "+v) || v == "" {
				t.Errorf("Data[server_version] = %q, Detail %q", v, c.Detail)
			}
			if logs.count("INFO", "connected to PostgreSQL") != 1 {
				t.Errorf("want one info line on connecting")
			}
		})
	}
}

func TestWaitsForServerToStart(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	user, db := newRole(t, s, "")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	p, logs := newPro(t, pro.Config{URL: appURL("127.0.0.1", s.Port, user, db, "sslmode=disable")})
	done := provisionAsync(t.Context(), p)

	c := waitStatus(t, p, "retries", retrying)
	mustContain(t, "LastError", c.LastError, "connection refused")
	mustContain(t, "Detail", c.Detail, fmt.Sprintf("waiting for 127.0.0.1:%d", s.Port))
	if !c.NextRetry.After(c.LastErrorAt) {
		t.Errorf("NextRetry %v is not after LastErrorAt %v", c.NextRetry, c.LastErrorAt)
	}
	select {
	case r := <-done:
		t.Fatalf("Provision returned while the server is down: %v", r.err)
	default:
	}

	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Provision after the server started: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Provision did not return within 10 s of the server starting")
	}
	if c := p.Status(); c.Status != status.Pass || c.Attempts < 3 || c.LastError == "" {
		t.Errorf("status after recovery: %+v (want pass, the attempts and the last error kept)", c)
	}
	// Many refused attempts, one warning: repeats go to debug.
	if n := logs.count("WARN", "connection refused"); n != 1 {
		t.Errorf("%d warnings about the refused connection, want 1", n)
	}
	if n := logs.count("DEBUG", "connection refused"); n < 1 {
		t.Errorf("no debug line for the repeated retries")
	}
}

func TestPersonMustAct(t *testing.T) {
	t.Parallel()
	s := pgtest.Shared(t)
	user, db := newRole(t, s, "")
	other, _ := newRole(t, s, "")
	superSQL(t, s, fmt.Sprintf("ALTER ROLE %s PASSWORD 'not-the-secret'", other))
	cases := []struct {
		name, url, problem, hint string
	}{
		{"wrong password", appURL("127.0.0.1", s.Port, other, db, "sslmode=disable"),
			"rejected the password for user \"" + other + "\"", "password in DATABASE_URL"},
		// prefer: pgx tries TLS first, and its error says so; the reason
		// must not (TLS was not the problem).
		{"wrong password, sslmode=prefer", appURL("127.0.0.1", s.Port, other, db, "sslmode=prefer"),
			"rejected the password for user \"" + other + "\"", "password in DATABASE_URL"},
		{"unknown database", appURL("127.0.0.1", s.Port, user, "nosuchdb", "sslmode=disable"),
			"database \"nosuchdb\" does not exist", "CREATE DATABASE"},
		{"unknown setting", appURL("127.0.0.1", s.Port, user, db, "sslmode=disable&nosuch_setting=1"),
			"refused a setting from DATABASE_URL", "parameter in DATABASE_URL"},
		{"sslmode=require without TLS on the server", appURL("127.0.0.1", s.Port, user, db, "sslmode=require"),
			"does not accept TLS connections, but sslmode=require requires TLS", "enable ssl on the server"},
	}
	// Each case twice: on Pro's own connection, and through a Probe that
	// connects with a pool, as boot's does, whose errors come wrapped by
	// pgxpool.
	probes := map[string]provision.Probe{"own connection": nil, "pool probe": poolProbe}
	for _, tc := range cases {
		for how, probe := range probes {
			t.Run(tc.name+", "+how, func(t *testing.T) {
				t.Parallel()
				p, logs := newPro(t, pro.Config{URL: tc.url, Probe: probe})
				_, err := provisionNow(t, p)
				ae := actionError(t, err)
				mustContain(t, "Problem", ae.Problem, tc.problem)
				mustContain(t, "Hint", ae.Hint, tc.hint)
				if !strings.Contains(tc.url, "sslmode=require") && strings.Contains(strings.ToLower(err.Error()), "tls") {
					t.Errorf("the reason speaks of TLS: %v", err)
				}
				c := p.Status()
				if c.Status != status.Fail || c.Attempts != 1 || c.Hint != ae.Hint || c.Detail != ae.Problem || c.LastError == "" {
					t.Errorf("status: %+v", c)
				}
				if logs.count("ERROR", tc.problem) != 1 {
					t.Errorf("want one error line naming the problem")
				}
			})
		}
	}
}

// poolProbe is a provision.Probe like boot's: the server's version on the
// first connection of a pool (closed here, kept by boot).
func poolProbe(ctx context.Context, dsn provision.DSN) (int, error) {
	pool, err := pgxpool.New(ctx, dsn.Secret())
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	return provision.ServerVersionNum(ctx, conn)
}

// A role over its connection limit gets 53300, as a server out of
// connections would: that passes, so Provision waits for it.
func TestTooManyConnectionsIsRetried(t *testing.T) {
	t.Parallel()
	s := pgtest.Shared(t)
	user, db := newRole(t, s, "CONNECTION LIMIT 0")
	p, _ := newPro(t, pro.Config{URL: appURL("127.0.0.1", s.Port, user, db, "sslmode=disable")})
	done := provisionAsync(t.Context(), p)
	c := waitStatus(t, p, "retries", retrying)
	mustContain(t, "LastError", c.LastError, "53300")
	superSQL(t, s, fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT -1", user))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Provision did not return after the limit was lifted")
	}
}

// An unknown host is retried with a hint: in a cluster, the name may
// resolve only once the database exists (see the package doc).
func TestUnknownHostIsRetriedWithHint(t *testing.T) {
	t.Parallel()
	p, logs := newPro(t, pro.Config{URL: appURL("nohost.invalid", 5432, "app", "app", "")})
	ctx, cancel := context.WithCancel(t.Context())
	done := provisionAsync(ctx, p)
	c := waitStatus(t, p, "retries", retrying)
	mustContain(t, "Hint", c.Hint, "host name in DATABASE_URL")
	mustContain(t, "Detail", c.Detail, `cannot resolve host "nohost.invalid"`)
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Errorf("Provision after cancel = %v", r.err)
	}
	if logs.count("WARN", "nohost.invalid") != 1 {
		t.Errorf("want one warning about the unknown host")
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	t.Parallel()
	// A port where nothing listens, and a long back-off: Provision is
	// asleep between attempts when the cancel comes.
	t.Run("between attempts", func(t *testing.T) {
		t.Parallel()
		url := appURL("127.0.0.1", pgtest.FreePort(t), "app", "app", "sslmode=disable")
		p, _ := newPro(t, pro.Config{URL: url, InitialBackoff: 10 * time.Second})
		cancelAndTime(t, p, func(c status.Check) bool { return !c.NextRetry.IsZero() })
	})
	// A peer that accepts and never answers, and a long connect timeout:
	// Provision is inside an attempt when the cancel comes.
	t.Run("during an attempt", func(t *testing.T) {
		t.Parallel()
		addr, accepted := silentServer(t)
		p, _ := newPro(t, pro.Config{URL: "postgres://app:" + secret + "@" + addr + "/app?sslmode=disable", ConnectTimeout: time.Minute})
		cancelAndTime(t, p, func(status.Check) bool {
			select {
			case <-accepted:
				return true
			default:
				return false
			}
		})
	})
}

func cancelAndTime(t *testing.T, p *pro.Pro, ready func(status.Check) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := provisionAsync(ctx, p)
	waitStatus(t, p, "the moment to cancel", ready)
	start := time.Now()
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("Provision after cancel = %v, want context.Canceled", r.err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Provision took %s to return after cancel", d)
		}
		if !p.Status().NextRetry.IsZero() {
			t.Errorf("Status still promises a retry after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Provision did not return within 5 s of cancel")
	}
}

func TestSilentServerTimesOutAndRetries(t *testing.T) {
	t.Parallel()
	addr, _ := silentServer(t)
	p, _ := newPro(t, pro.Config{URL: "postgres://app:" + secret + "@" + addr + "/app?sslmode=disable", ConnectTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	provisionAsync(ctx, p)
	c := waitStatus(t, p, "retries", retrying)
	mustContain(t, "Detail", c.Detail, "no answer from "+addr+" in time")
	mustContain(t, "LastError", c.LastError, "timeout")
}

// silentServer accepts TCP connections and never says a word, as a
// firewall that drops packets or a hung server would. The channel closes
// on the first connection.
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if conns = append(conns, c); len(conns) == 1 {
				close(ch)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

func TestMalformedConfigRefusedByNew(t *testing.T) {
	t.Parallel()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url, ca, want string
	}{
		{"empty", "  ", "", "DATABASE_URL is empty"},
		{"other scheme", "mysql://app:" + secret + "@db/app", "", `scheme "mysql"`},
		{"upper-case scheme", "POSTGRES://app:" + secret + "@db/app", "", `scheme "POSTGRES"`},
		{"port not a number", "postgres://app:" + secret + "@db:port/app", "", "invalid port"},
		{"unescaped slash in password", "postgres://app:S3cret/Passw0rd-grep-me@db:5432/app", "", "invalid port"},
		{"bad percent escape", "postgres://app:" + secret + "%zz@db/app", "", "invalid percent-encoded token in password"},
		{"unterminated IPv6", "postgres://app:" + secret + "@[::1/app", "", `matching "]"`},
		{"query without =", "postgres://app:" + secret + "@db/app?sslmode", "", "missing key/value separator"},
		{"unknown sslmode", "postgres://app:" + secret + "@db/app?sslmode=always", "", "sslmode is invalid"},
		{"bad pool setting", "postgres://app:" + secret + "@db/app?pool_max_conns=many", "", "pool_max_conns"},
		{"unterminated quote", "host=db user=app password='" + secret, "", "unterminated quoted string"},
		{"plain words", "the database on db", "", "invalid keyword/value"},
		{"missing CA file", "postgres://app:" + secret + "@db/app?sslmode=verify-full", "/nonexistent/ca.pem", "cannot read UPLINK_DATABASE_CA_FILE"},
		{"CA file without PEM", "postgres://app:" + secret + "@db/app?sslmode=verify-full", notPEM, "holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pro.New(pro.Config{URL: tc.url, CAFile: tc.ca})
			if p != nil || err == nil {
				t.Fatalf("New accepted %q", tc.url)
			}
			ae := actionError(t, err)
			mustContain(t, "error", ae.Error(), tc.want)
			if ae.Hint == "" {
				t.Errorf("no hint for %q", tc.name)
			}
		})
	}
}

func TestProvisionerBasics(t *testing.T) {
	t.Parallel()
	p, err := pro.New(pro.Config{URL: appURL("db.example", 5432, "app", "app", "sslmode=disable")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Provision(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Provision with a done context = %v", err)
	}
	var _ provision.Provisioner = p
	if p.Mode() != provision.ModePro || p.Failed() != nil || p.Stop(ctx) != nil || p.Stop(ctx) != nil {
		t.Error("Mode, Failed or Stop misbehave")
	}
}

func TestTuningChecked(t *testing.T) {
	t.Parallel()
	url := "postgres://db/app"
	for _, cfg := range []pro.Config{
		{URL: url, InitialBackoff: -time.Second},
		{URL: url, ConnectTimeout: -1},
		{URL: url, InitialBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		if _, err := pro.New(cfg); err == nil || status.IsAction(err) {
			t.Errorf("New(%+v) = %v, want a plain error", cfg, err)
		}
	}
	// One bound given: the default of the other gives way.
	for _, cfg := range []pro.Config{
		{URL: url, MaxBackoff: 100 * time.Millisecond},
		{URL: url, InitialBackoff: time.Minute},
	} {
		if _, err := pro.New(cfg); err != nil {
			t.Errorf("New(%+v) = %v", cfg, err)
		}
	}
}

func ExampleNew() {
	_, err := pro.New(pro.Config{URL: "postgres://app:S3cret@db.example:port/app"})
	var ae *status.ActionError
	if errors.As(err, &ae) {
		fmt.Println(ae.Problem)
	}
	// Output: DATABASE_URL cannot be parsed: invalid port
}

// TestProbeIsTheReadinessCheck: with Config.Probe, Provision connects
// through it alone, once, and checks the version it reports.
func TestProbeIsTheReadinessCheck(t *testing.T) {
	t.Parallel()
	s := pgtest.Shared(t)
	user, db := newRole(t, s, "")
	url := appURL("127.0.0.1", s.Port, user, db, "sslmode=disable")
	var calls int
	var got provision.DSN
	p, _ := newPro(t, pro.Config{URL: url, Probe: func(ctx context.Context, dsn provision.DSN) (int, error) {
		calls++
		got = dsn
		return poolProbe(ctx, dsn)
	}})
	dsn, err := provisionNow(t, p)
	if err != nil || calls != 1 || got != dsn {
		t.Fatalf("Provision = %v, %v; probe called %d times with %v", dsn, err, calls, got)
	}

	old, _ := newPro(t, pro.Config{URL: url, Probe: func(context.Context, provision.DSN) (int, error) { return 120022, nil }})
	_, err = provisionNow(t, old)
	mustContain(t, "Problem", actionError(t, err).Problem, "PostgreSQL 12.22 at")
}
