package sqlsplit

import (
	"errors"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
)

// trickySeeds are inputs where a splitter is easy to get wrong.
var trickySeeds = []string{
	"",
	";",
	";;  ;\n",
	"-- only a comment",
	"/* a /* nested */ comment */",
	"SELECT 1",
	"SELECT 1; SELECT 2",
	"SELECT ';'; SELECT $$;$$; SELECT $a$ $$; $a$;",
	"SELECT E'\\';' ; SELECT '\\';",
	"SELECT E'a'\n'b\\'c'; SELECT 2;",
	"SELECT E'a' -- c\n  'b\\'';",
	`SELECT "a""b;"; SELECT U&"d\0061t;";`,
	"SELECT U&'\\0441;' UESCAPE '!';",
	"SELECT $1, $2$x$; SELECT a$b$c;",
	"SELECT foo$$bar; SELECT 1$$;$$;",
	"SELECT $é$ ; $é$;",
	"SELECT /* ; /* ; */ ; */ 1;",
	"SELECT -- ;\n1;",
	"SELECT '{a}'::jsonb #>> '{a}'; SELECT 1 # 2;",
	"# comment; here\nSELECT 1;",
	"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));",
	"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 3;",
	"create or replace procedure p() begin /* c */ atomic insert into t values (1); end; call p();",
	"CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; SELECT 2;",
	"BEGIN; SELECT 1; END;",
	"SELECT 'unterminated",
	"SELECT $x$ unterminated",
	"SELECT (1;",
	"CREATE FUNCTION f() BEGIN ATOMIC SELECT 1;",
	"/* unterminated",
	"\uFEFFSELECT 1;",
	"SELECT 'ünïcødé' ; SELECT \"ä\";\r\nSELECT 3\r\n",
	"\xff\xfe;\xc3",
}

func FuzzSplit(f *testing.F) {
	for _, s := range trickySeeds {
		f.Add(s)
	}
	for _, s := range testcorpus.Files(f, ".sql", ".sql.golden") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := Split(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
			}
			if se.Offset < 0 || se.Offset >= len(src) {
				t.Fatalf("error offset %d outside the source (len %d)", se.Offset, len(src))
			}
			if line, col := Position(src, se.Offset); line != se.Line || col != se.Col {
				t.Fatalf("error at %d:%d, but offset %d is %d:%d", se.Line, se.Col, se.Offset, line, col)
			}
			return
		}
		checkInvariants(t, src, stmts)
	})
}

// pgSpace is PostgreSQL's whitespace; U+00A0 and friends are identifier
// characters to it.
const pgSpace = " \t\n\r\f\v"

// checkInvariants checks what every successful Split must guarantee: the
// statements are in order, do not overlap, are the source's own bytes, are
// positioned correctly, and everything between them is filler (whitespace,
// comments, ';'). Splitting a statement's text again yields just itself.
func checkInvariants(t testing.TB, src string, stmts []Statement) {
	t.Helper()
	prev := 0
	for k, s := range stmts {
		if s.SQL == "" || strings.Trim(s.SQL, pgSpace) != s.SQL {
			t.Fatalf("statement %d %q is empty or not trimmed", k+1, s.SQL)
		}
		if s.Offset < prev || s.Offset+len(s.SQL) > len(src) {
			t.Fatalf("statement %d at %d overlaps the previous one (ends at %d) or the end", k+1, s.Offset, prev)
		}
		if src[s.Offset:s.Offset+len(s.SQL)] != s.SQL {
			t.Fatalf("statement %d %q is not src[%d:%d]", k+1, s.SQL, s.Offset, s.Offset+len(s.SQL))
		}
		if !isFiller(src, prev, s.Offset) {
			t.Fatalf("statement %d: %q between statements is not whitespace, comment or ';'", k+1, src[prev:s.Offset])
		}
		if line, col := Position(src, s.Offset); line != s.Line || col != s.Col {
			t.Fatalf("statement %d at %d:%d, but offset %d is %d:%d", k+1, s.Line, s.Col, s.Offset, line, col)
		}
		if k < len(stmts)-1 && !s.Terminated() {
			t.Fatalf("statement %d %q is not the last but has no ';'", k+1, s.SQL)
		}
		if !strings.HasPrefix(s.SQL, bom) { // a BOM is skipped only at the start of a source
			again, err := Split(s.SQL)
			if err != nil || len(again) != 1 || again[0].SQL != s.SQL {
				t.Fatalf("statement %d %q splits again into %+v, %v", k+1, s.SQL, again, err)
			}
		}
		prev = s.Offset + len(s.SQL)
	}
	if !isFiller(src, prev, len(src)) {
		t.Fatalf("%q after the last statement is not whitespace, comment or ';'", src[prev:])
	}
}

// isFiller reports whether src[from:to] is only what may separate
// statements. It is written apart from Split's own loop on purpose.
func isFiller(src string, from, to int) bool {
	i := from
	if i == 0 && strings.HasPrefix(src[:to], bom) {
		i = len(bom)
	}
	for i < to {
		switch rest := src[i:to]; {
		case strings.IndexByte(pgSpace+";", rest[0]) >= 0:
			i++
		case strings.HasPrefix(rest, "--"), rest[0] == '#':
			n := strings.IndexAny(rest, "\r\n")
			if n < 0 {
				n = len(rest)
			}
			i += n
		case strings.HasPrefix(rest, "/*"):
			depth, j := 0, 0
			for j < len(rest) {
				if strings.HasPrefix(rest[j:], "/*") {
					depth, j = depth+1, j+2
				} else if strings.HasPrefix(rest[j:], "*/") {
					depth, j = depth-1, j+2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			if depth != 0 {
				return false
			}
			i += j
		default:
			return false
		}
	}
	return true
}
