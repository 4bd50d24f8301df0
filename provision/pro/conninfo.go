package pro

import (
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// urlHint is the hint for every DATABASE_URL that cannot be used as written.
const urlHint = "fix DATABASE_URL: postgres://user:password@host:5432/dbname?sslmode=verify-full, " +
	"or key=value form (host=... user=... dbname=...); percent-encode special characters in the password"

// conninfo is what New learns from DATABASE_URL: the connection string to
// hand out, its parsed form for probing, and the password-free facts that
// messages and Status show.
type conninfo struct {
	dsn     provision.DSN
	conn    *pgxpool.Config
	secrets []string

	target   string // where we connect, e.g. "db.example:5432", for messages
	host     string
	port     uint16
	database string
	user     string
	sslmode  string // the mode pgx will actually apply, see sslModeOf
}

// parseConninfo checks DATABASE_URL and applies the CA file. Every failure
// is an ActionError: a malformed URL does not fix itself.
func parseConninfo(raw, caFile string) (*conninfo, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, &status.ActionError{
			Problem: "DATABASE_URL is empty",
			Hint:    "set DATABASE_URL to the server to use, or use UPLINK_MODE=lite",
		}
	}
	if scheme := schemeOf(raw); scheme != "" && scheme != "postgres" && scheme != "postgresql" {
		return nil, &status.ActionError{
			Problem: fmt.Sprintf("DATABASE_URL has scheme %q; only postgres:// and postgresql:// (lower case) are PostgreSQL URLs", scheme),
			Hint:    urlHint,
		}
	}
	guessed := guessSecrets(raw)
	ci, err := parse(raw, guessed)
	if err != nil {
		return nil, err
	}
	if caFile == "" {
		return ci, nil
	}
	if err := checkCAFile(caFile); err != nil {
		return nil, err
	}
	if err := caApplies(ci, caFile); err != nil {
		return nil, err
	}
	return parse(withRootCert(raw, caFile), guessed)
}

// parse runs the connection string through the parser the application's
// pool will use, so that whatever New accepts, pgxpool accepts too (pool_*
// parameters included, which a plain pgx connection would send to the
// server as unknown settings).
func parse(dsn string, guessed []string) (*conninfo, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, &status.ActionError{
			Problem: "DATABASE_URL cannot be parsed: " + scrub(parseReason(err), guessed),
			Hint:    urlHint,
		}
	}
	c := cfg.ConnConfig
	ci := &conninfo{
		dsn:      provision.DSN(dsn),
		conn:     cfg,
		secrets:  append([]string{c.Password}, guessed...),
		host:     c.Host,
		port:     c.Port,
		database: c.Database,
		user:     c.User,
		sslmode:  sslModeOf(&c.Config),
	}
	_, ci.target = pgconn.NetworkAddress(c.Host, c.Port)
	return ci, nil
}

var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

func schemeOf(s string) string {
	if m := schemeRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// parseReason drops the connection string that pgx quotes at the front of
// its parse errors ("cannot parse `...`: reason"): pgx masks passwords
// there only on a best-effort basis, and the reason is what a person needs.
// Cutting at the last "`: " can only cut too much, never too little.
func parseReason(err error) string {
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, "cannot parse `"); ok {
		if i := strings.LastIndex(rest, "`: "); i >= 0 {
			return rest[i+len("`: "):]
		}
		return "malformed connection string"
	}
	return s
}

// guessSecrets finds what may be the password of a URL that pgx could not
// parse, so that no message quotes it even in pieces. It takes everything
// between the first ':' of the userinfo and the last '@', which covers a
// password holding an unescaped '/', '?' or '@'.
func guessSecrets(raw string) []string {
	if !isURL(raw) {
		return nil // key=value passwords are masked by provision.Redact
	}
	_, rest, _ := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
		return []string{pw}
	}
	return nil
}

// minSecretLen keeps scrub from masking every "a" of a message because the
// password is "a": such a password is no secret anyway.
const minSecretLen = 4

