package migrate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// Direction says which way a migration ran.
type Direction string

const (
	DirUp   Direction = "up"
	DirDown Direction = "down"
)

// MigrationError is a migration that failed: where, and what PostgreSQL
// said. Up and Down return it inside a *PartialError and, unless it is
// Temporary, inside a *status.ActionError too.
type MigrationError struct {
	Line      string // the migration line ("app")
	Version   int64
	Name      string
	Direction Direction
	// File is the file the failing statement is in; empty for a Go
	// migration.
	File string
	// Statement is the 1-based index of the failing statement among
	// Statements; 0 when the failure is not in one statement (a Go
	// migration, the commit, a check after the statements ran).
	Statement, Statements int
	// FileLine and FileCol locate the error in File (1-based; the column in
	// characters): where PostgreSQL's error position points, or the
	// failing statement's start when it gives none.
	FileLine, FileCol int
	// SQLState is PostgreSQL's error code ("42601"); empty when the error
	// did not come from the server.
	SQLState string
	// Message is PostgreSQL's message, with its detail and hint, or
	// Uplink's own.
	Message string
	// InvalidIndexes names indexes (schema.name) that the migration left
	// invalid, from a failed CREATE INDEX CONCURRENTLY: they must be
	// dropped before a retry.
	InvalidIndexes []string
	// Err is the underlying error.
	Err error

	lost bool // the session ended or the context was done
}

func (e *MigrationError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.FileLine > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.FileLine, e.FileCol)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s migration %d (%s)", e.Line, e.Version, e.Name)
	if e.Direction == DirDown {
		b.WriteString(" down")
	}
	if e.Statement > 0 {
		fmt.Fprintf(&b, ", statement %d of %d", e.Statement, e.Statements)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.SQLState != "" {
		fmt.Fprintf(&b, " (SQLSTATE %s)", e.SQLState)
	}
	return b.String()
}

func (e *MigrationError) Unwrap() error { return e.Err }

// Temporary reports whether the failure may pass on its own, so retrying
// later makes sense: the session was lost or the context ended, a
// lock_timeout expired, a deadlock or serialization failure, the server
// shutting down or short of resources. Anything else needs a person to
// change the migration.
func (e *MigrationError) Temporary() bool {
	if e.lost {
		return true
	}
	switch {
	case e.SQLState == "55P03", // lock_not_available: lock_timeout
		e.SQLState == "40001", e.SQLState == "40P01", // serialization failure, deadlock
		e.SQLState == "57P01", e.SQLState == "57P02", e.SQLState == "57P03", // shutdown, crash, cannot connect now
		strings.HasPrefix(e.SQLState, "08"), // connection exceptions
		strings.HasPrefix(e.SQLState, "53"): // insufficient resources
		return true
	}
	return false
}

// migrationError describes err, raised by statement index i (0-based; -1
// for none) of step s of migration m.
func migrationError(line string, m *Migration, dir Direction, s *step, i int, err error) *MigrationError {
	e := &MigrationError{
		Line: line, Version: m.Version, Name: m.Name, Direction: dir,
		File: s.file, Statements: s.statements(), Message: err.Error(), Err: err,
	}
	var stmt *sqlsplit.Statement
	if i >= 0 && i < len(s.stmts) {
		stmt = &s.stmts[i]
		e.Statement = i + 1
		e.FileLine, e.FileCol = stmt.Line, stmt.Col
	} else if s.fn != nil && i >= 0 {
		e.Statement = 1
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		e.SQLState = pgErr.Code
		e.Message = pgErr.Message
		if pgErr.Detail != "" {
			e.Message += "; " + pgErr.Detail
		}
		if pgErr.Hint != "" {
			e.Message += "; hint: " + pgErr.Hint
		}
		if stmt != nil && pgErr.Position > 0 {
			e.FileLine, e.FileCol = stmt.Locate(int(pgErr.Position))
		}
	}
	return e
}

// PartialError is returned by Up and Down when a migration fails: Result
// holds what completed before it, Err the failure (a *MigrationError,
// possibly wrapped in a *status.ActionError).
type PartialError struct {
	Result *Result
	Err    error
}

func (e *PartialError) Error() string {
	if e.Result == nil || len(e.Result.Applied) == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (after %d successful migration(s) in this run)", e.Err, len(e.Result.Applied))
}

func (e *PartialError) Unwrap() error { return e.Err }

// DriftError is an applied migration whose source changed since.
type DriftError struct {
	Line     string
	Version  int64
	Name     string
	File     string // empty for a Go migration
	Recorded string // checksum in the history table
	Current  string // checksum of the file now
}

func (e *DriftError) Error() string {
	src := e.File
	if src == "" {
		src = fmt.Sprintf("go:%04d_%s", e.Version, e.Name)
	}
	return fmt.Sprintf("%s: %s migration %d changed after it was applied: recorded checksum %s, file now %s",
		src, e.Line, e.Version, e.Recorded, e.Current)
}

// OutOfOrderError lists pending migrations older than the newest applied
// one of their line.
type OutOfOrderError struct {
	Line    string
	Newest  int64 // the newest applied version
	Pending []*Migration
}

func (e *OutOfOrderError) Error() string {
	names := make([]string, len(e.Pending))
	for i, m := range e.Pending {
		names[i] = m.source()
	}
	return fmt.Sprintf("%s: pending migrations older than the newest applied one (%d): %s",
		e.Line, e.Newest, strings.Join(names, ", "))
}
