package sqlsplit_test

import (
	"fmt"

	"github.com/uplinkhq/uplink/migrate/sqlsplit"
)

func ExampleSplit() {
	src := `-- Create the table.
CREATE TABLE t (id int, note text DEFAULT 'a;b');
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RETURN 1;
END;
$$;
SELECT 'no semicolon at the end'`
	stmts, err := sqlsplit.Split(src)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range stmts {
		fmt.Printf("%d:%d %q\n", s.Line, s.Col, s.SQL)
	}
	// Output:
	// 2:1 "CREATE TABLE t (id int, note text DEFAULT 'a;b');"
	// 3:1 "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN 1;\nEND;\n$$;"
	// 8:1 "SELECT 'no semicolon at the end'"
}

func ExampleStatement_Locate() {
	src := "-- +goose Up\nSELECT 'é', nope FROM t;"
	stmts, _ := sqlsplit.Split(src)
	// PostgreSQL: column "nope" does not exist, position 13 (in characters).
	line, col := stmts[0].Locate(13)
	fmt.Printf("%d:%d\n", line, col)
	// Output: 2:13
}

func ExampleSplit_syntaxError() {
	_, err := sqlsplit.Split("SELECT 1;\nSELECT $body$ never closed;")
	fmt.Println(err)
	// Output: 2:8: unterminated dollar-quoted string; close it with $body$
}
