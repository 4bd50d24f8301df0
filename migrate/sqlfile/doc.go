// Package sqlfile parses one SQL migration file into its up and down
// sections, each a list of statements found by sqlsplit.
//
// Three formats are recognised, by their annotation lines:
//
//	plain   no annotations: the whole file is the up migration, in a
//	        transaction, and there is no down.
//
//	goose   -- +goose Up, -- +goose Down, -- +goose StatementBegin and
//	        -- +goose StatementEnd, -- +goose NO TRANSACTION (for the whole
//	        file). Annotations are matched as goose v3 matches them: at the
//	        start of the line, case-insensitively, spaces free after "--".
//
//	dbmate  -- migrate:up and -- migrate:down, each optionally followed by
//	        transaction:false to run that section outside a transaction.
//
// Where this package is stricter than the tools it reads, it is because the
// file would otherwise run differently from how it reads:
//
//   - A goose file's statements must end with ';' before the next section,
//     StatementBegin or the end of the file, as goose itself demands; goose
//     would glue a statement without one onto the next block.
//   - Statements are split by a real lexer, so "SELECT 1; SELECT 2;" on one
//     line is two statements, and a ';' inside a string never ends one.
//   - -- +goose ENVSUB ON is refused: a migration's text must not depend on the
//     environment of whichever replica happens to run it, and os.Expand would
//     mangle $1 and dollar quotes. -- +goose ENVSUB OFF, the default, is
//     accepted and changes nothing.
//   - A dbmate option other than transaction:false or transaction:true is an
//     error, where dbmate ignores it ("transaction: false" would silently run
//     in a transaction).
//   - Goose and dbmate annotations in one file are an error.
//
// Comment-only statements are dropped (a MySQL "/*!80031 ... */;" is a no-op
// to PostgreSQL); goose would send them.
//
// Every error is an *Error naming the file and line and saying what to do.
package sqlfile
