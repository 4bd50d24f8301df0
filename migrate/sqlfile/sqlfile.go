package sqlfile

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// Format names the annotation style of a migration file.
type Format string

const (
	FormatPlain  Format = "plain"  // no annotations
	FormatGoose  Format = "goose"  // -- +goose Up / Down / StatementBegin / StatementEnd / NO TRANSACTION
	FormatDbmate Format = "dbmate" // -- migrate:up / -- migrate:down [transaction:false]
)

// Section is the up or the down part of a migration.
type Section struct {
	// Statements in order. Their Offset, Line and Col are relative to the
	// whole file, not to the section.
	Statements []sqlsplit.Statement
	// NoTransaction asks to run the statements outside a transaction, each
	// committing on its own (CREATE INDEX CONCURRENTLY needs it).
	NoTransaction bool
}

// File is a parsed migration file.
type File struct {
	Format Format
	Up     Section
	Down   *Section // nil when the file has no down section
}

// Error is a problem in a migration file that a person must fix.
type Error struct {
	File string // the name given to Parse
	Line int    // 1-based line; 0 when the problem is the whole file
	Col  int    // 1-based column in characters; 0 when only the line is known
	Msg  string // what is wrong
	Hint string // what to do about it; may be empty
	Err  error  // the underlying error, e.g. a *sqlsplit.SyntaxError with file positions; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Parse parses the migration file src; name is used in errors only. The
// format is the one its annotations use; a file with none is plain.
func Parse(name string, src []byte) (*File, error) {
	p := &parser{name: name, src: string(src)}
	marks, err := p.markers()
	if err != nil {
		return nil, err
	}
	var goose, dbmate *marker
	for i := range marks {
		m := &marks[i]
		if m.format == FormatGoose && goose == nil {
			goose = m
		}
		if m.format == FormatDbmate && dbmate == nil {
			dbmate = m
		}
	}
	switch {
	case goose != nil && dbmate != nil:
		second, first := dbmate, goose
		if second.line < first.line {
			second, first = first, second
		}
		return nil, p.errorf(second.line, "use one format per file",
			"%s annotation in a file that already uses %s (line %d)", second.format, first.format, first.line)
	case goose != nil:
		return p.goose(marks)
	case dbmate != nil:
		return p.dbmate(marks)
	}
	stmts, err := p.split(0, len(p.src), 1)
	if err != nil {
		return nil, err
	}
	return &File{Format: FormatPlain, Up: Section{Statements: stmts}}, nil
}

type parser struct {
	name string
	src  string
}

// errorf returns an *Error at line whose message is format and args.
func (p *parser) errorf(line int, hint, format string, args ...any) *Error {
	return &Error{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// split splits src[from:to], which starts at column 1 of line, and makes
// the positions of what it returns relative to the file.
func (p *parser) split(from, to, line int) ([]sqlsplit.Statement, error) {
	stmts, err := sqlsplit.Split(p.src[from:to])
	var se *sqlsplit.SyntaxError
	if errors.As(err, &se) {
		fileErr := *se
		fileErr.Offset += from
		fileErr.Line += line - 1
		return nil, &Error{File: p.name, Line: fileErr.Line, Col: fileErr.Col, Msg: se.Msg, Err: &fileErr}
	}
	if err != nil {
		return nil, err
	}
	for i := range stmts {
		stmts[i].Offset += from
		stmts[i].Line += line - 1
	}
	return stmts, nil
}

// marker is an annotation line.
type marker struct {
	format Format
	name   string // lower case: "up", "down", "statementbegin", "no transaction", ...
	noTx   bool   // dbmate: transaction:false
	line   int    // 1-based
	start  int    // offset of the line's first byte
	next   int    // offset of the next line's first byte
}

// markers finds the annotation lines of the file.
func (p *parser) markers() ([]marker, error) {
	var marks []marker
	start := 0
	if strings.HasPrefix(p.src, "\uFEFF") {
		start = len("\uFEFF") // a byte order mark is not part of the first line
	}
	for line := 1; start < len(p.src); line++ {
		end, next := len(p.src), len(p.src)
		if n := strings.IndexByte(p.src[start:], '\n'); n >= 0 {
			end, next = start+n, start+n+1
		}
		text := strings.TrimSuffix(p.src[start:end], "\r")
		m, err := p.marker(text, line)
		if err != nil {
			return nil, err
		}
		if m != nil {
			m.line, m.start, m.next = line, start, next
			marks = append(marks, *m)
		}
		start = next
	}
	return marks, nil
}

// marker returns the annotation on the line text, nil if it has none.
func (p *parser) marker(text string, line int) (*marker, error) {
	trimmed := strings.TrimLeft(text, " \t")
	if !strings.HasPrefix(trimmed, "--") {
		return nil, nil
	}
	rest := strings.TrimLeft(trimmed[2:], " \t")
	indented := len(trimmed) != len(text)
	switch {
	case hasPrefixFold(rest, "+goose"):
		if indented {
			return nil, p.errorf(line, "start the line with -- as goose requires", "indented goose annotation %q", trimmed)
		}
		return p.gooseMarker(rest[len("+goose"):], line)
	case hasPrefixFold(rest, "migrate:"):
		rest = rest[len("migrate:"):]
		n := 0
		for n < len(rest) && ('a' <= rest[n]|0x20 && rest[n]|0x20 <= 'z') {
			n++
		}
		if n == 0 {
			return nil, nil // "-- migrate: some prose" is a comment
		}
		if indented {
			return nil, p.errorf(line, "start the line with -- as dbmate requires", "indented dbmate directive %q", trimmed)
		}
		return p.dbmateMarker(strings.ToLower(rest[:n]), rest[n:], line)
	}
	return nil, nil
}

// gooseNames maps the annotations goose knows, lower case with single
// spaces, to how its documentation spells them.
var gooseNames = map[string]string{
	"up":             "-- +goose Up",
	"down":           "-- +goose Down",
	"statementbegin": "-- +goose StatementBegin",
	"statementend":   "-- +goose StatementEnd",
	"no transaction": "-- +goose NO TRANSACTION",
	"envsub on":      "-- +goose ENVSUB ON",
	"envsub off":     "-- +goose ENVSUB OFF",
}

const gooseHint = "use -- +goose Up, Down, StatementBegin, StatementEnd or NO TRANSACTION"

// gooseMarker parses what follows "-- +goose" on a line.
func (p *parser) gooseMarker(body string, line int) (*marker, error) {
	// goose drops every "--" from the line before matching ("-- +goose Up --").
	body = strings.ReplaceAll(body, "--", "")
	if strings.Contains(strings.ToLower(body), "+goose") {
		return nil, p.errorf(line, "put each annotation on its own line", "more than one +goose on one line")
	}
	name := strings.ToLower(strings.Join(strings.Fields(body), " "))
	if _, ok := gooseNames[name]; !ok {
		if name == "" {
			return nil, p.errorf(line, gooseHint, "goose annotation without a name")
		}
		return nil, p.errorf(line, gooseHint, "unknown goose annotation %q", strings.TrimSpace(body))
	}
	return &marker{format: FormatGoose, name: name}, nil
}

// dbmateMarker parses a dbmate directive: its name, and the options after it.
func (p *parser) dbmateMarker(name, options string, line int) (*marker, error) {
	if name != "up" && name != "down" {
		return nil, p.errorf(line, "use -- migrate:up or -- migrate:down", "unknown dbmate directive \"migrate:%s\"", name)
	}
	m := &marker{format: FormatDbmate, name: name}
	for _, opt := range strings.Fields(options) {
		switch opt {
		case "transaction:false":
			m.noTx = true
		case "transaction:true":
			m.noTx = false
		default:
			return nil, p.errorf(line, "the only option is transaction:false (no spaces)",
				"unknown option %q on -- migrate:%s", opt, name)
		}
	}
	return m, nil
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// blockStatement returns the statement between a StatementBegin and a
// StatementEnd, src[from:to] starting at column 1 of line, verbatim but, as
// goose does, without the blank and -- comment lines that lead it and the
// whitespace around it. ok is false when nothing is left.
func (p *parser) blockStatement(from, to, line int) (stmt sqlsplit.Statement, ok bool) {
	const space = " \t\n\r\f\v"
	for off := from; off < to; line++ {
		end, next := to, to
		if n := strings.IndexByte(p.src[off:to], '\n'); n >= 0 {
			end, next = off+n, off+n+1
		}
		text := p.src[off:end]
		code := strings.TrimLeft(text, space)
		if code == "" || strings.HasPrefix(code, "--") {
			off = next
			continue
		}
		indent := text[:len(text)-len(code)]
		start := off + len(indent)
		return sqlsplit.Statement{
			SQL:    strings.TrimRight(p.src[start:to], space),
			Offset: start,
			Line:   line,
			Col:    utf8.RuneCountInString(indent) + 1,
		}, true
	}
	return sqlsplit.Statement{}, false
}
