package migrate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// resetSession undoes what a migration may leave on its session, so that
// nothing leaks into the next one: DISCARD ALL without its two harmful
// parts, releasing advisory locks (the migration lock) and deallocating
// prepared statements (pgx's cache). RESET ALL does not reset the role.
const resetSession = "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DISCARD TEMP; DISCARD SEQUENCES; CLOSE ALL; UNLISTEN *; "

// asSessionRole makes the rest of a transaction run as the session's own
// user, for history writes after a migration that switched roles (SET
// ROLE app_owner, to own what it creates); at commit the migration's role
// comes back.
const asSessionRole = "SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE; "

// settings returns the SET (scope "SET") or SET LOCAL commands for a
// migration's timeouts.
func (m *Migrator) settings(conn *pgx.Conn, scope string) string {
	ms := func(d time.Duration) int64 {
		if d < 0 {
			return 0 // no limit
		}
		return max(1, d.Milliseconds())
	}
	s := fmt.Sprintf("%s lock_timeout = %d; %s statement_timeout = %d; ",
		scope, ms(m.cfg.LockTimeout), scope, ms(m.cfg.StatementTimeout))
	if m.cfg.ClientCheckInterval > 0 && serverMajor(conn) >= 14 {
		s += fmt.Sprintf("%s client_connection_check_interval = %d; ", scope, ms(m.cfg.ClientCheckInterval))
	}
	return s
}

