package sqlfile

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// section is a compact expected Section: statements as "line:col SQL".
type section struct {
	stmts []string
	noTx  bool
}

func describe(s Section) section {
	out := section{noTx: s.NoTransaction}
	for _, st := range s.Statements {
		out.stmts = append(out.stmts, fmt.Sprintf("%d:%d %s", st.Line, st.Col, st.SQL))
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		format Format
		up     section
		down   *section
	}{
		{
			name:   "plain",
			src:    "-- a plain file\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1)\n",
			format: FormatPlain,
			up:     section{stmts: []string{"2:1 CREATE TABLE t (id int);", "3:1 INSERT INTO t VALUES (1)"}},
		},
		{
			name:   "plain empty",
			src:    "",
			format: FormatPlain,
		},
		{
			name:   "goose",
			src:    "-- +goose Up\nCREATE TABLE t (id int);\n  SELECT 1; SELECT 2;\n\n-- +goose Down\nDROP TABLE t;\n",
			format: FormatGoose,
			up:     section{stmts: []string{"2:1 CREATE TABLE t (id int);", "3:3 SELECT 1;", "3:13 SELECT 2;"}},
			down:   &section{stmts: []string{"6:1 DROP TABLE t;"}},
		},
		{
			name:   "goose comments and NO TRANSACTION before Up",
			src:    "-- header\n\n-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
			format: FormatGoose,
			up:     section{stmts: []string{"5:1 CREATE INDEX CONCURRENTLY i ON t (a);"}, noTx: true},
		},
		{
			name:   "goose NO TRANSACTION at the end applies to both sections",
			src:    "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n-- +goose NO TRANSACTION\n",
			format: FormatGoose,
			up:     section{stmts: []string{"2:1 SELECT 1;"}, noTx: true},
			down:   &section{stmts: []string{"4:1 SELECT 2;"}, noTx: true},
		},
		{
			name: "goose StatementBegin keeps the block verbatim",
			src: "-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\n\n-- dropped\n  CREATE FUNCTION f() RETURNS int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\n-- kept\n\n-- +goose StatementEnd\nSELECT 2;\n" +
				"-- +goose Down\n-- +goose StatementBegin\nDROP FUNCTION f()\n-- +goose StatementEnd\n",
			format: FormatGoose,
			up: section{stmts: []string{"2:1 SELECT 1;",
				"6:3 CREATE FUNCTION f() RETURNS int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\n-- kept",
				"12:1 SELECT 2;"}},
			down: &section{stmts: []string{"15:1 DROP FUNCTION f()"}},
		},
		{
			name:   "goose empty block and empty sections",
			src:    "-- +goose Up\n-- +goose StatementBegin\n-- nothing\n-- +goose StatementEnd\n-- +goose Down\n",
			format: FormatGoose,
			down:   &section{},
		},
		{
			name:   "goose annotations in any case and spacing",
			src:    "--+goose   up  \r\nSELECT 1;\r\n-- +GOOSE StatementBEGIN\r\nSELECT 2\r\n-- +goose  statementend\r\n--  +goose no   transaction\r\n-- +goose DOWN\r\n",
			format: FormatGoose,
			up:     section{stmts: []string{"2:1 SELECT 1;", "4:1 SELECT 2"}, noTx: true},
			down:   &section{noTx: true},
		},
		{
			name:   "goose ENVSUB OFF changes nothing",
			src:    "-- +goose ENVSUB OFF\n-- +goose Up\nSELECT '$HOME';\n",
			format: FormatGoose,
			up:     section{stmts: []string{"3:1 SELECT '$HOME';"}},
		},
		{
			name:   "goose mentioned in prose is a comment",
			src:    "-- +goose Up\n-- written for +goose originally\nSELECT 1;\n",
			format: FormatGoose,
			up:     section{stmts: []string{"3:1 SELECT 1;"}},
		},
		{
			name:   "goose with byte order mark",
			src:    "\uFEFF-- +goose Up\nSELECT 1;\n",
			format: FormatGoose,
			up:     section{stmts: []string{"2:1 SELECT 1;"}},
		},
		{
			name:   "dbmate",
			src:    "-- comment\n-- migrate:up\nCREATE TABLE t (id int);\nSELECT 1\n\n-- migrate:down\nDROP TABLE t;\n",
			format: FormatDbmate,
			up:     section{stmts: []string{"3:1 CREATE TABLE t (id int);", "4:1 SELECT 1"}},
			down:   &section{stmts: []string{"7:1 DROP TABLE t;"}},
		},
		{
			name:   "dbmate transaction:false per section",
			src:    "--migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;\n",
			format: FormatDbmate,
			up:     section{stmts: []string{"2:1 CREATE INDEX CONCURRENTLY i ON t (a);"}, noTx: true},
			down:   &section{stmts: []string{"4:1 DROP INDEX i;"}},
		},
		{
			name:   "dbmate without down",
			src:    "-- migrate:up\nSELECT 1;",
			format: FormatDbmate,
			up:     section{stmts: []string{"2:1 SELECT 1;"}},
		},
		{
			name:   "dbmate prose is a comment",
			src:    "-- migrate: see the runbook\n-- migrate:up\nSELECT 1;",
			format: FormatDbmate,
			up:     section{stmts: []string{"3:1 SELECT 1;"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("x.sql", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Format != tt.format {
				t.Errorf("Format = %q; want %q", f.Format, tt.format)
			}
			if got := describe(f.Up); !reflect.DeepEqual(got, tt.up) {
				t.Errorf("Up\n got %+v\nwant %+v", got, tt.up)
			}
			switch {
			case (f.Down == nil) != (tt.down == nil):
				t.Errorf("Down = %+v; want %+v", f.Down, tt.down)
			case f.Down != nil:
				if got := describe(*f.Down); !reflect.DeepEqual(got, *tt.down) {
					t.Errorf("Down\n got %+v\nwant %+v", got, *tt.down)
				}
			}
			checkPositions(t, tt.src, f)
		})
	}
}

// checkPositions checks that every statement is the file's own text at its
// Offset, Line and Col.
func checkPositions(t *testing.T, src string, f *File) {
	t.Helper()
	sections := []Section{f.Up}
	if f.Down != nil {
		sections = append(sections, *f.Down)
	}
	for _, s := range sections {
		for _, st := range s.Statements {
			if st.Offset < 0 || st.Offset+len(st.SQL) > len(src) || src[st.Offset:st.Offset+len(st.SQL)] != st.SQL {
				t.Errorf("statement %q is not the file's text at offset %d", st.SQL, st.Offset)
				continue
			}
			if line, col := sqlsplit.Position(src, st.Offset); line != st.Line || col != st.Col {
				t.Errorf("statement %q at %d:%d; its offset is %d:%d", st.SQL, st.Line, st.Col, line, col)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole error text
	}{
		// goose
		{"goose no Up", "-- +goose NO TRANSACTION\nSELECT 1;\n",
			"x.sql: goose annotations but no -- +goose Up; add -- +goose Up above the first statement"},
		{"goose SQL before Up", "SELECT 1;\n-- +goose Up\n",
			"x.sql:1: SQL before -- +goose Up; move it below -- +goose Up; goose runs nothing above it"},
		{"goose second Up", "-- +goose Up\n-- +goose Down\n-- +goose Up\n",
			"x.sql:3: second -- +goose Up (the first is on line 1); a file has one Up section; remove one"},
		{"goose Down before Up", "-- +goose Down\n-- +goose Up\n",
			"x.sql:1: -- +goose Down before -- +goose Up; put the Up section first"},
		{"goose second Down", "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
			"x.sql:3: second -- +goose Down; a file has one Down section; remove one"},
		{"goose StatementBegin without End", "-- +goose Up\nSELECT 1;\n\n-- +goose StatementBegin\nSELECT 2;\n",
			"x.sql:4: -- +goose StatementBegin without StatementEnd; add -- +goose StatementEnd after the statement"},
		{"goose Down inside a block", "-- +goose Up\n-- +goose StatementBegin\nSELECT 2;\n-- +goose Down\n",
			"x.sql:4: -- +goose Down inside the StatementBegin block opened on line 2; add -- +goose StatementEnd after the statement"},
		{"goose nested StatementBegin", "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n",
			"x.sql:3: -- +goose StatementBegin inside the StatementBegin block opened on line 2; add -- +goose StatementEnd after the statement"},
		{"goose StatementEnd without Begin", "-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n",
			"x.sql:3: -- +goose StatementEnd without StatementBegin; add -- +goose StatementBegin before the statement, or remove this line"},
		{"goose StatementBegin before Up", "-- +goose StatementBegin\n",
			"x.sql:1: -- +goose StatementBegin before -- +goose Up; add -- +goose Up above it"},
		{"goose missing semicolon before a block", "-- +goose Up\nSELECT 1\n-- +goose StatementBegin\nSELECT 2;\n-- +goose StatementEnd\n",
			"x.sql:2: statement does not end with ';' before -- +goose StatementBegin on line 3; end it with ';', or put it between -- +goose StatementBegin and -- +goose StatementEnd"},
		{"goose unknown annotation", "-- +goose Up\n-- +goose Foo bar\n",
			`x.sql:2: unknown goose annotation "Foo bar"; use -- +goose Up, Down, StatementBegin, StatementEnd or NO TRANSACTION`},
		{"goose empty annotation", "-- +goose\n",
			"x.sql:1: goose annotation without a name; use -- +goose Up, Down, StatementBegin, StatementEnd or NO TRANSACTION"},
		{"goose two annotations on a line", "-- +goose Up +goose Down\n",
			"x.sql:1: more than one +goose on one line; put each annotation on its own line"},
		{"goose indented", "-- +goose Up\n  -- +goose Down\n",
			`x.sql:2: indented goose annotation "-- +goose Down"; start the line with -- as goose requires`},
		{"goose ENVSUB ON", "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${X}';\n",
			"x.sql:1: -- +goose ENVSUB ON is not supported: a migration must not depend on the environment it runs in; remove it and write the values into the migration"},
		{"goose unterminated quote", "-- +goose Up\nSELECT 1;\nSELECT 'oops;\n-- +goose Down\n",
			"x.sql:3:8: unterminated quoted string; close it with '"},
		// dbmate
		{"dbmate down before up", "-- migrate:down\n-- migrate:up\n",
			"x.sql:1: -- migrate:down before -- migrate:up; put the up section first"},
		{"dbmate up after down", "-- migrate:up\n-- migrate:down\n-- migrate:up\n",
			"x.sql:3: second -- migrate:up (the first is on line 1); a file has one up section; remove one"},
		{"dbmate second down", "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
			"x.sql:3: second -- migrate:down (the first is on line 2); a file has one down section; remove one"},
		{"dbmate SQL before up", "\nSELECT 1;\n-- migrate:up\n",
			"x.sql:2: SQL before -- migrate:up; move it below -- migrate:up"},
		{"dbmate unknown option", "-- migrate:up transaction: false\n",
			`x.sql:1: unknown option "transaction:" on -- migrate:up; the only option is transaction:false (no spaces)`},
		{"dbmate unknown directive", "-- migrate:upgrade\n",
			`x.sql:1: unknown dbmate directive "migrate:upgrade"; use -- migrate:up or -- migrate:down`},
		{"dbmate indented", "-- migrate:up\n\t-- migrate:down\n",
			`x.sql:2: indented dbmate directive "-- migrate:down"; start the line with -- as dbmate requires`},
		{"dbmate unterminated dollar quote", "-- migrate:up\n-- migrate:down\nDO $x$ BEGIN END $$;\n",
			"x.sql:3:4: unterminated dollar-quoted string; close it with $x$"},
		// mixed and plain
		{"mixed", "-- +goose Up\nSELECT 1;\n-- migrate:down\n",
			"x.sql:3: dbmate annotation in a file that already uses goose (line 1); use one format per file"},
		{"plain unterminated comment", "SELECT 1;\n/* never closed\n",
			"x.sql:2:1: unterminated /* comment; close it with */"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("x.sql", []byte(tt.src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %+v, %v; want an *Error", f, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestParseSyntaxErrorUnwraps checks that a lexing error carries its
// *sqlsplit.SyntaxError with positions in the file.
func TestParseSyntaxErrorUnwraps(t *testing.T) {
	src := "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT \"x;\n"
	_, err := Parse("x.sql", []byte(src))
	var se *sqlsplit.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Parse error %v does not wrap a *sqlsplit.SyntaxError", err)
	}
	if line, col := sqlsplit.Position(src, se.Offset); se.Line != 4 || se.Col != 8 || line != 4 || col != 8 {
		t.Errorf("SyntaxError at %d:%d, offset %d is %d:%d; want 4:8", se.Line, se.Col, se.Offset, line, col)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\nSELECT 2\n-- +goose StatementEnd\n-- +goose Down\nSELECT 3;",
		"-- migrate:up transaction:false\nSELECT 1\n-- migrate:down\nSELECT 2;",
		"SELECT 1; SELECT 2",
		"\uFEFF-- +goose Up\r\n",
	} {
		f.Add(s)
	}
	for _, s := range testcorpus.Files(f, ".sql") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("f.sql", []byte(src))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "f.sql" || !strings.HasPrefix(err.Error(), "f.sql") {
				t.Fatalf("error %v (%T) is not an *Error naming the file", err, err)
			}
			return
		}
		checkPositions(t, src, file)
	})
}
