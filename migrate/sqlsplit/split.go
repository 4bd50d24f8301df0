package sqlsplit

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Statement is one SQL statement as written in the source.
type Statement struct {
	// SQL is the statement exactly as written: src[Offset:Offset+len(SQL)].
	// It starts at the statement's first token, so comments before it are
	// not part of it, and it ends with the ';' that terminated it (kept, as
	// the Atlas and goose goldens keep it); a final statement without ';'
	// ends at its last token. Comments inside the statement are kept.
	SQL string
	// Offset is the byte offset of SQL's first byte in the source.
	Offset int
	// Line is the 1-based line of SQL's first byte.
	Line int
	// Col is the 1-based column of SQL's first byte, in characters.
	Col int
}

// Terminated reports whether the source ended the statement with ';'.
// Only the last statement of a source can be unterminated.
func (s Statement) Terminated() bool { return strings.HasSuffix(s.SQL, ";") }

// SyntaxError reports a construct that the source opens and never closes:
// a quote, a comment, a dollar quote, a parenthesis or a BEGIN ATOMIC body.
// Nothing of the source is run when it has one, because where its statements
// end is unknown.
type SyntaxError struct {
	Offset int    // byte offset where the unclosed construct starts
	Line   int    // 1-based line of Offset
	Col    int    // 1-based column of Offset, in characters
	Msg    string // what is unclosed and how to close it
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

func syntaxError(src string, offset int, format string, args ...any) *SyntaxError {
	line, col := Position(src, offset)
	return &SyntaxError{Offset: offset, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Byte classes, after PostgreSQL's scan.l.
const (
	space      = 1 << iota // space, \t, \n, \r, \f, \v
	identStart             // letters, '_' and every byte >= 0x80
	identCont              // identStart, digits and '$'
	tagCont                // what may follow a dollar-quote tag's first byte: identCont without '$'
	digit
)

var class = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] = space
	}
	for c := 0; c < 256; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c >= 0x80:
			t[c] = identStart | identCont | tagCont
		case '0' <= c && c <= '9':
			t[c] = identCont | tagCont | digit
		case c == '$':
			t[c] = identCont
		}
	}
	return t
}()

// bom is a UTF-8 byte order mark; some editors put one at the start of a file.
const bom = "\uFEFF"

// Split returns the statements of src in order. Whitespace, comments and
// empty statements between them are dropped, so a source with only those
// yields none. It fails with a *SyntaxError when src leaves a quote, comment,
// dollar quote, parenthesis or BEGIN ATOMIC body open at its end.
func Split(src string) ([]Statement, error) {
	var (
		stmts []Statement
		lines lineCounter
		st    = stmtState{start: -1}
		i     int
	)
	if strings.HasPrefix(src, bom) {
		i = len(bom) // PostgreSQL would read it as part of the first word
	}
	for i < len(src) {
		c := src[i]
		switch {
		case class[c]&space != 0:
			i++
			continue
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			i = lineEnd(src, i+2)
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := commentEnd(src, i)
			if end < 0 {
				return nil, syntaxError(src, i, "unterminated /* comment; close it with */")
			}
			i = end
			continue
		case c == '#' && st.start < 0:
			i = lineEnd(src, i+1)
			continue
		case c == ';' && st.parens == 0 && st.atomic == 0:
			if st.start >= 0 {
				stmts = append(stmts, lines.statement(src, st.start, i+1))
			}
			st = stmtState{start: -1}
			i++
			continue
		}
		if st.start < 0 {
			st.start = i
		}
		end, err := st.token(src, i)
		if err != nil {
			return nil, err
		}
		i, st.end = end, end
	}
	switch {
	case st.parens > 0:
		return nil, syntaxError(src, st.parenOpen, "unclosed '('; add the matching ')'")
	case st.atomic > 0:
		return nil, syntaxError(src, st.atomicOpen, "BEGIN ATOMIC body without its END; end the body with END;")
	case st.start >= 0:
		stmts = append(stmts, lines.statement(src, st.start, st.end))
	}
	return stmts, nil
}

