package sqlfile

// dbmate builds a dbmate-format file from its directive lines marks.
func (p *parser) dbmate(marks []marker) (*File, error) {
	var up, down *marker
	for i := range marks {
		m := &marks[i]
		switch {
		case m.name == "up" && up != nil:
			return nil, p.errorf(m.line, "a file has one up section; remove one", "second -- migrate:up (the first is on line %d)", up.line)
		case m.name == "up":
			up = m
		case up == nil:
			return nil, p.errorf(m.line, "put the up section first", "-- migrate:down before -- migrate:up")
		case down != nil:
			return nil, p.errorf(m.line, "a file has one down section; remove one", "second -- migrate:down (the first is on line %d)", down.line)
		default:
			down = m
		}
	}
	before, err := p.split(0, up.start, 1)
	if err != nil {
		return nil, err
	}
	if len(before) > 0 {
		return nil, p.errorf(before[0].Line, "move it below -- migrate:up", "SQL before -- migrate:up")
	}
	f := &File{Format: FormatDbmate}
	upEnd := len(p.src)
	if down != nil {
		upEnd = down.start
	}
	if f.Up, err = p.section(up, upEnd); err != nil {
		return nil, err
	}
	if down != nil {
		s, err := p.section(down, len(p.src))
		if err != nil {
			return nil, err
		}
		f.Down = &s
	}
	return f, nil
}

// section returns the dbmate section that m opens and to ends.
func (p *parser) section(m *marker, to int) (Section, error) {
	stmts, err := p.split(m.next, to, m.line+1)
	return Section{Statements: stmts, NoTransaction: m.noTx}, err
}