// scrub makes text safe for Status and logs: connection strings in it lose
// their passwords, and so does any literal copy of a known password.
func scrub(s string, secrets []string) string {
	s = provision.Redact(s)
	for _, sec := range secrets {
		if len(sec) >= minSecretLen {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// sslModeOf tells the sslmode pgx will apply, read from the TLS settings it
// built rather than from the text, so that PGSSLMODE, service files and
// sslnegotiation=direct (which upgrades prefer to require) count too. pgx
// expresses prefer and allow as a TLS and a plain attempt at the same
// address, one as the fallback of the other.
func sslModeOf(c *pgconn.Config) string {
	if network, _ := pgconn.NetworkAddress(c.Host, c.Port); network == "unix" {
		return "disable" // libpq ignores TLS on unix sockets
	}
	first := c.TLSConfig
	var second *pgconn.FallbackConfig
	if len(c.Fallbacks) > 0 && c.Fallbacks[0].Host == c.Host && c.Fallbacks[0].Port == c.Port {
		second = c.Fallbacks[0]
	}
	switch {
	case first == nil && second != nil && second.TLSConfig != nil:
		return "allow"
	case first == nil:
		return "disable"
	case second != nil && second.TLSConfig == nil:
		return "prefer"
	case !first.InsecureSkipVerify:
		return "verify-full"
	case first.VerifyPeerCertificate != nil:
		return "verify-ca"
	}
	return "require"
}

func checkCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return &status.ActionError{
			Problem: "cannot read UPLINK_DATABASE_CA_FILE",
			Err:     err,
			Hint:    "point UPLINK_DATABASE_CA_FILE at a readable PEM file holding the CA that signed the server's certificate",
		}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return &status.ActionError{
			Problem: fmt.Sprintf("UPLINK_DATABASE_CA_FILE %s holds no PEM certificate", path),
			Hint:    "point UPLINK_DATABASE_CA_FILE at a PEM file (-----BEGIN CERTIFICATE-----) holding the CA that signed the server's certificate",
		}
	}
	return nil
}

// caApplies refuses a CA file that the connection would silently ignore:
// whoever sets one expects the server to be verified, and sslmode prefer
// (libpq's default), allow and disable never verify. Upgrading the mode
// behind the operator's back would make DATABASE_URL mean something else
// to Uplink than to psql.
func caApplies(ci *conninfo, caFile string) error {
	if network, _ := pgconn.NetworkAddress(ci.host, ci.port); network == "unix" {
		return &status.ActionError{
			Problem: fmt.Sprintf("UPLINK_DATABASE_CA_FILE is set but DATABASE_URL connects through the unix socket %s, where TLS does not apply", ci.target),
			Hint:    "unset UPLINK_DATABASE_CA_FILE, or connect over TCP with sslmode=verify-full",
		}
	}
	switch ci.sslmode {
	case "disable", "allow", "prefer":
		return &status.ActionError{
			Problem: fmt.Sprintf("UPLINK_DATABASE_CA_FILE is set but sslmode=%s never verifies the server's certificate", ci.sslmode),
			Hint:    "add sslmode=verify-full (or verify-ca) to DATABASE_URL, or unset UPLINK_DATABASE_CA_FILE",
		}
	}
	return nil
}

// withRootCert adds sslrootcert=caFile to a connection string. Both forms
// let a later setting override an earlier one, so the CA file wins over
// any sslrootcert already there.
func withRootCert(dsn, caFile string) string {
	if !isURL(dsn) {
		quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(caFile)
		return dsn + " sslrootcert='" + quoted + "'"
	}
	// The query starts at the first '?' after the userinfo, which (as pgx
	// and libpq read it) ends at the first '@' before any '/'.
	_, rest, _ := strings.Cut(dsn, "://")
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		rest = rest[i+1:]
	}
	sep := "?"
	if strings.Contains(rest, "?") {
		sep = "&"
	}
	return dsn + sep + "sslrootcert=" + uriEscape(caFile)
}

// uriEscape percent-encodes all but unreserved characters and '/'. pgx
// decodes %XX only (a '+' stays a '+'), so url.QueryEscape would not do.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
