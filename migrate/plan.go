package migrate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/uplinkhq/uplink/status"
)

// State is where one migration stands.
type State string

const (
	StateApplied State = "applied"
	StatePending State = "pending"
	// StateFailed is pending too: its last attempt failed, or was cut off
	// mid-way, and the next Up retries it.
	StateFailed State = "failed"
	// StateUnknown is applied in the database but not known to this
	// binary: the database is ahead (a newer release ran), or a migration
	// was removed.
	StateUnknown State = "unknown"
)

// Entry is one migration in a Report.
type Entry struct {
	Line    string `json:"line"`
	Version int64  `json:"version"`
	Name    string `json:"name"`
	File    string `json:"file,omitempty"`
	State   State  `json:"state"`
	// Checksum is the migration's current checksum (empty for unknown
	// ones and Go migrations without one).
	Checksum string `json:"checksum,omitempty"`
	// Drifted: applied, and the source changed since (see Accept).
	Drifted bool `json:"drifted,omitempty"`
	// OutOfOrder: pending, but older than the newest applied version of
	// its line.
	OutOfOrder bool `json:"out_of_order,omitempty"`
	// Resume is, for a failed no-transaction migration, how many of its
	// statements committed before and are unchanged, so a retry skips
	// them.
	Resume int `json:"resume,omitempty"`
	// Record is the history row, nil for a migration never tried.
	Record *Record `json:"record,omitempty"`

	migration *Migration
}

// Migration returns the migration, nil for an unknown one.
func (e Entry) Migration() *Migration { return e.migration }

func (e Entry) pending() bool { return e.State == StatePending || e.State == StateFailed }

// LineReport is one line's state.
type LineReport struct {
	Line string `json:"line"`
	// Current is the newest applied version, 0 when none.
	Current int64 `json:"current"`
	// Target is the newest version this binary knows.
	Target int64 `json:"target"`
	// Entries are the line's migrations and unknown history rows, by
	// version.
	Entries []Entry `json:"entries"`
}

// Report is the state of every line, from Status.
type Report struct {
	Lines []LineReport `json:"lines"`
	// InvalidIndexes are indexes PostgreSQL marks invalid (pg_index.indisvalid
	// is false), as schema.name: most often left by a failed CREATE INDEX
	// CONCURRENTLY, or being built right now.
	InvalidIndexes []string `json:"invalid_indexes,omitempty"`
}

// Pending returns the entries Up would run, in order.
func (r *Report) Pending() []Entry {
	var out []Entry
	for _, l := range r.Lines {
		for _, e := range l.Entries {
			if e.pending() {
				out = append(out, e)
			}
		}
	}
	return out
}

// Plan is what Up would do now.
type Plan struct {
	// Lines give each line's current and target version; their Entries
	// hold only the pending migrations, which run in this order.
	Lines []LineReport `json:"lines"`
}

// Steps returns the pending migrations in the order Up runs them.
func (p *Plan) Steps() []Entry {
	var out []Entry
	for _, l := range p.Lines {
		out = append(out, l.Entries...)
	}
	return out
}

