package pro

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/backoff"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// Defaults for Config's tuning fields.
const (
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Config says which server to use and how patiently to wait for it.
type Config struct {
	// URL is DATABASE_URL: a postgres:// or postgresql:// URL, or a libpq
	// key=value string. Required. pgx reads the PG* environment variables
	// for what it leaves out, as psql would.
	URL string
	// CAFile is UPLINK_DATABASE_CA_FILE: a PEM bundle of the CAs that may
	// sign the server's certificate. It overrides any sslrootcert in URL,
	// and needs sslmode require, verify-ca or verify-full there (New
	// refuses a CA file that would be ignored).
	CAFile string
	// Logger gets a warning per distinct problem, a debug line per retry
	// and an info line on connecting. Nil discards.
	Logger *slog.Logger
	// InitialBackoff is the wait after the first failed attempt; each
	// further failure doubles it up to MaxBackoff. Every wait is jittered
	// down by up to half so that replicas started together spread out.
	// Defaults: DefaultInitialBackoff (1 s) and DefaultMaxBackoff (30 s),
	// or the given bound where that is smaller (initial) or larger (max).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// ConnectTimeout bounds one attempt: connect, TLS, authentication and
	// the version query. Default: DefaultConnectTimeout (10 s). A shorter
	// connect_timeout in URL applies as well.
	ConnectTimeout time.Duration
	// Probe, when set, opens the connection that proves the server ready
	// (see provision.Probe): boot's makes it the first of the app's pool.
	// Its errors are classified like those of Pro's own connection.
	// Default: a connection of Pro's own, closed again.
	Probe provision.Probe
	// Now tells the time shown in Status. Default: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	// A default must not clash with the one bound that was given.
	switch {
	case c.InitialBackoff == 0 && c.MaxBackoff > 0:
		c.InitialBackoff = min(DefaultInitialBackoff, c.MaxBackoff)
	case c.MaxBackoff == 0 && c.InitialBackoff > 0:
		c.MaxBackoff = max(DefaultMaxBackoff, c.InitialBackoff)
	}
	for _, d := range []struct {
		name  string
		field *time.Duration
		def   time.Duration
	}{
		{"InitialBackoff", &c.InitialBackoff, DefaultInitialBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
		{"ConnectTimeout", &c.ConnectTimeout, DefaultConnectTimeout},
	} {
		if *d.field < 0 {
			return c, fmt.Errorf("pro: %s is negative (%s)", d.name, *d.field)
		}
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if c.MaxBackoff < c.InitialBackoff {
		return c, fmt.Errorf("pro: MaxBackoff %s is shorter than InitialBackoff %s", c.MaxBackoff, c.InitialBackoff)
	}
	return c, nil
}

// Log attribute keys, constant so that log queries keep working.
const (
	logKeyTarget    = "target"
	logKeyAttempt   = "attempt"
	logKeyRetryIn   = "retry_in"
	logKeyNextRetry = "next_retry"
	logKeyError     = "error"
	logKeyHint      = "hint"
	logKeyVersion   = "server_version"
	logKeySSLMode   = "sslmode"
)

// Pro provides the PostgreSQL named by DATABASE_URL. It never starts,
// stops or falls back to a local server.
type Pro struct {
	cfg Config
	ci  *conninfo

	mu    sync.Mutex
	check status.Check
}

var _ provision.Provisioner = (*Pro)(nil)

// New checks cfg at once, so that a malformed DATABASE_URL or CA file is
// reported before any waiting, as a *status.ActionError whose text never
// holds the password. Other errors are programming errors in cfg's tuning.
func New(cfg Config) (*Pro, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ci, err := parseConninfo(cfg.URL, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	return &Pro{
		cfg: cfg,
		ci:  ci,
		check: status.Check{
			Status: status.Warn,
			Detail: "not connected yet to " + ci.target,
			Since:  cfg.Now(),
			Data: map[string]any{
				"host":     ci.host,
				"port":     ci.port,
				"database": ci.database,
				"user":     ci.user,
				"sslmode":  ci.sslmode,
			},
		},
	}, nil
}

// DSN is the connection string Provision returns, with the CA file
// applied, known without connecting: for tools such as `uplink db url`.
func (p *Pro) DSN() provision.DSN { return p.ci.dsn }

// Mode is provision.ModePro.
func (p *Pro) Mode() provision.Mode { return provision.ModePro }

// Provision waits until the server accepts a connection and is at least
// PostgreSQL 13, then returns the connection string (with the CA file
// applied). It retries what may fix itself for as long as ctx lasts and
// returns a *status.ActionError for what a person must fix; see the
// package doc for which is which.
func (p *Pro) Provision(ctx context.Context) (provision.DSN, error) {
	warned := make(map[string]bool)
	for attempt := 1; ; attempt++ {
		p.update(func(c *status.Check) {
			c.Attempts = attempt
			c.Detail = fmt.Sprintf("connecting to %s (attempt %d)", p.ci.target, attempt)
			c.NextRetry = time.Time{}
			if attempt == 1 { // a new round after an error starts clean
				c.Status, c.Hint = status.Warn, ""
			}
		})
		num, err := p.probe(ctx)
		if err == nil {
			if ae := checkVersion(num, p.ci.target); ae != nil {
				p.needsAction(ae, attempt)
				return "", ae
			}
			p.connected(num, attempt)
			return p.ci.dsn, nil
		}
		if ctx.Err() != nil {
			return "", p.stopped(ctx)
		}
		v := classify(err, p.ci)
		if v.action {
			cause := err
			if v.cause != nil {
				cause = v.cause
			}
			ae := &status.ActionError{Problem: v.problem, Hint: v.hint, Err: p.redacted(cause)}
			p.needsAction(ae, attempt)
			return "", ae
		}
		wait := backoff.Exp(attempt, p.cfg.InitialBackoff, p.cfg.MaxBackoff)
		p.retrying(v, p.redacted(err).Error(), attempt, wait, warned)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", p.stopped(ctx)
		case <-timer.C:
		}
	}
}

// probe makes one connection and asks for the server's version: through
// Config.Probe when set (the caller keeps that connection), else on a
// connection of its own, closed again.
func (p *Pro) probe(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	if p.cfg.Probe != nil {
		return p.cfg.Probe(ctx, p.ci.dsn)
	}
	conn, err := pgx.ConnectConfig(ctx, p.ci.conn.ConnConfig.Copy())
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	return provision.ServerVersionNum(ctx, conn)
}

// maxWarned bounds the memory of problems already warned about, should an
// error text vary without end.
const maxWarned = 64

// retrying records a failed attempt that may fix itself. The first time a
// problem shows up it is a warning; its repeats are debug lines, so a long
// outage does not flood the log.
func (p *Pro) retrying(v verdict, errText string, attempt int, wait time.Duration, warned map[string]bool) {
	now := p.cfg.Now()
	next := now.Add(wait)
	p.update(func(c *status.Check) {
		c.Status = status.Warn
		c.Detail = fmt.Sprintf("waiting for %s: %s (attempt %d)", p.ci.target, v.problem, attempt)
		c.LastError, c.LastErrorAt = errText, now
		c.Hint = v.hint
		c.NextRetry = next
	})
	attrs := []any{logKeyTarget, p.ci.target, logKeyAttempt, attempt,
		logKeyRetryIn, wait.Round(time.Millisecond).String(), logKeyNextRetry, next, logKeyError, errText}
	if v.hint != "" {
		attrs = append(attrs, logKeyHint, v.hint)
	}
	key := v.problem + "\n" + errText
	if warned[key] {
		p.cfg.Logger.Debug(v.problem+"; retrying", attrs...)
		return
	}
	if len(warned) >= maxWarned {
		clear(warned)
	}
	warned[key] = true
	p.cfg.Logger.Warn(v.problem+"; retrying", attrs...)
}

func (p *Pro) needsAction(ae *status.ActionError, attempt int) {
	now := p.cfg.Now()
	lastErr := ae.Problem
	if ae.Err != nil {
		lastErr = ae.Err.Error() // already redacted
	}
	p.update(func(c *status.Check) {
		c.Status = status.Fail
		c.Detail = ae.Problem
		c.LastError, c.LastErrorAt = lastErr, now
		c.Hint = ae.Hint
		c.NextRetry = time.Time{}
	})
	p.cfg.Logger.Error(ae.Problem, logKeyTarget, p.ci.target, logKeyAttempt, attempt,
		logKeyError, lastErr, logKeyHint, ae.Hint)
}

func (p *Pro) connected(num, attempt int) {
	version := formatVersion(num)
	p.update(func(c *status.Check) {
		c.Status = status.Pass
		c.Detail = "connected: PostgreSQL " + version
		c.Hint = ""
		c.NextRetry = time.Time{}
		c.Data["server_version"] = version
	})
	p.cfg.Logger.Info("connected to PostgreSQL", logKeyTarget, p.ci.target, logKeyAttempt, attempt,
		logKeyVersion, version, logKeySSLMode, p.ci.sslmode)
}

// stopped notes that Provision gave up because its caller is done.
func (p *Pro) stopped(ctx context.Context) error {
	p.update(func(c *status.Check) {
		c.Detail = "stopped connecting to " + p.ci.target
		c.NextRetry = time.Time{}
	})
	return ctx.Err()
}

// update changes the check under the lock, keeping Since true to its
// meaning: when Status last changed.
func (p *Pro) update(f func(*status.Check)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.check.Status
	f(&p.check)
	if p.check.Status != before {
		p.check.Since = p.cfg.Now()
	}
}

// Status reports the connection attempts for /status. It never blocks on
// the database, and holds no password.
func (p *Pro) Status() status.Check {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.check
	c.Data = maps.Clone(c.Data)
	return c
}

// Failed returns nil: Pro never gives up on a server it has reached. A
// server lost later is the database watch's business, not provisioning's.
func (p *Pro) Failed() <-chan error { return nil }

// Stop does nothing: Pro holds no connection once Provision returns.
func (p *Pro) Stop(context.Context) error { return nil }

// redacted keeps err's chain for errors.As while making sure its text, the
// only part that reaches Status and logs, holds no password and fits on
// one line.
func (p *Pro) redacted(err error) error {
	return &redactedError{msg: oneLine(scrub(err.Error(), p.ci.secrets)), err: err}
}

// oneLine puts a multi-line error on one line, dropping a line already
// said: pgx reports each host and each TLS fallback on a line of its own,
// often in the same words (a failed lookup shows up twice under the
// default sslmode=prefer).
func oneLine(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.Contains(b.String(), line):
			continue
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
