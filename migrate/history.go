package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Outcome is the state of a history row.
type Outcome string

const (
	// OutcomeApplied: the migration (or task) completed; for a migration, its
	// changes are in the database.
	OutcomeApplied Outcome = "applied"
	// OutcomeFailed: the last attempt failed; the row says where and why, and the
	// next run retries.
	OutcomeFailed Outcome = "failed"
	// OutcomeRunning: a no-transaction migration is between statements. Seen by
	// a later run, it means the runner died mid-way; it is retried like a
	// failure, resuming after StatementsDone.
	OutcomeRunning Outcome = "running"
)

// Record is one row of the history table: the last known state of one
// migration or task. See the package doc for the table.
type Record struct {
	Line string `json:"line"`
	// Key identifies the entry within its line: the version, in decimal,
	// for a migration; the task's name for a task.
	Key string `json:"key"`
	// Version is the migration's version; 0 for an entry whose key is not
	// a number.
	Version  int64   `json:"version,omitempty"`
	Name     string  `json:"name"`
	Checksum string  `json:"checksum,omitempty"`
	Outcome  Outcome `json:"outcome"`
	// Attempts counts runs of this entry, failed ones included.
	Attempts int `json:"attempts"`
	// AppliedAt is when Outcome last became OutcomeApplied; zero if it never did.
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// UpdatedAt is when the row was last written.
	UpdatedAt time.Time `json:"updated_at"`
	// Duration is how long the last attempt took.
	Duration time.Duration `json:"duration"`
	// StatementsDone and StatementHashes record the progress of a
	// no-transaction migration: how many statements have committed, and
	// the sha256 of each, so a retry can skip exactly those that are
	// unchanged.
	StatementsDone  int      `json:"statements_done,omitempty"`
	StatementHashes []string `json:"statement_hashes,omitempty"`
	// For a failure: the 1-based index of the failing statement (0 when
	// the failure was not in a statement), PostgreSQL's SQLSTATE and the
	// message.
	FailedStatement int    `json:"failed_statement,omitempty"`
	SQLState        string `json:"sqlstate,omitempty"`
	Message         string `json:"message,omitempty"`
	// Runner says who wrote the row: host, pid and application_name.
	Runner string `json:"runner,omitempty"`
}

// TasksLine is the line startup tasks (package starttask) record their
// runs under, in the same table and under the same lock as migrations. No
// migration line may take the name.
const TasksLine = "tasks"

// History reads and writes one history table. Its methods take the DB to
// run on so that writes can join a migration's or a task's transaction,
// on the session that holds the lock (see Migrator.WithLock).
type History struct {
	schema, table string
	ident         string // quoted schema.table
	// seen is set once the table was found, so that reads stop asking.
	seen atomic.Bool
}

// NewHistory returns the history table schema.table.
func NewHistory(schema, table string) *History {
	return &History{schema: schema, table: table, ident: pgx.Identifier{schema, table}.Sanitize()}
}

// Name returns the table's quoted, schema-qualified name.
func (h *History) Name() string { return h.ident }

func (h *History) ddl() string {
	return `CREATE TABLE IF NOT EXISTS ` + h.ident + ` (
    line             text        NOT NULL,
    key              text        NOT NULL,
    version          bigint,
    name             text        NOT NULL DEFAULT '',
    checksum         text        NOT NULL DEFAULT '',
    outcome          text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 1,
    applied_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    duration         interval,
    statements_done  integer     NOT NULL DEFAULT 0,
    statement_hashes text[]      NOT NULL DEFAULT '{}',
    failed_statement integer,
    sqlstate         text,
    message          text,
    runner           text        NOT NULL DEFAULT '',
    PRIMARY KEY (line, key)
)`
}

// Ensure creates the table, and its schema, when missing. Run it under
// the lock: concurrent CREATE ... IF NOT EXISTS can still collide.
func (h *History) Ensure(ctx context.Context, db DB) error {
	var table, schema *string
	err := db.QueryRow(ctx, "SELECT to_regclass($1)::text, to_regnamespace($2)::text",
		h.ident, pgx.Identifier{h.schema}.Sanitize()).Scan(&table, &schema)
	if err != nil {
		return fmt.Errorf("look for history table %s: %w", h.ident, err)
	}
	if table != nil {
		h.seen.Store(true)
		return nil
	}
	if schema == nil {
		if _, err := db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{h.schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema for history table %s: %w", h.ident, err)
		}
	}
	if _, err := db.Exec(ctx, h.ddl()); err != nil {
		return fmt.Errorf("create history table %s: %w", h.ident, err)
	}
	h.seen.Store(true)
	return nil
}

