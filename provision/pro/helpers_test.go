package pro_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/pro"
	"github.com/uplinkhq/uplink/status"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// secret is the password of the roles the tests connect as: easy to grep
// for in Status and in the logs, where it must never show up.
const secret = "S3cretPassw0rd-grep-me"

// logBuffer collects a Pro's log lines as JSON, safe for the goroutine
// that runs Provision.
type logBuffer struct{ testutil.Buffer }

// count tells how many lines have the level and a message containing msg.
func (b *logBuffer) count(level, msg string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == level && strings.Contains(line.Msg, msg) {
			n++
		}
	}
	return n
}

// newPro builds a Pro with quick retries and a debug log, and checks when
// the test ends that neither its Status nor its log holds the secret.
func newPro(t *testing.T, cfg pro.Config) (*pro.Pro, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = testutil.JSONLogger(logs)
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	}
	p, err := pro.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		js, err := json.Marshal(p.Status())
		if err != nil {
			t.Errorf("Status does not marshal: %v", err)
		}
		noSecret(t, "Status JSON", string(js))
		noSecret(t, "log", logs.String())
		if t.Failed() {
			t.Logf("status: %s\nlog:\n%s", js, logs)
		}
	})
	return p, logs
}

func noSecret(t *testing.T, where, text string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("%s holds the password: %s", where, text)
	}
}

type result struct {
	dsn provision.DSN
	err error
}

// provisionAsync runs Provision until it returns or the test ends.
func provisionAsync(ctx context.Context, p *pro.Pro) <-chan result {
	ch := make(chan result, 1)
	go func() {
		dsn, err := p.Provision(ctx)
		ch <- result{dsn, err}
	}()
	return ch
}

// provisionNow runs Provision with a deadline that no passing test gets near.
func provisionNow(t *testing.T, p *pro.Pro) (provision.DSN, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return p.Provision(ctx)
}

// waitStatus polls Status until cond holds, failing the test after 10 s.
func waitStatus(t *testing.T, p *pro.Pro, what string, cond func(status.Check) bool) status.Check {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := p.Status()
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status never showed %s; last: %+v", what, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retrying is the Status of a Provision that failed a few times and waits.
func retrying(c status.Check) bool {
	return c.Status == status.Warn && c.Attempts >= 3 && c.LastError != "" && !c.NextRetry.IsZero()
}

func actionError(t *testing.T, err error) *status.ActionError {
	t.Helper()
	var ae *status.ActionError
	if !errors.As(err, &ae) {
		t.Fatalf("want a *status.ActionError, got %T: %v", err, err)
	}
	noSecret(t, "ActionError", err.Error())
	return ae
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s %q does not contain %q", what, text, w)
		}
	}
}

var roleSeq atomic.Int64

// newRole makes a login role with the secret password and a database it
// owns on s, and returns both names.
func newRole(t *testing.T, s *pgtest.Server, options string) (user, db string) {
	t.Helper()
	n := roleSeq.Add(1)
	user, db = fmt.Sprintf("app%d", n), fmt.Sprintf("appdb%d", n)
	superSQL(t, s,
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s", user, secret, options),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, user))
	return user, db
}

func superSQL(t *testing.T, s *pgtest.Server, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func appURL(host string, port int, user, db, query string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?%s", user, secret, host, port, db, query)
}
