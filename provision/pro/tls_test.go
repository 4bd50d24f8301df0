package pro_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/provision/pro"
)

func TestTLS(t *testing.T) {
	t.Parallel()
	ca, otherCA := newCA(t, "Uplink test CA"), newCA(t, "Some other CA")
	s := pgtest.New(t)
	serveTLS(t, s, ca, "localhost")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	user, db := newRole(t, s, "")
	dir := t.TempDir()
	caFile, otherCAFile := writePEM(t, dir, "ca.pem", ca.der), writePEM(t, dir, "other-ca.pem", otherCA.der)
	url := func(host, query string) string { return appURL(host, s.Port, user, db, query) }

	good := []struct{ name, url, caFile, sslmode string }{
		{"verify-full", url("localhost", "sslmode=verify-full"), caFile, "verify-full"},
		{"verify-full key=value", fmt.Sprintf("host=localhost port=%d user=%s password=%s dbname=%s sslmode=verify-full", s.Port, user, secret, db), caFile, "verify-full"},
		{"verify-ca ignores the host name", url("127.0.0.1", "sslmode=verify-ca"), caFile, "verify-ca"},
		{"require with a CA checks the chain", url("127.0.0.1", "sslmode=require"), caFile, "verify-ca"},
		{"require without a CA", url("127.0.0.1", "sslmode=require"), "", "require"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newPro(t, pro.Config{URL: tc.url, CAFile: tc.caFile})
			dsn, err := provisionNow(t, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Status().Data["sslmode"]; got != tc.sslmode {
				t.Errorf("Data[sslmode] = %v, want %s", got, tc.sslmode)
			}
			if tc.caFile != "" && !strings.Contains(dsn.Secret(), "sslrootcert=") {
				t.Errorf("the DSN does not carry the CA: %s", dsn)
			}
			// The DSN alone must give the same verified TLS connection.
			conn, err := pgx.Connect(t.Context(), dsn.Secret())
			if err != nil {
				t.Fatalf("the DSN does not connect: %v", err)
			}
			defer conn.Close(t.Context())
			var ssl bool
			if err := conn.QueryRow(t.Context(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Errorf("connection through the DSN: ssl=%v, %v", ssl, err)
			}
		})
	}

	bad := []struct{ name, url, caFile, problem string }{
		{"verify-full with another CA", url("localhost", "sslmode=verify-full"), otherCAFile, "not signed by a trusted CA"},
		{"verify-full with the wrong host name", url("127.0.0.1", "sslmode=verify-full"), caFile, `not valid for host "127.0.0.1"`},
		{"verify-ca with another CA", url("127.0.0.1", "sslmode=verify-ca"), otherCAFile, "not signed by a trusted CA"},
		{"verify-full with the system CAs", url("localhost", "sslmode=verify-full"), "", "not signed by a trusted CA"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newPro(t, pro.Config{URL: tc.url, CAFile: tc.caFile})
			_, err := provisionNow(t, p)
			ae := actionError(t, err)
			mustContain(t, "Problem", ae.Problem, tc.problem)
			if ae.Hint == "" {
				t.Error("no hint")
			}
		})
	}

	t.Run("CA file with a mode that never verifies", func(t *testing.T) {
		t.Parallel()
		for _, query := range []string{"", "sslmode=prefer", "sslmode=disable", "sslmode=allow"} {
			_, err := pro.New(pro.Config{URL: url("localhost", query), CAFile: caFile})
			ae := actionError(t, err)
			mustContain(t, "Problem", ae.Problem, "never verifies the server's certificate")
			mustContain(t, "Hint", ae.Hint, "sslmode=verify-full")
		}
	})
}

// cert is a certificate with its key, as a CA or as a server holds it.
type cert struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

// issue makes a key and a certificate for tmpl, signed by parent, or by
// itself when parent is nil.
func issue(t *testing.T, tmpl *x509.Certificate, parent *cert) cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert{c, der, key}
}

func newCA(t *testing.T, name string) cert {
	return issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil)
}

// serveTLS gives s a certificate from ca for host (DNS name only, so that
// connecting by IP address fails verify-full) and turns ssl on.
func serveTLS(t *testing.T, s *pgtest.Server, ca cert, host string) {
	t.Helper()
	leaf := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: host},
		DNSNames:    []string{host},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &ca)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.key)
	if err != nil {
		t.Fatal(err)
	}
	user := pgtest.User(t)
	for name, block := range map[string]*pem.Block{
		"server.crt": {Type: "CERTIFICATE", Bytes: leaf.der},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		path := filepath.Join(s.DataDir, name)
		// PostgreSQL refuses a key that others may read.
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := user.Chown(path); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	if _, err := conf.WriteString("\nssl = on\n"); err != nil {
		t.Fatal(err)
	}
}

func writePEM(t *testing.T, dir, name string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
