package migrate

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/status"
)

// parseName splits a migration file name, NNN_name.sql or NNN_name.up.sql
// / NNN_name.down.sql, into its version digits, name and kind ("", "up"
// or "down"). NNN is an integer or a timestamp; name is not empty and does
// not start with a dot. (A thousand names take a regular expression a
// millisecond.)
func parseName(file string) (digits, name, kind string, ok bool) {
	base, ok := strings.CutSuffix(file, ".sql")
	if !ok {
		return "", "", "", false
	}
	if b, cut := strings.CutSuffix(base, ".up"); cut {
		base, kind = b, "up"
	} else if b, cut := strings.CutSuffix(base, ".down"); cut {
		base, kind = b, "down"
	}
	digits, name, ok = strings.Cut(base, "_")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || name == "" || name[0] == '.' || strings.Contains(name, "/") {
		return "", "", "", false
	}
	return digits, name, kind, true
}

const nameHint = "name migration files NNN_description.sql, or NNN_description.up.sql and NNN_description.down.sql, with NNN a positive integer or timestamp"

// Load lists the migrations in directory dir of fsys (use "." for its
// root; an embed.FS works). It takes the .sql files directly in dir and
// ignores other files and subdirectories:
//
//   - NNN_name.sql: plain SQL (the whole file is up, and there is no
//     down), or a goose- or dbmate-annotated file with up and down
//     sections (a missing down section reverts by doing nothing, as those
//     tools do);
//   - NNN_name.up.sql with an optional NNN_name.down.sql (golang-migrate,
//     River); the down file's statements are the down migration.
//
// Load checks the names: a malformed name, two files for one version, a
// down file without its up file come back together, as a
// *status.ActionError whose cause joins one *sqlfile.Error per problem,
// each naming its file. It does not read the files: a service with a
// thousand applied migrations needs their checksums but not their
// statements, and reads them while it connects. What is in them is
// checked before anything runs all the same: Validate reads and checks
// every file (run it in CI; uplink migrate validate does), and a
// Migrator refuses to start when a file it needs cannot be read, or one
// it is about to run does not parse.
func Load(fsys fs.FS, dir string) ([]*Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, &status.ActionError{
			Problem: "read migrations", Err: err,
			Hint: "check that the migrations directory exists and is readable",
		}
	}
	type pair struct{ single, up, down string }
	var (
		errs     []error
		versions = make(map[int64]*pair, len(entries))
		names    = make(map[int64]string, len(entries))
		order    []int64
	)
	prefix := path.Clean(dir) + "/"
	if prefix == "./" {
		prefix = ""
	}
	for _, e := range entries {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".sql") && strings.HasSuffix(strings.ToLower(e.Name()), ".sql") {
			// 0007_users.SQL would be passed over without a word, and the
			// migration never run.
			errs = append(errs, &sqlfile.Error{File: prefix + e.Name(), Msg: "migration file extension is not lower-case .sql", Hint: nameHint})
			continue
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		file := prefix + e.Name()
		digits, name, kind, ok := parseName(e.Name())
		if !ok {
			errs = append(errs, &sqlfile.Error{File: file, Msg: "malformed migration file name", Hint: nameHint})
			continue
		}
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || v <= 0 {
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("version %s is not a positive 64-bit integer", digits), Hint: nameHint})
			continue
		}
		p := versions[v]
		if p == nil {
			p = &pair{}
			versions[v], names[v] = p, name
			order = append(order, v)
		}
		slot := &p.single
		switch kind {
		case "up":
			slot = &p.up
		case "down":
			slot = &p.down
		}
		if *slot != "" || (kind != "down" && (p.single != "" || p.up != "")) {
			other := cmp.Or(*slot, p.single, p.up)
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("duplicate version %d: %s has it too", v, other),
				Hint: "give each migration its own version; renumber the newer one"})
			continue
		}
		if name != names[v] {
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("version %d is also named %q by another file", v, names[v]),
				Hint: "give each migration its own version; the up and down files of a pair share their name"})
			continue
		}
		*slot = file
	}

	var migs []*Migration
	for _, v := range order { // names order, which is versions order when they are zero-padded
		p := versions[v]
		if p.single == "" && p.up == "" {
			if p.down != "" {
				errs = append(errs, &sqlfile.Error{File: p.down, Msg: "down migration without its up file",
					Hint: "add " + strings.TrimSuffix(p.down, ".down.sql") + ".up.sql, or remove the down file"})
			}
			continue
		}
		migs = append(migs, &Migration{Version: v, Name: names[v], File: cmp.Or(p.single, p.up), DownFile: p.down, fsys: fsys})
	}
	if err := joinProblems(fmt.Sprintf("migration directory %s", dir), "fix the files named above; nothing was run", errs); err != nil {
		return nil, err
	}
	byVersion := func(a, b *Migration) int { return cmp.Compare(a.Version, b.Version) }
	if !slices.IsSortedFunc(migs, byVersion) {
		slices.SortFunc(migs, byVersion)
	}
	return migs, nil
}

// joinProblems joins errs, sorted, into a *status.ActionError naming where
// they are, or returns nil when there are none.
func joinProblems(where, hint string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return &status.ActionError{
		Problem: fmt.Sprintf("%d problem(s) in %s", len(errs), where),
		Hint:    hint,
		Err:     errors.Join(errs...),
	}
}

// eachFile calls fn for every migration read from a file, on up to
// GOMAXPROCS goroutines (reading a file is mostly system calls), each with
// a reader of its own, and returns fn's errors.
func eachFile(migs []*Migration, fn func(*Migration, *reader) []error) []error {
	return eachFileOn(runtime.GOMAXPROCS(0), migs, fn)
}

// eachFileOn is eachFile on up to workers goroutines, the caller's
// included.
func eachFileOn(workers int, migs []*Migration, fn func(*Migration, *reader) []error) []error {
	var files []*Migration
	for _, m := range migs {
		if m != nil && m.fsys != nil {
			files = append(files, m)
		}
	}
	errs := make([][]error, len(files))
	var next atomic.Int64
	work := func() {
		var r reader
		defer r.close()
		for i := int(next.Add(1)) - 1; i < len(files); i = int(next.Add(1)) - 1 {
			errs[i] = fn(files[i], &r)
		}
	}
	var wg sync.WaitGroup
	for range min(workers, len(files)/16+1) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return slices.Concat(errs...)
}

// allMigrations is every migration of lines.
func allMigrations(lines []Line) []*Migration {
	var all []*Migration
	for _, l := range lines {
		all = append(all, l.Migrations...)
	}
	return all
}