// stmtState is what Split knows about the statement it is inside.
type stmtState struct {
	start, end int // offsets of the first token and just past the last one; start < 0 before the first token
	parens     int // open '(' count; ';' inside parentheses does not end the statement
	parenOpen  int // offset of the outermost open '('

	// CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END holds
	// ';'-terminated statements. Like psql, track BEGIN ATOMIC, and CASE
	// inside it because CASE also ends with END, at parenthesis depth 0 only.
	head       head
	atomic     int  // open BEGIN ATOMIC and CASE count
	atomicOpen int  // offset of the outermost BEGIN ATOMIC
	afterBegin bool // the previous token was BEGIN, so ATOMIC opens a body
	beginAt    int  // offset of that BEGIN
}

// head is how far the statement's leading words match CREATE [OR REPLACE]
// FUNCTION|PROCEDURE.
type head uint8

const (
	headStart head = iota
	headCreate
	headCreateOr
	headCreateOrReplace
	headRoutine // a function or procedure: BEGIN ATOMIC matters
	headOther   // anything else: it does not
)

// token consumes the token starting at src[i], which is neither whitespace,
// a comment nor a statement-ending ';', and returns the offset just past it.
func (st *stmtState) token(src string, i int) (int, error) {
	afterBegin := st.afterBegin
	st.afterBegin = false
	c := src[i]
	switch {
	case c == '\'':
		return stringEnd(src, i, i+1, false)
	case c == '"':
		return identEnd(src, i)
	case c == '$':
		return dollarEnd(src, i)
	case c == '(':
		if st.parens == 0 {
			st.parenOpen = i
		}
		st.parens++
	case c == ')':
		if st.parens > 0 { // a stray ')' is the server's to report
			st.parens--
		}
	case class[c]&identStart != 0:
		j := i + 1
		for j < len(src) && class[src[j]]&identCont != 0 {
			j++
		}
		if j == i+1 && (c == 'E' || c == 'e') && j < len(src) && src[j] == '\'' {
			return stringEnd(src, i, j+1, true)
		}
		st.word(src[i:j], i, afterBegin)
		return j, nil
	}
	return i + 1, nil
}

// word updates the BEGIN ATOMIC tracking for the identifier or keyword w at
// offset at.
func (st *stmtState) word(w string, at int, afterBegin bool) {
	switch st.head {
	case headStart:
		st.head = headOther
		if keyword(w, "create") {
			st.head = headCreate
		}
	case headCreate:
		st.head = headOther
		if keyword(w, "function") || keyword(w, "procedure") {
			st.head = headRoutine
		} else if keyword(w, "or") {
			st.head = headCreateOr
		}
	case headCreateOr:
		st.head = headOther
		if keyword(w, "replace") {
			st.head = headCreateOrReplace
		}
	case headCreateOrReplace:
		st.head = headOther
		if keyword(w, "function") || keyword(w, "procedure") {
			st.head = headRoutine
		}
	}
	if st.head != headRoutine || st.parens > 0 {
		return
	}
	switch {
	case afterBegin && keyword(w, "atomic"):
		if st.atomic == 0 {
			st.atomicOpen = st.beginAt
		}
		st.atomic++
	case st.atomic > 0 && keyword(w, "case"):
		st.atomic++
	case st.atomic > 0 && keyword(w, "end"):
		st.atomic--
	case keyword(w, "begin"):
		st.afterBegin, st.beginAt = true, at
	}
}

// keyword reports whether w is the lower-case ASCII keyword kw in any case.
func keyword(w, kw string) bool {
	if len(w) != len(kw) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i]|0x20 != kw[i] {
			return false
		}
	}
	return true
}

// lineEnd returns the offset of the first newline at or after i, or len(src).
// PostgreSQL ends a -- comment at '\r' as well as '\n'.
func lineEnd(src string, i int) int {
	rest := src[i:]
	n := strings.IndexByte(rest, '\n')
	if n < 0 {
		n = len(rest)
	}
	if r := strings.IndexByte(rest[:n], '\r'); r >= 0 {
		n = r
	}
	return i + n
}

// commentEnd returns the offset just past the /* comment starting at i,
// which may nest, or -1 if it never closes.
func commentEnd(src string, i int) int {
	depth := 1
	for j := i + 2; j+1 < len(src); {
		switch {
		case src[j] == '*' && src[j+1] == '/':
			j += 2
			if depth--; depth == 0 {
				return j
			}
		case src[j] == '/' && src[j+1] == '*':
			depth++
			j += 2
		default:
			j++
		}
	}
	return -1
}

