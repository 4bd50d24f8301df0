package lite

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// superuser is the bootstrap role initdb creates; Uplink uses it only to
// check readiness and to create the application role and database.
const superuser = "postgres"

// socketDSN builds a connection URL over the unix socket in runDir (the
// socket directory goes in the host parameter, which libpq and pgx both
// read). A URL rather than key=value, because it becomes DATABASE_URL for
// startup tasks and hooks, and scripts parse URLs.
func socketDSN(runDir string, port int, user, password, dbname string) provision.DSN {
	// %20, not url.Values' "+", for spaces: libpq and pgx decode query
	// values as URI components, where "+" is a plus.
	host := strings.ReplaceAll(url.QueryEscape(runDir), "+", "%20")
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Path: "/" + dbname,
		RawQuery: "host=" + host + "&port=" + strconv.Itoa(port) + "&sslmode=disable"}
	return provision.DSN(u.String())
}

// connect opens one connection; auth failures come back as
// *status.ActionError since waiting will not fix a wrong password.
func connect(ctx context.Context, dsn provision.DSN) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn.Secret())
	if err != nil {
		return nil, errors.New(provision.Redact(err.Error()))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
		return nil, &status.ActionError{
			Problem: "the cluster refused Uplink's password for role " + cfg.User,
			Err:     pgErr,
			Hint:    "restore pg/password and pg/superuser-password from a backup of this data directory; Uplink never resets the superuser's password on its own",
		}
	}
	return conn, err
}

// maintenanceDB is where Uplink connects as the superuser: template1
// always exists, while the postgres database may not (see ensureApp).
const maintenanceDB = "template1"

// cannotEnter reports a connection refused for its database: missing
// (3D000), or not accepting connections (55000).
func cannotEnter(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "3D000" || pgErr.Code == "55000")
}

// appSpec is what ensureApp makes sure of.
type appSpec struct {
	role, db, password string
	superPassword      string // the postgres role's own (see runParams)
	fresh              bool   // initdb has just made the cluster
	// verifier, if set, is what the role gets should it need a password;
	// else ensureApp makes one.
	verifier string
	// known is the verifierMAC recorded by the last start: a stored
	// verifier with that MAC matches the password without a PBKDF2.
	known string
}

// appResult says what ensureApp did.
type appResult struct {
	changed        bool   // created or repaired the application's role or database
	rehashed       bool   // rewrote the superuser's verifier with superIterations
	needPostgresDB bool   // the cluster has no postgres database
	mac            string // verifierMAC of the role's verifier now
}

// verifierMAC ties a stored verifier to the password it was made from,
// for pg/state.json: checking a verifier against the password costs a
// PBKDF2 at 4096 iterations, 1.5-2 ms of every warm start, where an HMAC
// costs microseconds. Keyed by the password, it no longer matches once
// pg/password changes, and tells nothing about it.
func verifierMAC(password, verifier string) string {
	return hex.EncodeToString(hmacSHA256([]byte(password), verifier))
}

// passwordMAC identifies a password for pg/state.json without revealing
// it: an HMAC keyed by the password (random, 32 bytes of entropy) over a
// fixed label.
func passwordMAC(password string) string {
	return hex.EncodeToString(hmacSHA256([]byte(password), "uplink superuser password"))
}

