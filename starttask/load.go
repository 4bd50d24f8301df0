package starttask

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/status"
)

// orderPrefix is the order number a file name starts with (10_, 002-),
// left out of the task's name.
var orderPrefix = regexp.MustCompile(`^[0-9]+[_-]`)

// ignored reports whether a directory entry is not a task or hook:
// hidden files, editor backups and documentation.
func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".txt")
}

// entry is one file of a task or hook directory.
type entry struct {
	path, name string
	src        []byte
	sql        bool
}

// readDir reads the files of dir in name order. Anything but a .sql file
// must be executable.
func readDir(dir string) ([]entry, []error, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var (
		out  []entry
		errs []error
	)
	for _, de := range des {
		if ignored(de.Name()) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		fi, err := os.Stat(p) // follows symlinks: a linked script is a script
		if err != nil {
			errs = append(errs, &sqlfile.Error{File: p, Msg: err.Error(), Hint: "fix or remove the file"})
			continue
		}
		if fi.IsDir() {
			continue
		}
		e := entry{path: p, sql: strings.HasSuffix(de.Name(), ".sql")}
		e.name = orderPrefix.ReplaceAllString(strings.TrimSuffix(de.Name(), filepath.Ext(de.Name())), "")
		if !e.sql && fi.Mode().Perm()&0o111 == 0 {
			errs = append(errs, &sqlfile.Error{File: p, Msg: "not executable, and not a .sql file",
				Hint: "chmod +x " + p + " (a script needs a #! line too), or name it .sql if it is SQL"})
			continue
		}
		if e.src, err = os.ReadFile(p); err != nil {
			errs = append(errs, &sqlfile.Error{File: p, Msg: err.Error(), Hint: "make the file readable"})
			continue
		}
		out = append(out, e)
	}
	return out, errs, nil
}

func (e entry) marker() string {
	if e.sql {
		return "--"
	}
	return "#"
}

// LoadTasks reads a tasks directory: each .sql file and each executable
// is a task, in file-name order, named after its file without its order
// number and extension, configured by its header (see ParseHeader and the
// package doc). Hidden files, *~, *.md, *.txt and subdirectories are left
// alone. Every problem (a bad header, a file that is not executable, two
// files giving the same name) is reported, together, in a
// *status.ActionError.
func LoadTasks(dir string) ([]Task, error) {
	entries, errs, err := readDir(dir)
	if err != nil {
		return nil, &status.ActionError{Problem: "cannot read the tasks directory " + dir, Err: err,
			Hint: "point --tasks (UPLINK_TASKS_DIR) at a directory of .sql files and executables"}
	}
	var tasks []Task
	for _, e := range entries {
		h, err := ParseHeader(e.path, e.src, e.marker())
		if err != nil {
			// Kept, for the checks across tasks (two of the same name);
			// the error stops the load anyway.
			errs = append(errs, unjoin(err)...)
		}
		t := Task{Name: e.name, File: e.path, checksum: checksum(e.src)}
		h.apply(&t)
		if e.sql {
			t.SQL = string(e.src)
		} else {
			t.Command = command(e.path, dir)
		}
		tasks = append(tasks, t)
	}
	// Checked here as well as by New, so that every mistake is reported
	// at once, before anything connects.
	errs = append(errs, problems(tasks)...)
	if err := joinProblems("tasks directory "+dir, errs); err != nil {
		return nil, err
	}
	return tasks, nil
}

// Hook directories: DIR/post-start and DIR/pre-stop.
const (
	PostStartDir = "post-start"
	PreStopDir   = "pre-stop"
)

// LoadHooks reads a hooks directory: the executables in its post-start
// and pre-stop subdirectories, each run in file-name order, with
// "# uplink: timeout=DURATION" as the only header they take. A missing
// subdirectory has no hooks.
func LoadHooks(dir string) (postStart, preStop []Hook, err error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, nil, &status.ActionError{Problem: "cannot read the hooks directory " + dir, Err: err,
			Hint: "point --hooks (UPLINK_HOOKS_DIR) at a directory with post-start/ and pre-stop/ subdirectories of executables"}
	}
	var errs []error
	load := func(sub string) []Hook {
		entries, ferrs, err := readDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			errs = append(errs, &sqlfile.Error{File: filepath.Join(dir, sub), Msg: err.Error(), Hint: "make it a readable directory"})
			return nil
		}
		errs = append(errs, ferrs...)
		var hooks []Hook
		for _, e := range entries {
			if e.sql {
				errs = append(errs, &sqlfile.Error{File: e.path, Msg: "a hook is an executable, not SQL",
					Hint: "make it a script that runs psql \"$DATABASE_URL\", or a startup task"})
				continue
			}
			h, err := ParseHeader(e.path, e.src, "#")
			if err == nil && (h.Policy != "" || h.Env != nil || h.Fresh || h.OnFailure != "" || h.Version != "") {
				err = &sqlfile.Error{File: e.path, Line: h.Line, Msg: "a hook takes only timeout= in its header",
					Hint: "hooks run after every first ready (post-start) or stop (pre-stop), never fail boot; drop the other words"}
			}
			if err != nil {
				errs = append(errs, unjoin(err)...)
				continue
			}
			hooks = append(hooks, Hook{Name: sub + "/" + e.name, Timeout: h.Timeout, File: e.path,
				Command: command(e.path, dir)})
		}
		return hooks
	}
	postStart, preStop = load(PostStartDir), load(PreStopDir)
	if err := joinProblems("hooks directory "+dir, errs); err != nil {
		return nil, nil, err
	}
	return postStart, preStop, nil
}

// command runs the executable at path in dir. Both are made absolute:
// exec resolves a relative Path against Dir, so "tasks/10_seed.sh" with
// Dir "tasks" would be looked for in tasks/tasks, and a bare name in PATH.
func command(path, dir string) *Command {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return &Command{Path: path, Dir: dir}
}

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// changeKey is what on-change compares: the declared version, or the
// content's checksum.
func (t *Task) changeKey() string {
	if t.Version != "" {
		return "version " + t.Version
	}
	return t.checksum
}

// names lists task names, for a message.
func names(tasks []Task) string {
	n := make([]string, len(tasks))
	for i, t := range tasks {
		n[i] = t.Name
	}
	slices.Sort(n)
	return fmt.Sprint(n)
}
