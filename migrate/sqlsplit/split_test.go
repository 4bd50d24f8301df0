package sqlsplit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	type stmt = Statement
	tests := []struct {
		name string
		src  string
		want []Statement
	}{
		{"empty", "", nil},
		{"whitespace", " \n\t\r\n", nil},
		{"comments only", "-- a\n/* b /* c */ */\n# d\n", nil},
		{"empty statements", ";; ;\n;", nil},
		{"one", "SELECT 1;", []stmt{{"SELECT 1;", 0, 1, 1}}},
		{"final without semicolon", "SELECT 1;\n  SELECT 2  \n", []stmt{
			{"SELECT 1;", 0, 1, 1}, {"SELECT 2", 12, 2, 3}}},
		{"final without semicolon, trailing comment dropped", "SELECT 2 -- done\n/* end */", []stmt{
			{"SELECT 2", 0, 1, 1}}},
		{"comment before is not part, inside is", "-- c\nSELECT /* ; */ 1 -- ;\n;", []stmt{
			{"SELECT /* ; */ 1 -- ;\n;", 5, 2, 1}}},
		{"two on a line", "SELECT 1; SELECT 2;", []stmt{
			{"SELECT 1;", 0, 1, 1}, {"SELECT 2;", 10, 1, 11}}},
		{"column counts characters", "SELECT 'é';SELECT 2;", []stmt{
			{"SELECT 'é';", 0, 1, 1}, {"SELECT 2;", 12, 1, 12}}},
		{"crlf", "SELECT 1;\r\nSELECT 2;\r\n", []stmt{
			{"SELECT 1;", 0, 1, 1}, {"SELECT 2;", 11, 2, 1}}},
		{"byte order mark", "\uFEFFSELECT 1;", []stmt{{"SELECT 1;", 3, 1, 2}}},

		// Strings.
		{"quote doubled", "SELECT 'a'';b'; SELECT 2;", []stmt{
			{"SELECT 'a'';b';", 0, 1, 1}, {"SELECT 2;", 16, 1, 17}}},
		{"standard string keeps backslash", `SELECT '\'; SELECT 2;`, []stmt{
			{`SELECT '\';`, 0, 1, 1}, {"SELECT 2;", 12, 1, 13}}},
		{"E string escapes quote", `SELECT E'\';'; SELECT 2;`, []stmt{
			{`SELECT E'\';';`, 0, 1, 1}, {"SELECT 2;", 15, 1, 16}}},
		{"e string escapes backslash", `SELECT e'\\'; SELECT 2;`, []stmt{
			{`SELECT e'\\';`, 0, 1, 1}, {"SELECT 2;", 14, 1, 15}}},
		{"E string doubled quote", `SELECT E'a'';'; SELECT 2;`, []stmt{
			{`SELECT E'a'';';`, 0, 1, 1}, {"SELECT 2;", 16, 1, 17}}},
		{"identifier ending in e is no E string", `SELECT some'\'; SELECT 2;`, []stmt{
			{`SELECT some'\';`, 0, 1, 1}, {"SELECT 2;", 16, 1, 17}}},
		{"E string continues on the next line", "SELECT E'a'\n  'b\\';c';\nSELECT 2;", []stmt{
			{"SELECT E'a'\n  'b\\';c';", 0, 1, 1}, {"SELECT 2;", 23, 3, 1}}},
		{"E string continues past a comment", "SELECT E'a' -- x\n'\\'';", []stmt{
			{"SELECT E'a' -- x\n'\\'';", 0, 1, 1}}},
		{"no continuation on the same line", `SELECT E'a' '\'; SELECT 2;`, []stmt{
			{`SELECT E'a' '\';`, 0, 1, 1}, {"SELECT 2;", 17, 1, 18}}},
		{"U& string", `SELECT U&'d\0061t;' UESCAPE '\'; SELECT 2;`, []stmt{
			{`SELECT U&'d\0061t;' UESCAPE '\';`, 0, 1, 1}, {"SELECT 2;", 33, 1, 34}}},
		{"B X N strings", "SELECT B'1;', X'f;', N'n;';", []stmt{
			{"SELECT B'1;', X'f;', N'n;';", 0, 1, 1}}},

		// Identifiers.
		{"quoted identifier", `SELECT "a"";b" FROM "t;";`, []stmt{
			{`SELECT "a"";b" FROM "t;";`, 0, 1, 1}}},
		{"quoted identifier keeps backslash", `SELECT "a\"; SELECT 2;`, []stmt{
			{`SELECT "a\";`, 0, 1, 1}, {"SELECT 2;", 13, 1, 14}}},
		{"U& identifier", `SELECT U&"d;" ;`, []stmt{{`SELECT U&"d;" ;`, 0, 1, 1}}},

		// Dollar quotes.
		{"dollar quote", "SELECT $$a;'b$$; SELECT 2;", []stmt{
			{"SELECT $$a;'b$$;", 0, 1, 1}, {"SELECT 2;", 17, 1, 18}}},
		{"tagged dollar quote", "SELECT $fn$ $$; $x$ $fn$; SELECT 2;", []stmt{
			{"SELECT $fn$ $$; $x$ $fn$;", 0, 1, 1}, {"SELECT 2;", 26, 1, 27}}},
		{"tags are case sensitive", "SELECT $a$ $A$; $a$;", []stmt{
			{"SELECT $a$ $A$; $a$;", 0, 1, 1}}},
		{"non-ASCII tag", "SELECT $é$;$é$;", []stmt{{"SELECT $é$;$é$;", 0, 1, 1}}},
		{"parameters are not quotes", "SELECT $1, $2; SELECT $3;", []stmt{
			{"SELECT $1, $2;", 0, 1, 1}, {"SELECT $3;", 15, 1, 16}}},
		{"parameter then quote", "SELECT $1$a$;$a$;", []stmt{{"SELECT $1$a$;$a$;", 0, 1, 1}}},
		{"dollar inside identifier", "SELECT a$b$; SELECT x$$;", []stmt{
			{"SELECT a$b$;", 0, 1, 1}, {"SELECT x$$;", 13, 1, 14}}},
		{"lone dollar", "SELECT $x; SELECT 2;", []stmt{
			{"SELECT $x;", 0, 1, 1}, {"SELECT 2;", 11, 1, 12}}},
		{"number then dollar quote", "SELECT 1$$;$$;", []stmt{{"SELECT 1$$;$$;", 0, 1, 1}}},

		// Comments.
		{"nested block comment", "SELECT /* /* ; */ ; */ 1; SELECT 2;", []stmt{
			{"SELECT /* /* ; */ ; */ 1;", 0, 1, 1}, {"SELECT 2;", 26, 1, 27}}},
		{"line comment hides semicolon", "SELECT 1 -- ;\n+ 1;", []stmt{{"SELECT 1 -- ;\n+ 1;", 0, 1, 1}}},
		{"line comment ends at CR", "SELECT 1 -- x\r+ 1;", []stmt{{"SELECT 1 -- x\r+ 1;", 0, 1, 1}}},
		{"comment markers in strings", "SELECT '--', '/*'; SELECT 2;", []stmt{
			{"SELECT '--', '/*';", 0, 1, 1}, {"SELECT 2;", 19, 1, 20}}},
		{"hash comment before a statement", "# x;\nSELECT 1;", []stmt{{"SELECT 1;", 5, 2, 1}}},
		{"hash inside a statement is an operator", "SELECT j #>> '{a}', 5 # 3;", []stmt{
			{"SELECT j #>> '{a}', 5 # 3;", 0, 1, 1}}},

		// Parentheses.
		{"semicolon in parentheses", "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY t); SELECT 2;", []stmt{
			{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY t);", 0, 1, 1},
			{"SELECT 2;", 78, 1, 79}}},
		{"stray close parenthesis", "SELECT 1); SELECT 2;", []stmt{
			{"SELECT 1);", 0, 1, 1}, {"SELECT 2;", 11, 1, 12}}},

		// BEGIN ATOMIC.
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n SELECT 2;\nEND;\nSELECT 3;", []stmt{
			{"CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n SELECT 2;\nEND;", 0, 1, 1},
			{"SELECT 3;", 85, 6, 1}}},
		{"begin atomic with case", "create or replace function f(x int) returns bool begin atomic select case when x > 0 then true else false end; end; select 3;", []stmt{
			{"create or replace function f(x int) returns bool begin atomic select case when x > 0 then true else false end; end;", 0, 1, 1},
			{"select 3;", 116, 1, 117}}},
		{"begin atomic procedure, comment between", "CREATE PROCEDURE p() BEGIN /* x */ ATOMIC INSERT INTO t VALUES (1); END; CALL p();", []stmt{
			{"CREATE PROCEDURE p() BEGIN /* x */ ATOMIC INSERT INTO t VALUES (1); END;", 0, 1, 1},
			{"CALL p();", 73, 1, 74}}},
		{"case in parentheses is not counted", "CREATE FUNCTION f() BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); END; SELECT 2;", []stmt{
			{"CREATE FUNCTION f() BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); END;", 0, 1, 1},
			{"SELECT 2;", 74, 1, 75}}},
		{"case outside begin atomic", "CREATE FUNCTION f(x int) RETURNS int RETURN CASE WHEN x > 0 THEN 1 END; SELECT 2;", []stmt{
			{"CREATE FUNCTION f(x int) RETURNS int RETURN CASE WHEN x > 0 THEN 1 END;", 0, 1, 1},
			{"SELECT 2;", 72, 1, 73}}},
		{"function named begin", "CREATE FUNCTION begin() RETURNS int RETURN 1; SELECT 2;", []stmt{
			{"CREATE FUNCTION begin() RETURNS int RETURN 1;", 0, 1, 1}, {"SELECT 2;", 46, 1, 47}}},
		{"transaction BEGIN/END are plain statements", "BEGIN; SELECT 1; END;", []stmt{
			{"BEGIN;", 0, 1, 1}, {"SELECT 1;", 7, 1, 8}, {"END;", 17, 1, 18}}},
		{"begin atomic outside a routine", "SELECT begin atomic; SELECT 2;", []stmt{
			{"SELECT begin atomic;", 0, 1, 1}, {"SELECT 2;", 21, 1, 22}}},
		{"plpgsql body in dollar quotes", "CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; END; $$ LANGUAGE plpgsql; SELECT 2;", []stmt{
			{"CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; END; $$ LANGUAGE plpgsql;", 0, 1, 1},
			{"SELECT 2;", 82, 1, 83}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.src)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q)\n got %+v\nwant %+v", tt.src, got, tt.want)
			}
			checkInvariants(t, tt.src, got)
		})
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"quote", "SELECT 1;\nSELECT 'abc;\n", 2, 8, "unterminated quoted string"},
		{"quote ended by backslash in E string", `SELECT E'abc\';`, 1, 8, "unterminated quoted string"},
		{"E string continuation", "SELECT E'a'\n 'b\\';", 2, 2, "unterminated quoted string"},
		{"identifier", `SELECT "abc;`, 1, 8, "unterminated quoted identifier"},
		{"dollar quote", "SELECT 1;\n  SELECT $fn$ body $fn;", 2, 10, "close it with $fn$"},
		{"empty-tag dollar quote", "SELECT $$ ;", 1, 8, "close it with $$"},
		{"block comment", "SELECT 1; /* a /* b */", 1, 11, "unterminated /* comment"},
		{"column counts characters", "SELECT 'é', 'x", 1, 13, "unterminated quoted string"},
		{"parenthesis", "SELECT (1, (2);\nSELECT 3;", 1, 8, "unclosed '('"},
		{"begin atomic", "SELECT 1;\nCREATE FUNCTION f() RETURNS int\nBEGIN ATOMIC\nSELECT 1;\n", 3, 1, "BEGIN ATOMIC body without its END"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Split(%q) = %+v, %v; want a *SyntaxError", tt.src, got, err)
			}
			if se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error %q; want %d:%d: ...%s...", se, tt.line, tt.col, tt.msg)
			}
			if line, col := Position(tt.src, se.Offset); line != se.Line || col != se.Col {
				t.Errorf("Offset %d is %d:%d, error says %d:%d", se.Offset, line, col, se.Line, se.Col)
			}
		})
	}
}