// exists reports whether the table is there, asking the server only until
// it has been seen once. Reads check first rather than fail on a missing
// table: every failed statement is an ERROR line in the server's log, and
// a fresh database would start its life with one per boot.
func (h *History) exists(ctx context.Context, db DB) (bool, error) {
	if h.seen.Load() {
		return true, nil
	}
	// One simple query: one round trip, where a cached statement would
	// take two the first time, and a migrator asks once per session.
	var found bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.QueryExecModeSimpleProtocol, h.ident).Scan(&found); err != nil {
		return false, fmt.Errorf("look for history table %s: %w", h.ident, err)
	}
	if found {
		h.seen.Store(true)
	}
	return found, nil
}

const recordColumns = `line, key, coalesce(version, 0), name, checksum, outcome, attempts, applied_at, updated_at,
	duration, statements_done, statement_hashes, coalesce(failed_statement, 0), coalesce(sqlstate, ''),
	coalesce(message, ''), runner`

// Records returns the rows of the given lines (all lines when none is
// given), ordered by line, version and key. A missing table reads as
// empty: nothing has run yet.
func (h *History) Records(ctx context.Context, db DB, lines ...string) ([]Record, error) {
	if ok, err := h.exists(ctx, db); !ok {
		return nil, err
	}
	q := `SELECT ` + recordColumns + ` FROM ` + h.ident
	args := []any{}
	if len(lines) > 0 {
		q += ` WHERE line = ANY($1)`
		args = append(args, lines)
	}
	rows, err := db.Query(ctx, q+` ORDER BY line, version, key`, args...)
	if err != nil {
		return nil, h.readErr(err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, h.readErr(err)
	}
	return recs, nil
}

// summary returns the rows of the given lines with what a run needs to
// plan, unordered: the cheapest read that answers "is anything pending,
// and did anything applied change?", which every replica asks on every
// start. Rows come with their line, version, name, outcome and checksum
// only, unless one is not applied (failed, interrupted): then all are
// read whole, as Records does.
func (h *History) summary(ctx context.Context, db DB, lines []string, sizeHint int) ([]Record, error) {
	if ok, err := h.exists(ctx, db); !ok {
		return nil, err
	}
	// Every row, filtered here: a condition costs the server more to plan
	// than the few rows of other lines (tasks) cost to send.
	rows, err := db.Query(ctx, `SELECT line, version, outcome, checksum, name FROM `+h.ident, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, h.readErr(err)
	}
	defer rows.Close()
	recs := make([]Record, 0, sizeHint)
	others := false
	var line string
	for rows.Next() {
		// Text format (simple protocol); scanning by hand costs a tenth of
		// Scan.
		v := rows.RawValues()
		if string(v[0]) != line {
			i := slices.Index(lines, string(v[0]))
			if i < 0 {
				continue
			}
			line = lines[i]
		}
		r := Record{Line: line, Outcome: OutcomeApplied, Checksum: string(v[3]), Name: string(v[4])}
		if string(v[2]) != string(OutcomeApplied) {
			r.Outcome = Outcome(v[2])
		}
		if v[1] != nil {
			if r.Version, err = strconv.ParseInt(string(v[1]), 10, 64); err != nil {
				return nil, fmt.Errorf("read history table %s: version %q: %w", h.ident, v[1], err)
			}
			r.Key = versionKey(r.Version)
		}
		others = others || r.Outcome != OutcomeApplied
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, h.readErr(err)
	}
	if others {
		// A failed or interrupted migration, to retry: rare enough to
		// read everything.
		return h.Records(ctx, db, lines...)
	}
	return recs, nil
}

// Get returns the row for one entry; false when there is none.
func (h *History) Get(ctx context.Context, db DB, line, key string) (Record, bool, error) {
	if ok, err := h.exists(ctx, db); !ok {
		return Record{}, false, err
	}
	rows, err := db.Query(ctx, `SELECT `+recordColumns+` FROM `+h.ident+` WHERE line = $1 AND key = $2`, line, key)
	if err != nil {
		return Record{}, false, h.readErr(err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRecord)
	if errors.Is(err, pgx.ErrNoRows) || isUndefinedTable(err) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, h.readErr(err)
	}
	return r, true, nil
}

func (h *History) readErr(err error) error {
	if isUndefinedTable(err) {
		h.seen.Store(false) // dropped since: ask again next time
		return nil
	}
	return fmt.Errorf("read history table %s: %w", h.ident, err)
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var (
		r         Record
		outcome   string
		appliedAt pgtype.Timestamptz
		duration  pgtype.Interval
	)
	err := row.Scan(&r.Line, &r.Key, &r.Version, &r.Name, &r.Checksum, &outcome, &r.Attempts, &appliedAt,
		&r.UpdatedAt, &duration, &r.StatementsDone, &r.StatementHashes, &r.FailedStatement, &r.SQLState,
		&r.Message, &r.Runner)
	r.Outcome = Outcome(outcome)
	if appliedAt.Valid {
		r.AppliedAt = appliedAt.Time
	}
	if duration.Valid {
		r.Duration = time.Duration(duration.Microseconds)*time.Microsecond +
			time.Duration(duration.Days)*24*time.Hour
	}
	return r, err
}

// Put writes r as the row for (r.Line, r.Key), replacing any previous
// one. UpdatedAt is set by the server, and so is a zero AppliedAt when the
// outcome is OutcomeApplied (NULL otherwise); an empty SQLState and
// Message and a zero FailedStatement are stored as NULL.
func (h *History) Put(ctx context.Context, db DB, r Record) error {
	if _, err := db.Exec(ctx, h.putSQL(), putArgs(r)...); err != nil {
		return fmt.Errorf("write history row %s/%s: %w", r.Line, r.Key, err)
	}
	return nil
}

// Delete removes the row for one entry (a reverted migration).
func (h *History) Delete(ctx context.Context, db DB, line, key string) error {
	if _, err := db.Exec(ctx, h.deleteSQL(), line, key); err != nil {
		return fmt.Errorf("delete history row %s/%s: %w", line, key, err)
	}
	return nil
}

// putSQL writes a row from putArgs. It is one parameterised statement, so
// that a session parses and plans it once, however many rows it writes.
func (h *History) putSQL() string {
	return h.insertSQL() + `
ON CONFLICT (line, key) DO UPDATE SET
	version = EXCLUDED.version, name = EXCLUDED.name, checksum = EXCLUDED.checksum,
	outcome = EXCLUDED.outcome, attempts = EXCLUDED.attempts, applied_at = EXCLUDED.applied_at,
	updated_at = EXCLUDED.updated_at, duration = EXCLUDED.duration,
	statements_done = EXCLUDED.statements_done, statement_hashes = EXCLUDED.statement_hashes,
	failed_statement = EXCLUDED.failed_statement, sqlstate = EXCLUDED.sqlstate,
	message = EXCLUDED.message, runner = EXCLUDED.runner`
}

// insertSQL is putSQL for a row known not to exist yet: a plain INSERT
// costs the server less than an upsert. A NULL duration is measured by
// the server, from the transaction's start: what a history write in a
// migration's own transaction, queued before the migration runs, uses.
func (h *History) insertSQL() string {
	return `INSERT INTO ` + h.ident + ` AS h
	(line, key, version, name, checksum, outcome, attempts, applied_at, updated_at, duration,
	 statements_done, statement_hashes, failed_statement, sqlstate, message, runner)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, CASE WHEN $6 = 'applied' THEN now() END), now(), coalesce($9, clock_timestamp() - now()),
	$10, $11, $12, $13, $14, $15)`
}

// putArgs are putSQL's parameters for r; nil stands for NULL.
func putArgs(r Record) []any {
	orNull := func(ok bool, v any) any {
		if !ok {
			return nil
		}
		return v
	}
	hashes := r.StatementHashes
	if hashes == nil {
		hashes = []string{} // NOT NULL
	}
	return []any{
		r.Line, r.Key, orNull(r.Version != 0, r.Version), r.Name, r.Checksum, string(r.Outcome), int32(r.Attempts),
		orNull(!r.AppliedAt.IsZero(), r.AppliedAt), orNull(r.Duration >= 0, r.Duration.Truncate(time.Microsecond)),
		int32(r.StatementsDone), hashes, orNull(r.FailedStatement != 0, int32(r.FailedStatement)),
		orNull(r.SQLState != "", r.SQLState), orNull(r.Message != "", r.Message), r.Runner,
	}
}

func (h *History) deleteSQL() string {
	return `DELETE FROM ` + h.ident + ` WHERE line = $1 AND key = $2`
}

// versionKey is the Key of a migration's row.
func versionKey(v int64) string { return strconv.FormatInt(v, 10) }
