package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// resetStatements undo what a migration may leave on its session, so that
// nothing leaks into the next one: DISCARD ALL without its two harmful
// parts, releasing advisory locks (the migration lock) and deallocating
// prepared statements (pgx's cache, the history writes). RESET ALL
// restores the timeouts too: a migration session has them as its
// defaults (see Migrator.runConfig). RESET SESSION AUTHORIZATION resets
// the role as well.
var resetStatements = []string{"RESET ALL", "RESET SESSION AUTHORIZATION", "DISCARD TEMP", "DISCARD SEQUENCES",
	"CLOSE ALL", "UNLISTEN *"}

// resetSession is resetStatements as one simple query.
const resetSession = "RESET ALL; RESET SESSION AUTHORIZATION; DISCARD TEMP; DISCARD SEQUENCES; CLOSE ALL; UNLISTEN *"

// asSessionUser makes the rest of a transaction run as the session's own
// user, for a history write after a migration that switched roles (SET
// ROLE app_owner, to own what it creates) or, as a superuser, users.
const asSessionUser = "SET LOCAL SESSION AUTHORIZATION DEFAULT"

func execStatement(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// historyWrite is one write to the history table, as a statement the
// session prepares once (so the server plans it once) and its arguments.
type historyWrite struct {
	name, sql string
	args      []any
	// lazy lets the transaction that makes the write commit without
	// waiting for the disk (see Migrator.runSteps).
	lazy bool
}

// put writes r; first says no row exists for it yet (it was read under the
// lock), so a plain INSERT does, cheaper than an upsert.
func (m *Migrator) put(r Record, first bool) historyWrite {
	if first {
		return historyWrite{name: "uplink_history_insert", sql: m.history.insertSQL(), args: putArgs(r)}
	}
	return historyWrite{name: "uplink_history_put", sql: m.history.putSQL(), args: putArgs(r)}
}

func (m *Migrator) forget(line string, version int64) historyWrite {
	return historyWrite{name: "uplink_history_delete", sql: m.history.deleteSQL(), args: []any{line, versionKey(version)}}
}

// queue appends w to b, preparing its statement on conn the first time.
func (w historyWrite) queue(ctx context.Context, conn *pgx.Conn, b *pgconn.Batch) error {
	sd, err := conn.Prepare(ctx, w.name, w.sql) // answered from pgx's cache after the first time
	if err != nil {
		return fmt.Errorf("prepare history write: %w", err)
	}
	values, formats, err := encodeArgs(conn.TypeMap(), sd.ParamOIDs, w.args)
	if err != nil {
		return fmt.Errorf("history write: %w", err)
	}
	b.ExecPrepared(sd.Name, values, formats, nil)
	return nil
}

// encodeArgs encodes arguments for the parameters oids, as pgx would for
// a query; nil is NULL.
func encodeArgs(types *pgtype.Map, oids []uint32, args []any) ([][]byte, []int16, error) {
	if len(args) != len(oids) {
		return nil, nil, fmt.Errorf("%d arguments for %d parameters", len(args), len(oids))
	}
	values, formats := make([][]byte, len(args)), make([]int16, len(args))
	buf := make([]byte, 0, 512) // not nil: Encode returns nil for NULL only
	for i, a := range args {
		if a == nil {
			continue
		}
		formats[i] = types.FormatCodeForOID(oids[i])
		out, err := types.Encode(oids[i], formats[i], a, buf)
		if err != nil {
			return nil, nil, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		if out != nil {
			values[i], buf = out[len(buf):], out
		}
	}
	return values, formats, nil
}

// exec appends a statement without parameters to b.
func exec(b *pgconn.Batch, sql string) { b.ExecParams(sql, nil, nil, nil, nil) }

// queueCommit ends a migration's transaction: it resets the session, which
// also makes the history write run as the session's own user, writes the
// history row and commits. The reset thus commits with the migration, and
// the next migration starts on a clean session without a statement of
// its own. guard adds a statement that fails unless the transaction is
// still open (LOCK TABLE outside a transaction block is an error), for
// code that could have ended it (a Go migration's COMMIT); SQL files are
// checked for transaction control before they run (see checkStep).
// It returns how many statements it queued before the history write.
func (m *Migrator) queueCommit(ctx context.Context, conn *pgx.Conn, b *pgconn.Batch, w historyWrite, guard bool) (int, error) {
	for _, q := range resetStatements {
		exec(b, q)
	}
	n := len(resetStatements)
	if guard {
		exec(b, "LOCK TABLE "+m.history.ident+" IN ROW EXCLUSIVE MODE")
		n++
	}
	if err := w.queue(ctx, conn, b); err != nil {
		return 0, err
	}
	if w.lazy {
		// After the reset, which would undo it.
		exec(b, "SET LOCAL synchronous_commit = off")
	}
	exec(b, "COMMIT")
	return n, nil
}

// tailError explains the failure of statement i of what queueCommit
// queued, where the history write is statement write.
func tailError(i, write int, guard bool, err error) error {
	switch {
	case guard && i == write-1:
		return errors.New("the migration ended its transaction; remove transaction control (BEGIN, COMMIT) from it")
	case i == write:
		return fmt.Errorf("write history: %w", err)
	}
	return err // a deferred constraint, a serialization failure at COMMIT
}

// sendBatch sends b in one round trip and returns how many of its
// statements completed; on an error the server skipped the rest.
func sendBatch(ctx context.Context, conn *pgx.Conn, b *pgconn.Batch) (int, error) {
	results, err := conn.PgConn().ExecBatch(ctx, b).ReadAll()
	done := len(results)
	for i, r := range results {
		if r.Err != nil {
			done = i
			break
		}
	}
	return done, err
}

// rollback ends a transaction a failure left open, if the session lives.
func rollback(ctx context.Context, conn *pgx.Conn) {
	if !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
		conn.PgConn().Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll()
	}
}

// applyUp runs one pending migration and records it; lazy as in
// historyWrite.
func (m *Migrator) applyUp(ctx context.Context, conn *pgx.Conn, e Entry, lazy bool) (Applied, error) {
	mig := e.migration
	rec := Record{Line: e.Line, Key: versionKey(e.Version), Version: e.Version, Name: mig.Name,
		Checksum: mig.Checksum(), Attempts: 1, Runner: m.runner}
	if e.Record != nil {
		rec.Attempts = e.Record.Attempts + 1
	}
	start := time.Now()
	var err error
	if mig.up.noTx {
		err = m.upNoTx(ctx, conn, e, &rec, start)
	} else {
		err = m.inTx(ctx, conn, e.Line, mig, DirUp, func() historyWrite {
			// Queued with the migration, before it runs (see inTx): the
			// server measures it, from BEGIN to the history write.
			rec.Outcome, rec.Duration = OutcomeApplied, -1
			w := m.put(rec, e.Record == nil)
			w.lazy = lazy
			return w
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

// applyDown reverts one applied migration and deletes its row; lazy as in
// historyWrite.
func (m *Migrator) applyDown(ctx context.Context, conn *pgx.Conn, e Entry, lazy bool) (Applied, error) {
	mig := e.migration
	start := time.Now()
	forget := m.forget(e.Line, e.Version)
	forget.lazy = lazy
	var err error
	if mig.down.noTx {
		err = m.noTxSteps(ctx, conn, e.Line, mig, DirDown, 0, nil)
		if err == nil {
			if err = writeOutsideTx(ctx, conn, forget); err != nil {
				err = stepError(ctx, conn, e.Line, mig, DirDown, -1, err)
			}
		}
	} else {
		err = m.inTx(ctx, conn, e.Line, mig, DirDown, func() historyWrite { return forget })
	}
	a := Applied{Line: e.Line, Version: e.Version, Name: mig.Name, Direction: DirDown, Duration: time.Since(start)}
	m.logRun(a, mig, err)
	return a, err
}

// writeOutsideTx runs a history write between the statements of a
// no-transaction migration, in a transaction of its own so that the
// session's role can be switched for it alone.
func writeOutsideTx(ctx context.Context, conn *pgx.Conn, w historyWrite) error {
	b := &pgconn.Batch{}
	exec(b, "BEGIN")
	exec(b, asSessionUser)
	err := w.queue(ctx, conn, b)
	if err == nil {
		exec(b, "COMMIT")
		_, err = sendBatch(ctx, conn, b)
		rollback(ctx, conn)
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
// history write that record returns, and commits, resetting the session
// for the next migration (see queueCommit). The session is clean when it
// starts: fresh, or reset by the migration before.
//
// A migration from a file is one round trip: BEGIN, its statements, the
// reset, the history write and COMMIT go in one pipeline, which the
// server stops at the first error. A Go migration takes one round trip
// before its function and one after.
func (m *Migrator) inTx(ctx context.Context, conn *pgx.Conn, line string, mig *Migration, dir Direction, record func() historyWrite) error {
	s := mig.step(dir)
	fail := func(at int, err error) error { return stepError(ctx, conn, line, mig, dir, at, err) }
	switch {
	case s.fn != nil:
		return m.inTxFunc(ctx, conn, s.fn, record, fail)
	case s.multi:
		return m.inTxFunc(ctx, conn, func(ctx context.Context, _ DB) error {
			for i, st := range s.stmts {
				if err := execStatement(ctx, conn, st.SQL); err != nil {
					return &statementError{i, err}
				}
			}
			return nil
		}, record, fail)
	}
	b := &pgconn.Batch{}
	exec(b, "BEGIN")
	for _, st := range s.stmts {
		exec(b, st.SQL)
	}
	write, err := m.queueCommit(ctx, conn, b, record(), false)
	if err != nil {
		return fail(-1, err)
	}
	done, err := sendBatch(ctx, conn, b)
	if err == nil {
		return nil
	}
	rollback(ctx, conn)
	switch tail := done - 1 - len(s.stmts); {
	case done == 0:
		return fail(-1, err)
	case tail < 0:
		return fail(done-1, err)
	default:
		return fail(-1, tailError(tail, write, false, err))
	}
}

// statementError is the failure of statement i of a step run by inTxFunc.
type statementError struct {
	i   int
	err error
}

func (e *statementError) Error() string { return e.err.Error() }

// inTxFunc is inTx for a Go migration, which gets the transaction as a
// pgx.Tx, and for statements that must be sent one by one.
func (m *Migrator) inTxFunc(ctx context.Context, conn *pgx.Conn, fn GoFunc, record func() historyWrite, fail func(int, error) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail(-1, err)
	}
	if err := fn(ctx, tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		if se, ok := err.(*statementError); ok {
			return fail(se.i, se.err)
		}
		return fail(0, err)
	}
	// The tail commits behind pgx's back: tx is not used again.
	b := &pgconn.Batch{}
	write, err := m.queueCommit(ctx, conn, b, record(), true)
	if err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return fail(-1, err)
	}
	if done, err := sendBatch(ctx, conn, b); err != nil {
		rollback(ctx, conn)
		return fail(-1, tailError(done, write, true, err))
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
		return writeOutsideTx(ctx, conn, m.put(*rec, false))
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
	if err := writeOutsideTx(ctx, conn, m.put(*rec, false)); err != nil {
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
	// Statements in autocommit leave what they set on the session: reset
	// it after them as well as before.
	defer func() {
		if !conn.IsClosed() && conn.PgConn().TxStatus() == 'I' {
			execStatement(context.WithoutCancel(ctx), conn, resetSession)
		}
	}()
	if err := execStatement(ctx, conn, resetSession); err != nil {
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
	// invalid fails when the statements from first to last (a commit
	// point) left an index invalid, or name one that is: checked before
	// their progress is recorded, so that a retry runs them again, not
	// the statements after them.
	invalid := func(first, last int) error {
		after, err := invalidIndexes(ctx, conn)
		if err != nil {
			return fail(-1, err)
		}
		bad := suspectIndexes(before, after, s.stmts[first:last])
		if len(bad) == 0 {
			return nil
		}
		// The statement that names the index runs again on retry, once a
		// person has dropped the invalid one.
		at := first
		for i := first; i < last; i++ {
			if mentionsAny(s.stmts[i].SQL, bad) {
				at = i
				break
			}
		}
		me := stepError(ctx, conn, line, mig, dir, at, fmt.Errorf("index %s is invalid (pg_index.indisvalid is false): a concurrent index build failed and left it; IF NOT EXISTS would skip it", bad[0].qualified))
		me.noteInvalid(bad)
		return me
	}
	if s.fn != nil {
		if err := s.fn(ctx, conn); err != nil {
			return fail(0, err)
		}
	}
	group := skip // the first statement since the last commit point
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
		if conn.PgConn().TxStatus() != 'I' {
			continue
		}
		if err := invalid(group, i+1); err != nil {
			return err
		}
		group = i + 1
		if progress != nil {
			if err := progress(i + 1); err != nil {
				return fail(-1, err)
			}
		}
	}
	if conn.PgConn().TxStatus() != 'I' {
		conn.Exec(ctx, "ROLLBACK")
		return fail(-1, errors.New("the migration left a transaction open; end it with COMMIT"))
	}
	if s.fn != nil {
		return invalid(0, 0) // a Go function's statements are not ours to see
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
	if err := writeOutsideTx(ctx, conn, m.put(rec, false)); err != nil {
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
