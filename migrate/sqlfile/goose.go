package sqlfile

import "fmt"

// goose builds a goose-format file from its annotation lines marks.
func (p *parser) goose(marks []marker) (*File, error) {
	f := &File{Format: FormatGoose}
	var (
		cur      *Section // the section being filled; nil before -- +goose Up
		upLine   int
		block    *marker // the open StatementBegin
		noTx     bool
		from     = 0 // start of the text since the last annotation
		fromLine = 1
	)
	// flush adds the statements of the text before the annotation m, or
	// before the end of the file when m is nil. goose requires each to end
	// with ';' there, or it would glue the next block onto it.
	flush := func(m *marker) error {
		to, where := len(p.src), "at the end of the file"
		if m != nil {
			to, where = m.start, fmt.Sprintf("before %s on line %d", gooseNames[m.name], m.line)
		}
		stmts, err := p.split(from, to, fromLine)
		if err != nil || len(stmts) == 0 {
			return err
		}
		if cur == nil {
			return p.errorf(stmts[0].Line, "move it below -- +goose Up; goose runs nothing above it", "SQL before -- +goose Up")
		}
		if last := stmts[len(stmts)-1]; !last.Terminated() {
			return p.errorf(last.Line, "end it with ';', or put it between -- +goose StatementBegin and -- +goose StatementEnd",
				"statement does not end with ';' %s", where)
		}
		cur.Statements = append(cur.Statements, stmts...)
		return nil
	}
	for i := range marks {
		m := &marks[i]
		if block != nil && m.name != "statementend" {
			return nil, p.errorf(m.line, "add -- +goose StatementEnd after the statement",
				"%s inside the StatementBegin block opened on line %d", gooseNames[m.name], block.line)
		}
		switch m.name {
		case "up":
			if cur != nil {
				return nil, p.errorf(m.line, "a file has one Up section; remove one", "second -- +goose Up (the first is on line %d)", upLine)
			}
			if err := flush(m); err != nil {
				return nil, err
			}
			cur, upLine = &f.Up, m.line
		case "down":
			switch {
			case cur == nil:
				return nil, p.errorf(m.line, "put the Up section first", "-- +goose Down before -- +goose Up")
			case f.Down != nil:
				return nil, p.errorf(m.line, "a file has one Down section; remove one", "second -- +goose Down")
			}
			if err := flush(m); err != nil {
				return nil, err
			}
			f.Down = &Section{}
			cur = f.Down
		case "statementbegin":
			if cur == nil {
				return nil, p.errorf(m.line, "add -- +goose Up above it", "-- +goose StatementBegin before -- +goose Up")
			}
			if err := flush(m); err != nil {
				return nil, err
			}
			block = m
		case "statementend":
			if block == nil {
				return nil, p.errorf(m.line, "add -- +goose StatementBegin before the statement, or remove this line",
					"-- +goose StatementEnd without StatementBegin")
			}
			if stmt, ok := p.blockStatement(block.next, m.start, block.line+1); ok {
				cur.Statements = append(cur.Statements, stmt)
			}
			block = nil
		case "envsub on":
			return nil, p.errorf(m.line, "remove it and write the values into the migration",
				"-- +goose ENVSUB ON is not supported: a migration must not depend on the environment it runs in")
		case "no transaction", "envsub off":
			// A file-wide setting, or the default; the line stays a comment
			// in the text around it.
			noTx = noTx || m.name == "no transaction"
			continue
		}
		from, fromLine = m.next, m.line+1
	}
	if block != nil {
		return nil, p.errorf(block.line, "add -- +goose StatementEnd after the statement", "-- +goose StatementBegin without StatementEnd")
	}
	if cur == nil {
		return nil, p.errorf(0, "add -- +goose Up above the first statement", "goose annotations but no -- +goose Up")
	}
	if err := flush(nil); err != nil {
		return nil, err
	}
	f.Up.NoTransaction = noTx
	if f.Down != nil {
		f.Down.NoTransaction = noTx
	}
	return f, nil
}
