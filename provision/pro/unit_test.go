package pro

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// No server older than 13 can run here (the test machine has one
// PostgreSQL), so the version decision is tested on numbers alone.
func TestVersion(t *testing.T) {
	for num, want := range map[int]string{150018: "15.18", 130000: "13.0", 170002: "17.2", 120015: "12.15", 90624: "9.6.24"} {
		if got := formatVersion(num); got != want {
			t.Errorf("formatVersion(%d) = %q, want %q", num, got, want)
		}
	}
	for _, num := range []int{130000, 130021, 150018, 180000} {
		if err := checkVersion(num, "db:5432"); err != nil {
			t.Errorf("checkVersion(%d) = %v", num, err)
		}
	}
	for num, want := range map[int]string{129999: "PostgreSQL 12.9999", 120015: "PostgreSQL 12.15 at db:5432 is older than 13", 90624: "PostgreSQL 9.6.24"} {
		err := checkVersion(num, "db:5432")
		if err == nil || !strings.Contains(err.Problem, want) || !strings.Contains(err.Hint, "upgrade the server or point DATABASE_URL at a newer one") {
			t.Errorf("checkVersion(%d) = %+v, want %q and the upgrade hint", num, err, want)
		}
	}
}

func TestClassify(t *testing.T) {
	ci := &conninfo{target: "db:5432", host: "db", user: "app", database: "appdb", sslmode: "require"}
	pg := func(code string) error {
		return fmt.Errorf("failed to connect: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "msg " + code})
	}
	wrap := func(err error) error { return fmt.Errorf("failed to connect: dial error: %w", err) }
	cases := []struct {
		name    string
		err     error
		action  bool
		problem string
		hint    string
	}{
		{"wrong password", pg("28P01"), true, `rejected the password for user "app"`, "password"},
		{"pg_hba", pg("28000"), true, "refused user", "pg_hba.conf"},
		{"no database", pg("3D000"), true, `database "appdb" does not exist on db:5432`, "CREATE DATABASE"},
		{"no CONNECT", pg("42501"), true, "may not connect", "GRANT CONNECT"},
		{"unknown setting", pg("42704"), true, "refused a setting", "parameter"},
		{"bad setting value", pg("22023"), true, "refused a setting", "parameter"},
		{"starting up", pg("57P03"), false, "msg 57P03 (SQLSTATE 57P03)", ""},
		{"too many connections", pg("53300"), false, "SQLSTATE 53300", ""},
		{"admin shutdown", pg("57P01"), false, "SQLSTATE 57P01", ""},
		{"internal error", pg("XX000"), false, "SQLSTATE XX000", ""},
		{"refused", wrap(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), false, "connection refused by db:5432", ""},
		{"timeout", wrap(context.DeadlineExceeded), false, "no answer from db:5432 in time", ""},
		{"NXDOMAIN", wrap(&net.DNSError{Name: "db", Err: "no such host", IsNotFound: true}), false, `cannot resolve host "db"`, "host name in DATABASE_URL"},
		{"DNS down", wrap(&net.DNSError{Name: "db", Err: "server misbehaving", IsTemporary: true}), false, `cannot resolve host "db"`, "host name in DATABASE_URL"},
		{"no TLS on the server", wrap(errors.New("tls error: server refused TLS connection")), true, "does not accept TLS connections, but sslmode=require", "enable ssl"},
		{"untrusted", wrap(x509.UnknownAuthorityError{}), true, "not signed by a trusted CA", "UPLINK_DATABASE_CA_FILE"},
		{"wrong host", wrap(x509.HostnameError{Host: "db"}), true, `not valid for host "db"`, "verify-ca"},
		{"expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), true, "cannot be verified", "renew"},
		{"unknown", errors.New("something odd"), false, "cannot connect to db:5432", ""},
	}
	for _, c := range cases {
		v := classify(c.err, ci)
		if v.action != c.action || !strings.Contains(v.problem, c.problem) || !strings.Contains(v.hint, c.hint) || (c.hint == "" && v.hint != "") {
			t.Errorf("%s: classify = %+v, want action=%v problem ~%q hint ~%q", c.name, v, c.action, c.problem, c.hint)
		}
	}
}

func TestSSLModeOf(t *testing.T) {
	cases := map[string]string{
		"host=db":                                        "prefer",
		"host=db sslmode=disable":                        "disable",
		"host=db sslmode=allow":                          "allow",
		"host=db sslmode=prefer":                         "prefer",
		"host=db sslmode=require":                        "require",
		"host=db sslmode=verify-ca":                      "verify-ca",
		"host=db sslmode=verify-full":                    "verify-full",
		"host=db sslnegotiation=direct":                  "require",
		"host=/run/postgresql sslmode=verify-full":       "disable",
		"postgres://a,b/db?sslmode=prefer":               "prefer",
		"postgres://db/app?ssl=true":                     "require",
		"host=db sslmode=verify-full sslrootcert=system": "verify-full",
	}
	for dsn, want := range cases {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if got := sslModeOf(cfg); got != want {
			t.Errorf("sslModeOf(%s) = %s, want %s", dsn, got, want)
		}
	}
}

func TestWithRootCert(t *testing.T) {
	cases := []struct{ dsn, ca, want string }{
		{"postgres://u:p@db/app", "/etc/ca.pem", "postgres://u:p@db/app?sslrootcert=/etc/ca.pem"},
		{"postgres://u:p@db/app?sslmode=verify-full", "/etc/ca.pem", "postgres://u:p@db/app?sslmode=verify-full&sslrootcert=/etc/ca.pem"},
		{"postgres://u:p?x@db/app", "/etc/my ca+&.pem", "postgres://u:p?x@db/app?sslrootcert=/etc/my%20ca%2B%26.pem"},
		{"host=db sslmode=verify-full", `/etc/it's\ca.pem`, `host=db sslmode=verify-full sslrootcert='/etc/it\'s\\ca.pem'`},
	}
	for _, c := range cases {
		if got := withRootCert(c.dsn, c.ca); got != c.want {
			t.Errorf("withRootCert(%q, %q)\n got %q\nwant %q", c.dsn, c.ca, got, c.want)
		}
	}
}

func TestScrub(t *testing.T) {
	const pw = "S3cret/Passw0rd-grep-me"
	secrets := guessSecrets("postgres://app:" + pw + "@db:5432/app")
	for _, msg := range []string{
		`invalid port ":` + pw + `@db"`,
		"parse postgres://app:" + pw + "@db/app failed",
		"password=" + pw,
	} {
		if got := scrub(msg, secrets); strings.Contains(got, "Passw0rd") {
			t.Errorf("scrub(%q) = %q", msg, got)
		}
	}
	if got := scrub("a b c", []string{"a"}); got != "a b c" {
		t.Errorf("a one-letter password masked text: %q", got)
	}
}

func TestOneLine(t *testing.T) {
	cases := map[string]string{
		"failed to connect to `user=app database=app`:\n\thostname resolving error: lookup db: no such host\n\tlookup db: no such host": "failed to connect to `user=app database=app`: hostname resolving error: lookup db: no such host",
		"failed:\n\ta: refused\n\tb: timeout": "failed: a: refused; b: timeout",
		"plain":                               "plain",
	}
	for in, want := range cases {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
