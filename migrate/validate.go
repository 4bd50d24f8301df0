package migrate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
)

// Validate checks lines without a database: line names present and
// unique, versions positive and unique within a line, Go migrations with
// an up function, and every file: that it can be read and parsed, and
// that no statement would fail where it is put: transaction control
// (BEGIN, COMMIT...) inside a migration that Uplink already runs in a
// transaction, and statements PostgreSQL refuses to run in one (CREATE
// INDEX CONCURRENTLY, VACUUM...) in a migration not marked to run
// without. Call it to check files in CI (uplink migrate validate does).
//
// New checks only what does not need the files, and a Migrator checks the
// files of the migrations it runs before it runs any (see Load).
//
// Problems come back together as a *status.ActionError.
func Validate(lines ...Line) error {
	errs := checkLines(lines)
	errs = append(errs, eachFile(allMigrations(lines), checkContents)...)
	return joinProblems("migrations", "fix the migrations named above; nothing was run", errs)
}

// checkLines checks what Validate does short of reading files.
func checkLines(lines []Line) []error {
	var errs []error
	seenLine := map[string]bool{}
	for _, l := range lines {
		switch {
		case l.Name == "":
			errs = append(errs, errors.New("a migration line has no name"))
			continue
		case seenLine[l.Name]:
			errs = append(errs, fmt.Errorf("migration line %q given twice", l.Name))
			continue
		case l.Name == TasksLine:
			errs = append(errs, fmt.Errorf("migration line %q: the name is kept for startup tasks' records; name the line after what it migrates", l.Name))
			continue
		}
		seenLine[l.Name] = true
		seen := make(map[int64]*Migration, len(l.Migrations))
		for _, m := range l.Migrations {
			if m == nil {
				errs = append(errs, fmt.Errorf("line %s: nil migration", l.Name))
				continue
			}
			if m.Version <= 0 {
				errs = append(errs, fmt.Errorf("line %s: %s: version %d is not positive", l.Name, m.source(), m.Version))
			}
			if prev := seen[m.Version]; prev != nil {
				errs = append(errs, fmt.Errorf("line %s: duplicate version %d: %s and %s", l.Name, m.Version, prev.source(), m.source()))
			}
			seen[m.Version] = m
			if m.Name == "" {
				errs = append(errs, fmt.Errorf("line %s: %s: migration without a name", l.Name, m.source()))
			}
			if m.fsys != nil {
				continue // its file is checked when it is read
			}
			if m.up == nil || m.up.fn == nil {
				errs = append(errs, fmt.Errorf("line %s: %s: no up migration", l.Name, m.source()))
				continue
			}
		}
	}
	return errs
}

// checkContents parses a file migration and checks its statements.
func checkContents(m *Migration, r *reader) []error {
	if err := m.parse(r); err != nil {
		return []error{err}
	}
	errs := checkStep(m.up)
	if m.down != nil {
		errs = append(errs, checkStep(m.down)...)
	}
	return errs
}

const noTxHint = "mark the file to run outside a transaction: -- +goose NO TRANSACTION, or -- migrate:up transaction:false"

// checkStep finds statements that cannot work in the step's transaction
// mode, or on a migration session.
func checkStep(s *step) []error {
	var errs []error
	for i, st := range s.stmts {
		w := leadingWords(st.SQL, 5)
		var msg, hint string
		switch {
		case sessionWrecking(w):
			msg = fmt.Sprintf("statement %d (%s) would drop what the migration session holds: its prepared statements, or its lock", i+1, strings.ToUpper(strings.Join(w[:min(len(w), 2)], " ")))
			hint = "remove it; Uplink resets the session between migrations"
		case s.noTx:
			continue // anything else goes, each statement commits on its own
		case txControl(w):
			msg = fmt.Sprintf("statement %d (%s) controls the transaction, which Uplink already runs the migration in", i+1, strings.ToUpper(w[0]))
			hint = "remove it; each migration commits on its own, together with its history row"
		case noTxOnly(w):
			msg = fmt.Sprintf("statement %d (%s) cannot run inside a transaction", i+1, strings.ToUpper(strings.Join(w[:min(len(w), 4)], " ")))
			hint = noTxHint
		default:
			continue
		}
		errs = append(errs, &sqlfile.Error{File: s.file, Line: st.Line, Col: st.Col, Msg: msg, Hint: hint})
	}
	return errs
}

func txControl(w []string) bool {
	switch {
	case len(w) == 0:
		return false
	case w[0] == "begin", w[0] == "commit", w[0] == "end", w[0] == "rollback", w[0] == "abort":
		return true
	case (w[0] == "start" || w[0] == "prepare") && len(w) > 1 && w[1] == "transaction":
		return true
	}
	return false
}

// sessionWrecking recognises DEALLOCATE, which drops the session's
// prepared statements (Uplink writes history rows with them, pgx caches
// queries with them), and DISCARD ALL, which also releases the migration
// lock.
func sessionWrecking(w []string) bool {
	return len(w) > 0 && (w[0] == "deallocate" || w[0] == "discard" && len(w) > 1 && w[1] == "all")
}

// noTxOnly recognises statements PostgreSQL refuses inside a transaction
// block (PreventInTransactionBlock).
func noTxOnly(w []string) bool {
	has := func(words ...string) bool {
		if len(w) < len(words) {
			return false
		}
		for i, x := range words {
			if w[i] != x {
				return false
			}
		}
		return true
	}
	switch {
	case has("create", "index", "concurrently"), has("create", "unique", "index", "concurrently"),
		has("drop", "index", "concurrently"),
		has("vacuum"),
		has("create", "database"), has("drop", "database"),
		has("create", "tablespace"), has("drop", "tablespace"),
		has("alter", "system"):
		return true
	case has("reindex"):
		for _, x := range w[1:] {
			if x == "concurrently" {
				return true
			}
		}
	}
	return false
}

// leadingWords returns up to n leading keywords of a statement, lower
// case, skipping comments and punctuation such as REINDEX's "(VERBOSE)";
// it stops at anything quoted, which no keyword is.
func leadingWords(sql string, n int) []string {
	var words []string
	for i := 0; i < len(sql) && len(words) < n; {
		c := sql[i]
		switch {
		case strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case strings.HasPrefix(sql[i:], "/*"):
			i = commentEnd(sql, i)
		case c == '\'' || c == '"' || c == '$':
			return words
		case c == '_' || ('a' <= c|0x20 && c|0x20 <= 'z'):
			j := i
			for j < len(sql) && (sql[j] == '_' || ('a' <= sql[j]|0x20 && sql[j]|0x20 <= 'z') || ('0' <= sql[j] && sql[j] <= '9')) {
				j++
			}
			words = append(words, strings.ToLower(sql[i:j]))
			i = j
		default:
			i++
		}
	}
	return words
}

// commentEnd returns the offset just past the /* comment at i, which may
// nest, or len(sql) when it never closes.
func commentEnd(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}
