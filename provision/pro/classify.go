package pro

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// verdict is what a failed attempt means: a short problem line, what a
// person could do about it, and whether only a person can (action) or
// retrying may help. The package doc has the table.
type verdict struct {
	action  bool
	problem string
	hint    string
	// cause, when set, is the part of the error that matters: the
	// server's answer, without what earlier attempts said (with
	// sslmode=prefer, pgx's error also tells that TLS was refused).
	cause error
}

// dnsHint goes with every failed host lookup. Uplink keeps retrying because
// in a cluster the database's name often appears only after the database
// does; the hint tells the operator where to look if it never does.
const dnsHint = "check the host name in DATABASE_URL; Uplink keeps retrying in case its DNS record does not exist yet"

// classify reads a failed connection attempt. Anything it does not know is
// worth a retry: a dependency outage must never stop the process, and the
// error text still reaches Status.
func classify(err error, ci *conninfo) verdict {
	var (
		pgErr     *pgconn.PgError
		dnsErr    *net.DNSError
		unknownCA x509.UnknownAuthorityError
		wrongHost x509.HostnameError
		badCert   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &pgErr):
		v := classifyServer(pgErr, ci)
		v.cause = pgErr
		return v
	case errors.As(err, &dnsErr):
		return verdict{problem: fmt.Sprintf("cannot resolve host %q", dnsErr.Name), hint: dnsHint}
	// pgx reports the server's "no TLS here" answer with a plain string.
	case strings.Contains(err.Error(), "server refused TLS connection"), errors.As(err, &notTLS):
		return verdict{
			action:  true,
			problem: fmt.Sprintf("PostgreSQL at %s does not accept TLS connections, but sslmode=%s requires TLS", ci.target, ci.sslmode),
			hint:    "enable ssl on the server, or (on a trusted network only) set sslmode=prefer or sslmode=disable in DATABASE_URL",
		}
	case errors.As(err, &unknownCA):
		return verdict{
			action:  true,
			problem: fmt.Sprintf("the certificate of PostgreSQL at %s is not signed by a trusted CA", ci.target),
			hint:    "set UPLINK_DATABASE_CA_FILE to the PEM file of the CA that signed the server's certificate",
		}
	case errors.As(err, &wrongHost):
		return verdict{
			action:  true,
			problem: fmt.Sprintf("the certificate of PostgreSQL at %s is not valid for host %q", ci.target, ci.host),
			hint:    "put a host name the certificate names into DATABASE_URL, or use sslmode=verify-ca to skip the host name check",
		}
	case errors.As(err, &badCert), errors.As(err, &verifyErr):
		return verdict{
			action:  true,
			problem: fmt.Sprintf("the certificate of PostgreSQL at %s cannot be verified", ci.target),
			hint:    "renew or fix the server's certificate, or set UPLINK_DATABASE_CA_FILE to the CA that signed it",
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		return verdict{problem: fmt.Sprintf("connection refused by %s", ci.target)}
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return verdict{problem: fmt.Sprintf("no answer from %s in time", ci.target)}
	}
	return verdict{problem: fmt.Sprintf("cannot connect to %s", ci.target)}
}

// classifyServer reads an error the server sent while we connected. Only
// our own settings can cause classes 28 (authorization), 22 and 42 (a bad
// parameter in the startup packet, a missing CONNECT privilege) and 3D000;
// they stay until someone changes something.
func classifyServer(e *pgconn.PgError, ci *conninfo) verdict {
	class := e.Code[:min(2, len(e.Code))]
	switch {
	case e.Code == "28P01":
		return verdict{
			action:  true,
			problem: fmt.Sprintf("PostgreSQL at %s rejected the password for user %q", ci.target, ci.user),
			hint:    "check the user name and password in DATABASE_URL",
		}
	case class == "28":
		return verdict{
			action:  true,
			problem: fmt.Sprintf("PostgreSQL at %s refused user %q: %s", ci.target, ci.user, e.Message),
			hint:    "check the user in DATABASE_URL and the server's pg_hba.conf (it may accept only TLS connections: sslmode=require)",
		}
	case e.Code == "3D000":
		return verdict{
			action:  true,
			problem: fmt.Sprintf("database %q does not exist on %s", ci.database, ci.target),
			hint:    fmt.Sprintf("create it (CREATE DATABASE %q) or fix the database name in DATABASE_URL", ci.database),
		}
	case e.Code == "42501":
		return verdict{
			action:  true,
			problem: fmt.Sprintf("user %q may not connect to database %q on %s", ci.user, ci.database, ci.target),
			hint:    fmt.Sprintf("GRANT CONNECT ON DATABASE %q TO %q, or use another user in DATABASE_URL", ci.database, ci.user),
		}
	case class == "22", class == "42":
		return verdict{
			action:  true,
			problem: fmt.Sprintf("PostgreSQL at %s refused a setting from DATABASE_URL: %s", ci.target, e.Message),
			hint:    "remove or correct that parameter in DATABASE_URL",
		}
	}
	// 57P03 (starting up, shutting down, in recovery), 53300 (too many
	// connections), 57P01 (admin shutdown) and the rest: wait it out.
	return verdict{problem: fmt.Sprintf("PostgreSQL at %s: %s (SQLSTATE %s)", ci.target, e.Message, e.Code)}
}
