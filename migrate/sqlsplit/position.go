package sqlsplit

import (
	"strings"
	"unicode/utf8"
)

// Position returns the 1-based line and column of the byte at offset in
// src. Lines end at '\n'; the column counts characters (Unicode code points;
// a byte that is not valid UTF-8 counts as one). An offset past the end is
// taken as len(src), a negative one as 0.
func Position(src string, offset int) (line, col int) {
	offset = max(0, min(offset, len(src)))
	before := src[:offset]
	lineStart := strings.LastIndexByte(before, '\n') + 1
	return strings.Count(before, "\n") + 1, utf8.RuneCountInString(before[lineStart:]) + 1
}

// Locate returns the line and column in s's source of the character at
// position, a 1-based character index into s.SQL: the unit of the position
// field of a PostgreSQL error (pgconn.PgError.Position) when s.SQL is what was
// sent. PostgreSQL counts characters, not bytes, so a multi-byte character
// before the error moves the byte offset but not the position. A position
// past the end (PostgreSQL reports len+1 for "at end of input") locates just
// after the statement; one below 1 locates its start.
func (s Statement) Locate(position int) (line, col int) {
	off := len(s.SQL)
	if position <= 1 {
		off = 0
	} else {
		n := 1
		for i := range s.SQL { // ranges over characters; i is a byte offset
			if n == position {
				off = i
				break
			}
			n++
		}
	}
	before := s.SQL[:off]
	nl := strings.LastIndexByte(before, '\n')
	if nl < 0 {
		return s.Line, s.Col + utf8.RuneCountInString(before)
	}
	return s.Line + strings.Count(before, "\n"), utf8.RuneCountInString(before[nl+1:]) + 1
}