// analyze compares lines with their history rows. The migrations' files
// must have been read (see Migrator.readFiles): an unread one has no
// checksum to compare.
func analyze(lines []Line, recs []Record) *Report {
	byLine := map[string]map[int64]*Record{}
	for i := range recs {
		r := &recs[i]
		rows := byLine[r.Line]
		if rows == nil {
			rows = make(map[int64]*Record, len(recs))
			byLine[r.Line] = rows
		}
		if r.Version != 0 {
			rows[r.Version] = r
		}
	}
	rep := &Report{}
	for _, l := range lines {
		lr := LineReport{Line: l.Name, Entries: make([]Entry, 0, len(l.Migrations))}
		rows := byLine[l.Name]
		recorded := 0
		for _, m := range l.Migrations {
			lr.Target = max(lr.Target, m.Version)
			e := Entry{Line: l.Name, Version: m.Version, Name: m.Name, File: m.File, Checksum: m.Checksum(),
				State: StatePending, migration: m, Record: rows[m.Version]}
			if r := e.Record; r != nil {
				recorded++
				switch r.Outcome {
				case OutcomeApplied:
					e.State = StateApplied
					e.Drifted = r.Checksum != "" && e.Checksum != "" && r.Checksum != e.Checksum
				default:
					e.State = StateFailed
					e.Resume = resumable(m, r)
				}
			}
			lr.Entries = append(lr.Entries, e)
		}
		if recorded < len(rows) { // rows of migrations this binary does not have
			known := make(map[int64]bool, len(l.Migrations))
			for _, m := range l.Migrations {
				known[m.Version] = true
			}
			for v, r := range rows {
				if !known[v] && r.Outcome == OutcomeApplied {
					lr.Entries = append(lr.Entries, Entry{Line: l.Name, Version: v, Name: r.Name, State: StateUnknown, Record: r})
				}
			}
		}
		byVersion := func(a, b Entry) int { return cmp.Compare(a.Version, b.Version) }
		if !slices.IsSortedFunc(lr.Entries, byVersion) {
			slices.SortFunc(lr.Entries, byVersion)
		}
		for _, e := range lr.Entries {
			if e.State == StateApplied || e.State == StateUnknown {
				lr.Current = max(lr.Current, e.Version)
			}
		}
		for i := range lr.Entries {
			lr.Entries[i].OutOfOrder = lr.Entries[i].pending() && lr.Entries[i].Version < lr.Current
		}
		rep.Lines = append(rep.Lines, lr)
	}
	return rep
}

// plan keeps the pending entries, of one line up to a version when line
// is not empty.
func (r *Report) plan(line string, upTo int64) *Plan {
	p := &Plan{}
	for _, l := range r.Lines {
		if line != "" && l.Line != line {
			continue
		}
		pl := LineReport{Line: l.Line, Current: l.Current, Target: l.Target}
		for _, e := range l.Entries {
			if e.pending() && (line == "" || e.Version <= upTo) {
				pl.Entries = append(pl.Entries, e)
			}
		}
		p.Lines = append(p.Lines, pl)
	}
	return p
}

// problems returns what forbids running the plan: drift in any line, and
// out-of-order pending migrations unless allowed.
func (r *Report) problems(allowOutOfOrder bool) error {
	var errs []error
	for _, l := range r.Lines {
		ooo := &OutOfOrderError{Line: l.Line, Newest: l.Current}
		for _, e := range l.Entries {
			if e.Drifted {
				errs = append(errs, &DriftError{Line: e.Line, Version: e.Version, Name: e.Name, File: e.File,
					Recorded: e.Record.Checksum, Current: e.Checksum})
			}
			if e.OutOfOrder {
				ooo.Pending = append(ooo.Pending, e.migration)
			}
		}
		if len(ooo.Pending) > 0 && !allowOutOfOrder {
			errs = append(errs, ooo)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	var drift *DriftError
	hint := "renumber the pending migrations above the newest applied version, or allow out-of-order migrations (Config.AllowOutOfOrder, --allow-out-of-order)"
	if errors.As(errors.Join(errs...), &drift) {
		hint = fmt.Sprintf("restore the file as it was applied, or record the change on purpose: uplink migrate accept --line %s %d", drift.Line, drift.Version)
	}
	return &status.ActionError{Problem: "migrations do not match the database; nothing was run", Hint: hint, Err: errors.Join(errs...)}
}

// resumable counts the statements of a failed no-transaction migration
// that committed in an earlier attempt and have not changed since.
func resumable(m *Migration, r *Record) int {
	if !m.NoTransaction() || m.up.fn != nil {
		return 0
	}
	done := min(r.StatementsDone, len(r.StatementHashes), len(m.up.stmts))
	n := 0
	for n < done && r.StatementHashes[n] == statementHash(m.up.stmts[n].SQL) {
		n++
	}
	return n
}

func statementHash(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(sum[:])
}
