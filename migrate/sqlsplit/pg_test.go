package sqlsplit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

// TestMain stops the shared PostgreSQL server the tests below start.
func TestMain(m *testing.M) { pgtest.Main(m) }

// trickyScript is valid PostgreSQL 14+ that a naive splitter gets wrong.
const trickyScript = `-- Semicolons everywhere but where statements end.
CREATE TABLE t (id int PRIMARY KEY, note text, data jsonb);
/* nested /* comment ; */ still ; a comment */
INSERT INTO t VALUES (1, 'semi;colon and ''quote''', '{"a": {"b": "x;y"}}');
INSERT INTO t VALUES (2, E'back\\slash \' quote;', '{}');
INSERT INTO t VALUES (3, E'continued'
  -- a comment between the parts
  ' \' in the same E string;', '{}');
INSERT INTO t VALUES (4, '\', '{}'); -- a plain string keeps its backslash
INSERT INTO t VALUES (5, U&'d\0061t\+000061;', '{}');
SELECT "id" AS "we;ird""name" FROM t WHERE data #>> '{a,b}' = 'x;y';
SELECT 7 # 3;
CREATE FUNCTION plpg() RETURNS int LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN length($$;$$ || $x$ $$ ; $x$); -- nested tags
END;
$fn$;
CREATE FUNCTION atomic_f(x int) RETURNS text LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x % 2 = 0 THEN 'even;' ELSE 'odd' END;
END;
CREATE PROCEDURE atomic_p(x int) LANGUAGE sql
BEGIN /* c */ ATOMIC
  INSERT INTO t VALUES (x, 'p;', '{}');
  INSERT INTO t VALUES (x + 1, 'p', '{}');
END;
CALL atomic_p(10);
CREATE TABLE log (note text);
CREATE RULE r AS ON INSERT TO log DO ALSO (INSERT INTO t VALUES (100, 'rule;', '{}'); INSERT INTO t VALUES (101, 'rule', '{}'));
INSERT INTO log VALUES ('x');
PREPARE q(int) AS SELECT $1 + 1;
EXECUTE q(1);
SELECT atomic_f(2), plpg()`

// TestSplitAgreesWithPostgres sends trickyScript to a real server twice:
// whole, as one simple query that the server splits itself, and statement
// by statement as Split cut it. Both must run the same statements, with the
// same results, each of Split's statements being exactly one to the server.
func TestSplitAgreesWithPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	whole := connect(t, ctx, srv.NewDatabase(t))
	results, err := whole.PgConn().Exec(ctx, trickyScript).ReadAll()
	if err != nil {
		t.Fatalf("the script as one query: %v", err)
	}
	var want []string
	for _, r := range results {
		want = append(want, r.CommandTag.String())
	}

	stmts, err := sqlsplit.Split(trickyScript)
	if err != nil {
		t.Fatal(err)
	}
	each := connect(t, ctx, srv.NewDatabase(t))
	var got []string
	for _, s := range stmts {
		results, err := each.PgConn().Exec(ctx, s.SQL).ReadAll()
		if err != nil {
			t.Fatalf("statement at %d:%d: %v\n%s", s.Line, s.Col, err, s.SQL)
		}
		if len(results) != 1 {
			t.Errorf("statement at %d:%d is %d statements to the server:\n%s", s.Line, s.Col, len(results), s.SQL)
		}
		for _, r := range results {
			got = append(got, r.CommandTag.String())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("statement by statement: %q\nwhole script:          %q", got, want)
	}

	const rows = `SELECT string_agg(id || '=' || note, ' | ' ORDER BY id) FROM t`
	var a, b string
	if err := whole.QueryRow(ctx, rows).Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := each.QueryRow(ctx, rows).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("rows differ:\nstatement by statement: %s\nwhole script:          %s", b, a)
	}
	for _, note := range []string{`back\slash ' quote;`, `continued ' in the same E string;`, `4=\`, "data;", "rule;"} {
		if !strings.Contains(b, note) {
			t.Errorf("rows %q lack %q", b, note)
		}
	}
}

// TestLocateWithPostgres checks that Locate turns the position of a real
// PostgreSQL error, counted in characters, into the right place in the file.
func TestLocateWithPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, ctx, srv.NewDatabase(t))

	src := "-- ünïcødé header\nSELECT 1; SELECT 'é' AS a, nope1;\nSELECT 'ééé' AS a,\n       'ß' AS b, nope2\nFROM (SELECT 1) AS x;\n"
	stmts, err := sqlsplit.Split(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(src, "\n")
	for _, s := range stmts[1:] {
		_, err := conn.Exec(ctx, s.SQL)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Position == 0 {
			t.Fatalf("%q: want an error with a position, got %v", s.SQL, err)
		}
		line, col := s.Locate(int(pgErr.Position))
		at := string([]rune(lines[line-1])[col-1:])
		if !strings.HasPrefix(at, "nope") {
			t.Errorf("%s (position %d) located at %d:%d, which reads %q", pgErr.Message, pgErr.Position, line, col, at)
		}
	}
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(ctx)) })
	return conn
}