func TestPosition(t *testing.T) {
	src := "ab\ncdé\n\nx"
	tests := []struct{ off, line, col int }{
		{-1, 1, 1}, {0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {5, 2, 3}, {7, 2, 4},
		{8, 3, 1}, {9, 4, 1}, {10, 4, 2}, {99, 4, 2},
	}
	for _, tt := range tests {
		if line, col := Position(src, tt.off); line != tt.line || col != tt.col {
			t.Errorf("Position(%d) = %d:%d; want %d:%d", tt.off, line, col, tt.line, tt.col)
		}
	}
}

func TestLocate(t *testing.T) {
	// The statement starts at line 2, column 3 of its file.
	src := "--\n  SELECT 'é',\n  ßx FROM t;"
	stmts, err := Split(src)
	if err != nil || len(stmts) != 1 {
		t.Fatalf("Split = %+v, %v", stmts, err)
	}
	s := stmts[0]
	tests := []struct {
		position  int
		line, col int
	}{
		{0, 2, 3},  // before the start: the start
		{1, 2, 3},  // 'S'
		{8, 2, 10}, // the quote before é
		{10, 2, 12},
		{11, 2, 13}, // ','
		{12, 2, 14}, // the newline ending line 2
		{15, 3, 3},  // 'ß', after 2 spaces
		{16, 3, 4},  // 'x': ß is one character, two bytes
		{24, 3, 12}, // ';'
		{25, 3, 13}, // "at end of input"
		{99, 3, 13},
	}
	for _, tt := range tests {
		if line, col := s.Locate(tt.position); line != tt.line || col != tt.col {
			t.Errorf("Locate(%d) = %d:%d; want %d:%d", tt.position, line, col, tt.line, tt.col)
		}
	}
}
