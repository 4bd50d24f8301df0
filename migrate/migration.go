package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// DB is what a Go migration runs its SQL on: the migration's transaction
// (a pgx.Tx) or, for a migration without one, the locked *pgx.Conn itself.
// Never a pool: everything a migration does happens on the session that
// holds the lock.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ DB = (pgx.Tx)(nil)
	_ DB = (*pgx.Conn)(nil)
)

// GoFunc is the body of a Go migration.
type GoFunc func(ctx context.Context, db DB) error

// FormatGo is the Format of migrations registered with GoMigration.
const FormatGo sqlfile.Format = "go"

// Migration is one step of a Line: SQL from a file, or a Go function.
//
// A migration from Load knows its version, name and files at once, and
// reads its file when first asked for what is in it (Checksum, Format,
// Statements...), once: Validate reads every file, and a Migrator reads
// the files while it connects and parses only those it is about to run.
// An unreadable or malformed file reads as empty there; Validate and the
// Migrator's runs report why.
type Migration struct {
	// Version orders the migrations of a line: an integer or a timestamp
	// such as 20240131120000, greater than 0.
	Version int64
	// Name is the descriptive part of the file name ("add_users"), or the
	// name given to GoMigration.
	Name string
	// File is the path of the up file in the fs.FS it was loaded from,
	// and DownFile that of the .down.sql file of a pair; both empty for Go
	// migrations.
	File, DownFile string

	fsys fs.FS // where File and DownFile are; nil for a Go migration

	// Set once by read, for a file; by GoMigration's options for Go.
	readOnce sync.Once
	readErr  error
	src      []byte // the up file, until parsed
	checksum string

	// Set once by parse, for a file; by GoMigration for Go.
	parseOnce sync.Once
	parseErr  error
	format    sqlfile.Format
	up, down  *step
}

// step is the up or the down half of a migration.
type step struct {
	file  string // where its statements come from, for errors
	stmts []sqlsplit.Statement
	fn    GoFunc
	noTx  bool
	// multi: a statement holds several commands (a goose StatementBegin
	// block), which only the simple query protocol runs in one go.
	multi bool
}

// newStep is a step of a file's statements.
func newStep(file string, stmts []sqlsplit.Statement, noTx bool) *step {
	s := &step{file: file, stmts: stmts, noTx: noTx}
	for _, st := range stmts {
		if parts, err := sqlsplit.Split(st.SQL); err != nil || len(parts) > 1 {
			s.multi = true
			break
		}
	}
	return s
}

// statements counts what the step runs; a Go function counts as one.
func (s *step) statements() int {
	if s.fn != nil {
		return 1
	}
	return len(s.stmts)
}

// read reads a file migration's up file, with r (nil: the ordinary way),
// and computes its checksum, once.
func (m *Migration) read(r *reader) error {
	if m.fsys == nil {
		return nil
	}
	m.readOnce.Do(func() {
		src, err := r.readFile(m.fsys, m.File)
		if err != nil {
			m.readErr = &sqlfile.Error{File: m.File, Msg: err.Error()}
			return
		}
		m.src, m.checksum = src, checksum(src)
	})
	return m.readErr
}

// parse reads, with r (nil: the ordinary way), and parses a file
// migration, and its down file, once.
func (m *Migration) parse(r *reader) error {
	if m.fsys == nil {
		return nil
	}
	if err := m.read(r); err != nil {
		return err
	}
	m.parseOnce.Do(func() {
		m.parseErr = m.parseFiles(r)
		m.src = nil
	})
	return m.parseErr
}

func (m *Migration) parseFiles(r *reader) error {
	f, err := sqlfile.Parse(m.File, m.src)
	if err != nil {
		return err
	}
	up := newStep(m.File, f.Up.Statements, f.Up.NoTransaction)
	var down *step
	switch {
	case f.Down != nil && m.DownFile != "":
		return &sqlfile.Error{File: m.File, Msg: "down migration given twice: in this file and in " + m.DownFile,
			Hint: "keep one of them"}
	case f.Down != nil:
		down = newStep(m.File, f.Down.Statements, f.Down.NoTransaction)
	case m.DownFile != "":
		src, err := r.readFile(m.fsys, m.DownFile)
		if err != nil {
			return &sqlfile.Error{File: m.DownFile, Msg: err.Error()}
		}
		df, err := sqlfile.Parse(m.DownFile, src)
		if err != nil {
			return err
		}
		down = newStep(m.DownFile, df.Up.Statements, df.Up.NoTransaction)
	case f.Format != sqlfile.FormatPlain:
		// goose and dbmate revert a file without a down section by doing
		// nothing; a plain file has no down at all.
		down = &step{file: m.File, noTx: f.Up.NoTransaction}
	}
	m.format, m.up, m.down = f.Format, up, down
	return nil
}

// Checksum is the sha256, in hex, of what defines the up migration: the
// whole file for single-file formats (plain, goose, dbmate), the .up.sql
// file for pairs. A Go migration has the checksum given with WithChecksum,
// or none, and then changes to it go unnoticed.
func (m *Migration) Checksum() string {
	m.read(nil)
	return m.checksum
}

// Format is the file's annotation style, or FormatGo.
func (m *Migration) Format() sqlfile.Format {
	m.parse(nil)
	return m.format
}

// step returns the half of the migration that runs in direction dir; the
// migration must be parsed.
func (m *Migration) step(dir Direction) *step {
	if dir == DirDown {
		return m.down
	}
	return m.up
}

// NoTransaction reports whether the up migration runs outside a
// transaction, statement by statement.
func (m *Migration) NoTransaction() bool {
	m.parse(nil)
	return m.up != nil && m.up.noTx
}

// HasDown reports whether the migration can be reverted.
func (m *Migration) HasDown() bool {
	m.parse(nil)
	return m.down != nil
}

// Statements returns the number of statements of the up migration (1 for
// a Go migration).
func (m *Migration) Statements() int {
	m.parse(nil)
	if m.up == nil {
		return 0
	}
	return m.up.statements()
}

// String names the migration as people write it: 0007_add_users.
func (m *Migration) String() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

// source names where the migration comes from, for messages.
func (m *Migration) source() string {
	if m.File != "" {
		return m.File
	}
	return "go:" + m.String()
}

// GoOption configures a Go migration.
type GoOption func(*Migration)

// WithoutTransaction runs the migration's functions on the locked
// connection instead of in a transaction (for CREATE INDEX CONCURRENTLY
// and the like). Such a migration is not resumable: a retry runs the
// whole function again, so write it to be idempotent.
func WithoutTransaction() GoOption {
	return func(m *Migration) {
		m.up.noTx = true
		if m.down != nil {
			m.down.noTx = true
		}
	}
}

// WithChecksum gives a Go migration a checksum, such as a hash of what it
// does or a revision string; changing it later is reported as drift, like
// an edited file.
func WithChecksum(sum string) GoOption {
	return func(m *Migration) { m.checksum = sum }
}

// GoMigration registers a migration written in Go. up is required; down
// may be nil when the migration cannot be reverted. Problems (a nil up, a
// bad version) are reported by Validate and New.
func GoMigration(version int64, name string, up, down GoFunc, opts ...GoOption) *Migration {
	m := &Migration{Version: version, Name: name, format: FormatGo, up: &step{fn: up}}
	if down != nil {
		m.down = &step{fn: down}
	}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Line is a named sequence of migrations with its own versions: Uplink's
// own schema, the application's, River's. Lines share the history table and
// the lock, and Up runs them in the order given.
type Line struct {
	Name       string
	Migrations []*Migration
}

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
