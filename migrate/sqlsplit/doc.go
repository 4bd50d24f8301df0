// Package sqlsplit cuts a PostgreSQL script into its statements, the way psql
// would send them, without parsing SQL.
//
// It is a lexer, not a parser: it knows just enough of PostgreSQL's lexical
// rules to find the semicolons that end statements and to ignore the ones that
// do not:
//
//   - '...' strings, with a quote inside written twice; standard_conforming_strings
//     is assumed on (the default since PostgreSQL 9.1), so a backslash in a
//     plain string is an ordinary character;
//   - E'...' strings, in which a backslash escapes the next character, including
//     their continuation onto a following line ('a'\n'b');
//   - "..." identifiers with "" doubling, and U&'...' / U&"..." forms;
//   - dollar quotes $$...$$ and $tag$...$tag$ ($1 is a parameter, not a quote);
//   - -- comments and nested /* /* */ */ comments;
//   - parentheses (CREATE RULE ... DO (a; b) keeps its semicolons);
//   - BEGIN ATOMIC ... END bodies of CREATE [OR REPLACE] FUNCTION|PROCEDURE,
//     counting CASE ... END inside them, as psql does.
//
// A '#' before a statement's first token starts a comment to the end of the
// line (MySQL style, as Atlas's lexer allows). No PostgreSQL statement can start
// with '#', so this never hides SQL the server would have run; inside a
// statement '#' is the operator it is in PostgreSQL (#>>, #-).
//
// Positions: Offset is in bytes; Line counts '\n'; Col counts characters
// (Unicode code points), the unit PostgreSQL uses for an error's position and
// editors use for columns. Statement.Locate turns PostgreSQL's position into a
// line and column in the source.
package sqlsplit