func serverMajor(conn *pgx.Conn) int {
	v := conn.PgConn().ParameterStatus("server_version") // "15.4 (Debian 15.4-1)"
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

func execStatement(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// applyUp runs one pending migration and records it.
func (m *Migrator) applyUp(ctx context.Context, conn *pgx.Conn, e Entry) (Applied, error) {
	mig := e.migration
	rec := Record{Line: e.Line, Key: versionKey(e.Version), Version: e.Version, Name: mig.Name,
		Checksum: mig.Checksum, Attempts: 1, Runner: m.runner}
	if e.Record != nil {
		rec.Attempts = e.Record.Attempts + 1
	}
	start := time.Now()
	var err error
	if mig.up.noTx {
		err = m.upNoTx(ctx, conn, e, &rec, start)
	} else {
		err = m.inTx(ctx, conn, e.Line, mig, DirUp, func() string {
			rec.Outcome, rec.Duration = OutcomeApplied, time.Since(start)
			return m.history.upsert(rec)
		})
		var me *MigrationError
		if errors.As(err, &me) {
			rec.Outcome, rec.Duration = OutcomeFailed, time.Since(start)
			m.recordFailure(ctx, conn, rec, me)
		}
	}
	a := Applied{Line: e.Line, Version: e.Version, Name: mig.Name, Direction: DirUp,
		Duration: time.Since(start), Attempt: rec.Attempts, Resumed: e.Resume}
	m.logRun(a, mig, err)
	return a, err
}

// applyDown reverts one applied migration and deletes its row.
func (m *Migrator) applyDown(ctx context.Context, conn *pgx.Conn, e Entry) (Applied, error) {
	mig := e.migration
	start := time.Now()
	forget := m.history.remove(e.Line, versionKey(e.Version))
	var err error
	if mig.down.noTx {
		err = m.noTxSteps(ctx, conn, e.Line, mig, DirDown, 0, nil)
		if err == nil {
			if err = writeOutsideTx(ctx, conn, forget); err != nil {
				err = stepError(ctx, conn, e.Line, mig, DirDown, -1, err)
			}
		}
	} else {
		err = m.inTx(ctx, conn, e.Line, mig, DirDown, func() string { return forget })
	}
	a := Applied{Line: e.Line, Version: e.Version, Name: mig.Name, Direction: DirDown, Duration: time.Since(start)}
	m.logRun(a, mig, err)
	return a, err
}

// writeOutsideTx runs a history write between the statements of a
// no-transaction migration, in a transaction of its own so that the
// session's role can be switched for it alone.
func writeOutsideTx(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.Exec(ctx, "BEGIN; "+asSessionRole+sql+"; COMMIT")
	if err != nil && conn.PgConn().TxStatus() != 'I' && !conn.IsClosed() {
		conn.Exec(ctx, "ROLLBACK")
	}
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

func (m *Migrator) logRun(a Applied, mig *Migration, err error) {
	verb := "applied migration"
	if a.Direction == DirDown {
		verb = "reverted migration"
	}
	attrs := []any{logLine, a.Line, logVersion, a.Version, logName, a.Name, logDuration, a.Duration.Round(time.Microsecond)}
	if mig.File != "" {
		attrs = append(attrs, logFile, mig.File)
	}
	if err != nil {
		m.log.Error("migration failed", append(attrs, logErr, err)...)
		return
	}
	m.log.Info(verb, attrs...)
}

// inTx runs one direction of a migration in a transaction, then the
// history write that record returns, and commits. The session is reset
// first and the timeouts are set for the transaction only.
func (m *Migrator) inTx(ctx context.Context, conn *pgx.Conn, line string, mig *Migration, dir Direction, record func() string) error {
	s := mig.step(dir)
	fail := func(at int, err error) error { return stepError(ctx, conn, line, mig, dir, at, err) }
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: resetSession + "BEGIN; " + m.settings(conn, "SET LOCAL")})
	if err != nil {
		return fail(-1, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, a no-op
	if s.fn != nil {
		if err := s.fn(ctx, tx); err != nil {
			return fail(0, err)
		}
	}
	for i, st := range s.stmts {
		if err := execStatement(ctx, conn, st.SQL); err != nil {
			return fail(i, err)
		}
		if conn.PgConn().TxStatus() != 'T' {
			return fail(i, errors.New("the statement ended the migration's transaction; remove transaction control (BEGIN, COMMIT) from the migration"))
		}
	}
	if _, err := tx.Exec(ctx, asSessionRole+record()); err != nil {
		return fail(-1, fmt.Errorf("write history: %w", err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(-1, err) // a deferred constraint, a serialization failure
	}
	return nil
}

// upNoTx runs a migration outside a transaction, statement by statement,
// recording progress after each so that a retry resumes after the last
// statement that committed (e.Resume of them are skipped now).
func (m *Migrator) upNoTx(ctx context.Context, conn *pgx.Conn, e Entry, rec *Record, start time.Time) error {
	s := e.migration.up
	hashes := make([]string, len(s.stmts))
	for i, st := range s.stmts {
		hashes[i] = statementHash(st.SQL)
	}
	rec.Outcome, rec.StatementsDone, rec.StatementHashes = OutcomeRunning, e.Resume, hashes[:e.Resume]
	progress := func(done int) error {
		rec.StatementsDone, rec.StatementHashes = done, hashes[:done]
		return writeOutsideTx(ctx, conn, m.history.upsert(*rec))
	}
	err := m.noTxSteps(ctx, conn, e.Line, e.migration, DirUp, e.Resume, progress)
	rec.Duration = time.Since(start)
	var me *MigrationError
	if errors.As(err, &me) {
		rec.Outcome = OutcomeFailed
		if me.Statement > 0 && s.fn == nil {
			// Resume at the failing statement, not after it.
			rec.StatementsDone, rec.StatementHashes = me.Statement-1, hashes[:me.Statement-1]
		}
		m.recordFailure(ctx, conn, *rec, me)
		return err
	}
	if err != nil {
		return err
	}
	rec.Outcome, rec.StatementsDone, rec.StatementHashes = OutcomeApplied, len(hashes), hashes
	if err := writeOutsideTx(ctx, conn, m.history.upsert(*rec)); err != nil {
		return stepError(ctx, conn, e.Line, e.migration, DirUp, -1, err)
	}
	return nil
}

// noTxSteps runs a step's statements from skip on, each committing on its
// own, calling progress(done) after each when it is not nil. It then
// checks for indexes a failed concurrent build left invalid.
func (m *Migrator) noTxSteps(ctx context.Context, conn *pgx.Conn, line string, mig *Migration, dir Direction, skip int, progress func(done int) error) error {
	s := mig.step(dir)
	fail := func(at int, err error) error { return stepError(ctx, conn, line, mig, dir, at, err) }
	if _, err := conn.Exec(ctx, resetSession+m.settings(conn, "SET")); err != nil {
		return fail(-1, err)
	}
	before, err := invalidIndexes(ctx, conn)
	if err != nil {
		return fail(-1, err)
	}
	if progress != nil {
		if err := progress(skip); err != nil {
			return fail(-1, err)
		}
	}
	if s.fn != nil {
		if err := s.fn(ctx, conn); err != nil {
			return fail(0, err)
		}
	}
	for i := skip; i < len(s.stmts); i++ {
		if err := execStatement(ctx, conn, s.stmts[i].SQL); err != nil {
			me := stepError(ctx, conn, line, mig, dir, i, err)
			if !me.lost {
				after, _ := invalidIndexes(ctx, conn)
				me.noteInvalid(suspectIndexes(before, after, s.stmts[i:i+1]))
			}
			return me
		}
		// Progress counts only at commit points: a file may group some of
		// its statements in a BEGIN ... COMMIT of its own.
		if progress != nil && conn.PgConn().TxStatus() == 'I' {
			if err := progress(i + 1); err != nil {
				return fail(-1, err)
			}
		}
	}
	if conn.PgConn().TxStatus() != 'I' {
		conn.Exec(ctx, "ROLLBACK")
		return fail(-1, errors.New("the migration left a transaction open; end it with COMMIT"))
	}
	after, err := invalidIndexes(ctx, conn)
	if err != nil {
		return fail(-1, err)
	}
	if bad := suspectIndexes(before, after, s.stmts); len(bad) > 0 {
		// The statement that names the index runs again on retry, once a
		// person has dropped the invalid one.
		at := -1
		for i, st := range s.stmts {
			if at < 0 && mentionsAny(st.SQL, bad) {
				at = i
			}
		}
		me := stepError(ctx, conn, line, mig, dir, at, fmt.Errorf("index %s is invalid (pg_index.indisvalid is false): a concurrent index build failed and left it; IF NOT EXISTS would skip it", bad[0].qualified))
		me.noteInvalid(bad)
		return me
	}
	return nil
}

// stepError describes a failure of statement at (0-based; -1 for none)
// of one direction of mig.
func stepError(ctx context.Context, conn *pgx.Conn, line string, mig *Migration, dir Direction, at int, err error) *MigrationError {
	me := migrationError(line, mig, dir, mig.step(dir), at, err)
	me.lost = conn.IsClosed() || ctx.Err() != nil
	return me
}

// recordFailure writes a failed attempt to the history table, outside
// any transaction. A lost session cannot record anything; the history
// then shows the migration as never run (or, for a no-transaction one,
// running), which the next run treats alike.
func (m *Migrator) recordFailure(ctx context.Context, conn *pgx.Conn, rec Record, me *MigrationError) {
	if me.lost {
		m.log.Warn("could not record the failed migration: session lost", logLine, rec.Line, logVersion, rec.Version)
		return
	}
	rec.FailedStatement, rec.SQLState, rec.Message = me.Statement, me.SQLState, me.Message
	if conn.PgConn().TxStatus() != 'I' {
		conn.Exec(ctx, "ROLLBACK") // a no-transaction file's own BEGIN
	}
	if err := writeOutsideTx(ctx, conn, m.history.upsert(rec)); err != nil {
		m.log.Warn("could not record the failed migration", logLine, rec.Line, logVersion, rec.Version, logErr, err)
	}
}

// indexName is an index in the database.
type indexName struct {
	name      string // pg_class.relname
	qualified string // schema.name, quoted where needed
}

// invalidIndexes lists the database's indexes marked invalid.
func invalidIndexes(ctx context.Context, db DB) ([]indexName, error) {
	rows, err := db.Query(ctx, `
SELECT c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2`)
	if err != nil {
		return nil, fmt.Errorf("list invalid indexes: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (indexName, error) {
		var x indexName
		err := r.Scan(&x.name, &x.qualified)
		return x, err
	})
}

func (x indexName) String() string { return x.qualified }

// suspectIndexes picks the invalid indexes that a migration's statements
// are responsible for: those that became invalid while they ran, and
// those they name (a retried CREATE INDEX CONCURRENTLY IF NOT EXISTS
// would pass over one silently).
func suspectIndexes(before, after []indexName, stmts []sqlsplit.Statement) []indexName {
	old := map[string]bool{}
	for _, x := range before {
		old[x.qualified] = true
	}
	var bad []indexName
	for _, x := range after {
		if !old[x.qualified] {
			bad = append(bad, x)
			continue
		}
		for _, st := range stmts {
			if mentions(st.SQL, x.name) {
				bad = append(bad, x)
				break
			}
		}
	}
	return bad
}

func mentionsAny(sql string, idx []indexName) bool {
	for _, x := range idx {
		if mentions(sql, x.name) {
			return true
		}
	}
	return false
}

// mentions reports whether sql contains name as a whole word, ignoring
// case: close enough to "the statement names this index" for a check
// that only picks what to report.
func mentions(sql, name string) bool {
	s, n := strings.ToLower(sql), strings.ToLower(name)
	isWord := func(c byte) bool {
		return c == '_' || c == '$' || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c >= 0x80
	}
	for from := 0; ; {
		i := strings.Index(s[from:], n)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(n)
		if (i == 0 || !isWord(s[i-1])) && (end == len(s) || !isWord(s[end])) {
			return true
		}
		from = i + 1
	}
}

// noteInvalid adds invalid indexes to the error, for the message and the
// hint.
func (e *MigrationError) noteInvalid(idx []indexName) {
	for _, x := range idx {
		e.InvalidIndexes = append(e.InvalidIndexes, x.qualified)
	}
	if len(idx) > 0 && !strings.Contains(e.Message, "is invalid") {
		e.Message += fmt.Sprintf("; it left index %s invalid", strings.Join(e.InvalidIndexes, ", "))
	}
}