// ensureApp creates the application role and database when missing, and
// makes the role's password the one in pg/password again if someone
// changed it. It also rewrites the superuser's verifier with
// superIterations when it has more and matches pg/password: clusters made
// before Uplink handed initdb a verifier (see Lite.initdb) carry initdb's
// 4096, and every start logs in as the superuser.
//
// On a cluster initdb has just made, the application database is the
// empty postgres database renamed, which is instant, where CREATE
// DATABASE copies template1 and syncs it: about 15% of a cold boot. The
// caller creates a new postgres database afterwards, off the boot path,
// for the tools that expect one.
//
// The role and ownership changes commit together: one WAL flush instead
// of one per statement.
func ensureApp(ctx context.Context, conn *pgx.Conn, spec appSpec) (appResult, error) {
	role, db, password, fresh := spec.role, spec.db, spec.password, spec.fresh
	var res appResult
	var verifier, superVerifier *string
	var dbExists, postgresExists bool
	err := conn.QueryRow(ctx, `SELECT
		(SELECT rolpassword FROM pg_authid WHERE rolname = $1),
		(SELECT rolpassword FROM pg_authid WHERE rolname = $3),
		EXISTS (SELECT FROM pg_database WHERE datname = $2),
		EXISTS (SELECT FROM pg_database WHERE datname = 'postgres')`, role, db, superuser).Scan(&verifier, &superVerifier, &dbExists, &postgresExists)
	if err != nil {
		return res, fmt.Errorf("look up role %s and database %s: %w", role, db, err)
	}
	roleIdent, dbIdent := pgx.Identifier{role}.Sanitize(), pgx.Identifier{db}.Sanitize()
	// app and rehash may share one transaction; CREATE DATABASE cannot
	// run in one.
	var app, rehash []string
	var createDB string
	// Passwords go over as SCRAM verifiers, never in clear text: a failed
	// statement is written to the server log whole.
	newVerifier := func() string {
		v := spec.verifier
		if v == "" {
			v = scramVerifier(password, appIterations)
		}
		res.mac = verifierMAC(password, v)
		return quoteLiteral(v)
	}
	switch {
	case verifier == nil:
		app = append(app, "CREATE ROLE "+roleIdent+" LOGIN PASSWORD "+newVerifier())
		if fresh && role != superuser {
			// The default search path starts with "$user": a role named
			// uplink would put the application's tables in Uplink's own
			// schema, uplink, beside its history, where a table named
			// instances could not be made. Clusters made before keep their
			// tables where they are.
			app = append(app, "ALTER ROLE "+roleIdent+" SET search_path = public")
		}
	case verifierMAC(password, *verifier) == spec.known:
		res.mac = spec.known
	case scramMatches(*verifier, password):
		res.mac = verifierMAC(password, *verifier)
	default:
		app = append(app, "ALTER ROLE "+roleIdent+" LOGIN PASSWORD "+newVerifier())
	}
	// The superuser's verifier is rewritten when it is not its own
	// password's at superIterations: a cluster from before, whose
	// superuser shared the application's password, or had initdb's 4096
	// iterations. Checking costs one PBKDF2 of superIterations.
	if superVerifier != nil && role != superuser {
		if iter, _, ok := parseScram(*superVerifier); !ok || iter > superIterations || !scramMatches(*superVerifier, spec.superPassword) {
			rehash = append(rehash, "ALTER ROLE "+superuser+" PASSWORD "+quoteLiteral(scramVerifier(spec.superPassword, superIterations)))
		}
	}
	switch {
	case fresh && !dbExists && postgresExists:
		app = append(app, "ALTER DATABASE postgres RENAME TO "+dbIdent, "ALTER DATABASE "+dbIdent+" OWNER TO "+roleIdent)
		postgresExists = false
	case fresh && dbExists: // Database "postgres" (or template1): still the role's
		app = append(app, "ALTER DATABASE "+dbIdent+" OWNER TO "+roleIdent)
	case !dbExists:
		createDB = "CREATE DATABASE " + dbIdent + " OWNER " + roleIdent
	}
	if inTx := append(app, rehash...); len(inTx) > 0 {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, stmt := range inTx {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", statementVerb(stmt), err)
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	if createDB != "" {
		if _, err := conn.Exec(ctx, createDB); err != nil {
			return res, fmt.Errorf("%s: %w", statementVerb(createDB), err)
		}
	}
	res.changed = len(app) > 0 || createDB != ""
	res.rehashed = len(rehash) > 0
	res.needPostgresDB = !postgresExists
	return res, nil
}

// statementVerb is stmt up to any password, for error messages.
func statementVerb(stmt string) string {
	verb, _, _ := strings.Cut(stmt, " PASSWORD")
	return verb
}

// createPostgresDB gives the cluster back the postgres database that
// ensureApp renamed: psql -U postgres, createdb and pg_dumpall expect it.
func createPostgresDB(ctx context.Context, dsn provision.DSN) error {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE postgres")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// SCRAM iteration counts. The cost of a login is the client's PBKDF2 over
// the iteration count, on every new connection: about 3 ms at 4096 with
// pgx on a small VM, against nothing at 16. Lite's passwords are 24
// random bytes, so no count makes guessing them any more or less
// feasible; what decides each count is which clients must log in.
const (
	// appIterations is PostgreSQL's own default, for the application
	// role: its DSN goes to the application, to startup tasks and hooks
	// and to tools (uplink db url), in any language, and some SCRAM
	// clients refuse fewer than RFC 7677's 4096 (pgJDBC before ongres
	// scram 3, Bun's SQL client).
	appIterations = 4096
	// superIterations is for the postgres superuser, which only Uplink
	// (pgx) and an operator's psql use, and which Uplink logs in as on
	// every start and restart.
	superIterations = 16
)

// scramVerifier computes what PostgreSQL stores for a SCRAM-SHA-256
// password (RFC 5802, RFC 7677), with a random salt:
// SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>. PostgreSQL stores a
// password given in this form as it is.
func scramVerifier(password string, iter int) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	return scramFor(password, salt, iter)
}

func scramFor(password string, salt []byte, iter int) string {
	salted, _ := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(storedKey[:]), b64(serverKey))
}

// parseScram returns the iteration count and salt of a stored verifier.
func parseScram(stored string) (iter int, salt []byte, ok bool) {
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return 0, nil, false
	}
	iterSalt, _, ok := strings.Cut(rest, "$")
	if !ok {
		return 0, nil, false
	}
	iterStr, saltB64, ok := strings.Cut(iterSalt, ":")
	iter, err := strconv.Atoi(iterStr)
	if !ok || err != nil || iter <= 0 {
		return 0, nil, false
	}
	salt, err = base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		return 0, nil, false
	}
	return iter, salt, true
}

// scramMatches reports whether a stored verifier was made from password.
// It costs one PBKDF2 at the verifier's iteration count.
func scramMatches(stored, password string) bool {
	iter, salt, ok := parseScram(stored)
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(scramFor(password, salt, iter)), []byte(stored)) == 1
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
