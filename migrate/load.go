package migrate

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/status"
)

// fileName is NNN_name.sql or NNN_name.up.sql / NNN_name.down.sql. NNN is
// an integer or a timestamp; name does not start with a dot.
var fileName = regexp.MustCompile(`^([0-9]+)_([^./][^/]*?)(?:\.(up|down))?\.sql$`)

const nameHint = "name migration files NNN_description.sql, or NNN_description.up.sql and NNN_description.down.sql, with NNN a positive integer or timestamp"

// Load reads the migrations in directory dir of fsys (use "." for its
// root; an embed.FS works). It reads the .sql files directly in dir and
// ignores other files and subdirectories:
//
//   - NNN_name.sql: plain SQL (the whole file is up, and there is no
//     down), or a goose- or dbmate-annotated file with up and down
//     sections (a missing down section reverts by doing nothing, as those
//     tools do);
//   - NNN_name.up.sql with an optional NNN_name.down.sql (golang-migrate,
//     River); the down file's statements are the down migration.
//
// Every problem is found before anything runs: a malformed name, two files
// for one version, a down file without its up file, a file that does not
// parse. They come back together, as a *status.ActionError whose cause
// joins one *sqlfile.Error per problem, each naming its file.
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
		versions = map[int64]*pair{}
		names    = map[int64]string{}
	)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		file := path.Join(dir, e.Name())
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			errs = append(errs, &sqlfile.Error{File: file, Msg: "malformed migration file name", Hint: nameHint})
			continue
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("version %s is not a positive 64-bit integer", m[1]), Hint: nameHint})
			continue
		}
		p := versions[v]
		if p == nil {
			p = &pair{}
			versions[v], names[v] = p, m[2]
		}
		slot := &p.single
		switch m[3] {
		case "up":
			slot = &p.up
		case "down":
			slot = &p.down
		}
		if *slot != "" || (m[3] != "down" && (p.single != "" || p.up != "")) {
			other := cmp.Or(*slot, p.single, p.up)
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("duplicate version %d: %s has it too", v, other),
				Hint: "give each migration its own version; renumber the newer one"})
			continue
		}
		if m[2] != names[v] {
			errs = append(errs, &sqlfile.Error{File: file, Msg: fmt.Sprintf("version %d is also named %q by another file", v, names[v]),
				Hint: "give each migration its own version; the up and down files of a pair share their name"})
			continue
		}
		*slot = file
	}

	var migs []*Migration
	for v, p := range versions {
		if p.single == "" && p.up == "" {
			if p.down != "" {
				errs = append(errs, &sqlfile.Error{File: p.down, Msg: "down migration without its up file",
					Hint: "add " + strings.TrimSuffix(p.down, ".down.sql") + ".up.sql, or remove the down file"})
			}
			continue
		}
		mig, err := loadMigration(fsys, v, names[v], cmp.Or(p.single, p.up), p.down)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		migs = append(migs, mig)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, &status.ActionError{
			Problem: fmt.Sprintf("%d problem(s) in migration directory %s", len(errs), dir),
			Hint:    "fix the files named above; nothing was run",
			Err:     errors.Join(errs...),
		}
	}
	slices.SortFunc(migs, func(a, b *Migration) int { return cmp.Compare(a.Version, b.Version) })
	return migs, nil
}

// loadMigration reads and parses the up file and, for a pair, the down
// file of one version.
func loadMigration(fsys fs.FS, version int64, name, upFile, downFile string) (*Migration, error) {
	src, err := fs.ReadFile(fsys, upFile)
	if err != nil {
		return nil, &sqlfile.Error{File: upFile, Msg: err.Error()}
	}
	f, err := sqlfile.Parse(upFile, src)
	if err != nil {
		return nil, err
	}
	m := &Migration{
		Version:  version,
		Name:     name,
		Checksum: checksum(src),
		File:     upFile,
		DownFile: downFile,
		Format:   f.Format,
		up:       &step{file: upFile, stmts: f.Up.Statements, noTx: f.Up.NoTransaction},
	}
	switch {
	case f.Down != nil && downFile != "":
		return nil, &sqlfile.Error{File: upFile, Msg: "down migration given twice: in this file and in " + downFile,
			Hint: "keep one of them"}
	case f.Down != nil:
		m.down = &step{file: upFile, stmts: f.Down.Statements, noTx: f.Down.NoTransaction}
	case downFile != "":
		src, err = fs.ReadFile(fsys, downFile)
		if err != nil {
			return nil, &sqlfile.Error{File: downFile, Msg: err.Error()}
		}
		df, err := sqlfile.Parse(downFile, src)
		if err != nil {
			return nil, err
		}
		m.down = &step{file: downFile, stmts: df.Up.Statements, noTx: df.Up.NoTransaction}
	case f.Format != sqlfile.FormatPlain:
		// goose and dbmate revert a file without a down section by doing
		// nothing; a plain file has no down at all.
		m.down = &step{file: upFile, noTx: f.Up.NoTransaction}
	}
	return m, nil
}
