package sqlfile_test

import (
	"fmt"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
)

func ExampleParse() {
	src := `-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_email ON users (email);

-- +goose Down
DROP INDEX CONCURRENTLY users_email;
`
	f, err := sqlfile.Parse("00007_users_email.sql", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Format, "no transaction:", f.Up.NoTransaction)
	for _, s := range f.Up.Statements {
		fmt.Printf("up   %d:%d %s\n", s.Line, s.Col, s.SQL)
	}
	for _, s := range f.Down.Statements {
		fmt.Printf("down %d:%d %s\n", s.Line, s.Col, s.SQL)
	}
	// Output:
	// goose no transaction: true
	// up   3:1 CREATE INDEX CONCURRENTLY users_email ON users (email);
	// down 6:1 DROP INDEX CONCURRENTLY users_email;
}

func ExampleParse_error() {
	src := `-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
`
	_, err := sqlfile.Parse("00003_x.sql", []byte(src))
	fmt.Println(err)
	// Output: 00003_x.sql:2: -- +goose StatementBegin without StatementEnd; add -- +goose StatementEnd after the statement
}