// stringEnd returns the offset just past the string literal that starts at
// start and whose body starts at body, just after its opening quote. In an
// E'...' string (escapes) a backslash escapes the next byte.
func stringEnd(src string, start, body int, escapes bool) (int, error) {
	for {
		j, ok := quoteEnd(src, body, escapes)
		if !ok {
			return 0, syntaxError(src, start, "unterminated quoted string; close it with '")
		}
		if !escapes {
			// A continuation of a plain string ('a'\n'b') lexes the same
			// as a new string, so there is nothing to follow.
			return j, nil
		}
		// A continuation keeps the E'' rules, so 'b\'c' there is one string.
		next := continuation(src, j)
		if next < 0 {
			return j, nil
		}
		start, body = next, next+1
	}
}

// quoteEnd returns the offset just past the closing quote of a string body
// that starts at i.
func quoteEnd(src string, i int, escapes bool) (int, bool) {
	for i < len(src) {
		var k int
		if escapes {
			k = strings.IndexAny(src[i:], `\'`)
		} else {
			k = strings.IndexByte(src[i:], '\'')
		}
		if k < 0 {
			break
		}
		i += k
		switch {
		case src[i] == '\\':
			i += 2
		case i+1 < len(src) && src[i+1] == '\'':
			i += 2 // '' is a quote inside the string
		default:
			return i + 1, true
		}
	}
	return 0, false
}

// continuation returns the offset of the quote that continues a string
// literal ending at i, or -1. PostgreSQL joins two literals separated only
// by whitespace that holds a newline, and -- comments (scan.l: quotecontinue).
func continuation(src string, i int) int {
	newline := false
	for i < len(src) {
		switch c := src[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || (c == '\v' && newline):
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			i = lineEnd(src, i+2)
		case c == '\'' && newline:
			return i
		default:
			return -1
		}
	}
	return -1
}

// identEnd returns the offset just past the quoted identifier starting at i.
func identEnd(src string, i int) (int, error) {
	for j := i + 1; j < len(src); {
		k := strings.IndexByte(src[j:], '"')
		if k < 0 {
			break
		}
		j += k + 1
		if j < len(src) && src[j] == '"' {
			j++ // "" is a quote inside the identifier
			continue
		}
		return j, nil
	}
	return 0, syntaxError(src, i, `unterminated quoted identifier; close it with "`)
}

// dollarEnd returns the offset just past the token that starts with the '$'
// at i: a dollar-quoted string, a $1 parameter or a lone '$'.
func dollarEnd(src string, i int) (int, error) {
	j := i + 1
	if j < len(src) && class[src[j]]&digit != 0 {
		for j < len(src) && class[src[j]]&digit != 0 {
			j++
		}
		return j, nil
	}
	if j < len(src) && class[src[j]]&identStart != 0 {
		for j < len(src) && class[src[j]]&tagCont != 0 {
			j++
		}
	}
	if j >= len(src) || src[j] != '$' {
		return i + 1, nil // $foo without a closing '$' is no quote
	}
	delim := src[i : j+1]
	k := strings.Index(src[j+1:], delim)
	if k < 0 {
		return 0, syntaxError(src, i, "unterminated dollar-quoted string; close it with %s", delim)
	}
	return j + 1 + k + len(delim), nil
}

// lineCounter turns increasing offsets into lines and columns, scanning the
// source once in all.
type lineCounter struct {
	off       int // offset counted up to
	line      int // line of off, minus one
	lineStart int // offset where that line starts
}

func (lc *lineCounter) statement(src string, start, end int) Statement {
	seg := src[lc.off:start]
	if n := strings.Count(seg, "\n"); n > 0 {
		lc.line += n
		lc.lineStart = lc.off + strings.LastIndexByte(seg, '\n') + 1
	}
	lc.off = start
	return Statement{
		SQL:    src[start:end],
		Offset: start,
		Line:   lc.line + 1,
		Col:    utf8.RuneCountInString(src[lc.lineStart:start]) + 1,
	}
}
