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
//	        file). As goose v3 matches them: from the first column (an
//	        indented one is an error), in any case, with or without spaces
//	        after "--". The block between StatementBegin and StatementEnd is
//	        one statement, verbatim but for the blank and -- comment lines
//	        that lead it.
//
//	dbmate  -- migrate:up and -- migrate:down, each optionally followed by
//	        transaction:false to run that section outside a transaction.
//
// Statements are cut by sqlsplit, a real lexer, rather than by lines:
// "SELECT 1; SELECT 2;" on one line is two statements, a ';' inside a string
// never ends one, and comment-only statements are dropped (a MySQL
// "/*!80031 ... */;" is a no-op to PostgreSQL; goose would send it).
//
// Where this package is stricter than the tools it reads, it is because the
// file would otherwise run differently from how it reads:
//
//   - A goose file's statements must end with ';' before the next section,
//     StatementBegin or the end of the file, as goose itself demands; goose
//     would glue a statement without one onto the next block.
//   - -- +goose ENVSUB ON is refused: a migration's text must not depend on the
//     environment of whichever replica happens to run it, and os.Expand would
//     mangle $1 and dollar quotes. -- +goose ENVSUB OFF, the default, is
//     accepted and changes nothing.
//   - A dbmate option other than transaction:false or transaction:true is an
//     error, where dbmate ignores it ("transaction: false" would silently run
//     in a transaction).
//   - Goose and dbmate annotations in one file are an error, and so is any
//     goose annotation but StatementEnd inside a StatementBegin block.
//
// And where it is more lenient: "+GOOSE" is an annotation too (goose would
// ignore it and run the file differently), runs of spaces inside an
// annotation count as one, and a comment that merely mentions +goose
// further along the line is a comment (goose rejects the file).
//
// Every error is an *Error naming the file and line and saying what to do.
package sqlfile
