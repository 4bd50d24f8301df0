package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/migrate/sqlfile"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

func init() {
	register(command{name: "migrate", order: 30, summary: "the migrator on its own: up, down, status, plan, validate, accept, new", run: runMigrate})
}

const migrateSynopsis = `migrate up|down|status|plan|validate|accept VERSION|new NAME [flags]

  up              apply the pending migrations of --dir (--to VERSION: stop there)
  down            revert the newest applied migration (--to VERSION: every one above it; 0: all)
  status          every migration: applied, pending, failed or unknown (--json)
  plan            what up would run now, without running it (--json)
  validate        check the files only; no database needed
  accept VERSION  record the new checksum of an applied migration changed on purpose
  new NAME        create the next migration file in --dir

The files of --dir are one migration line (--line, "app" by default: the line
'uplink serve --migrations DIR' applies). The database is --database, or the one
of the current mode: DATABASE_URL in pro mode, the server of --data-dir in lite
mode. Every process migrating one database shares one lock; running this beside
'uplink serve' is safe.`

// migrateCmd holds one migrate command line.
type migrateCmd struct {
	env      *Env
	f        *flags
	sub      string
	args     []string // positional arguments after the subcommand
	dir      string
	line     string
	database string
	to       int64
	asJSON   bool
	allowOOO bool
	format   string
	cfg      boot.Config
	log      *logFlags
}

func runMigrate(ctx context.Context, env *Env, args []string) int {
	c := &migrateCmd{env: env}
	c.sub, args = subcommand(args)
	c.f = newFlags("migrate", migrateSynopsis, env)
	c.f.StringVar(&c.dir, "dir", "", "directory of migration files (default $UPLINK_MIGRATIONS_DIR, else ./migrations)")
	c.f.StringVar(&c.line, "line", boot.AppLine, "the migration line the files of --dir form")
	c.f.StringVar(&c.database, "database", "", "PostgreSQL URL to migrate (default: the database of the current mode)")
	c.f.Int64Var(&c.to, "to", -1, "up: the last version to apply; down: the version to go back to (0: revert all)")
	c.f.BoolVar(&c.asJSON, "json", false, "status and plan: print JSON, for scripts")
	c.f.BoolVar(&c.allowOOO, "allow-out-of-order", false, "up: also apply pending migrations older than the newest applied one")
	c.f.StringVar(&c.format, "format", "auto", "new: plain, pair (.up.sql/.down.sql), goose or dbmate; auto follows the newest file")
	bindDatabase(c.f, &c.cfg)
	bindMigrationTimeouts(c.f, &c.cfg)
	c.log = bindLog(c.f)
	if done, code := c.parse(args); done {
		return code
	}
	if c.dir == "" {
		c.dir = cmpOr(env.Getenv("UPLINK_MIGRATIONS_DIR"), "migrations")
	}
	want := map[string]int{"up": 0, "down": 0, "status": 0, "plan": 0, "validate": 0, "accept": 1, "new": 1}
	n, ok := want[c.sub]
	switch {
	case c.sub == "":
		_, code := c.f.fail("say which: up, down, status, plan, validate, accept or new")
		return code
	case !ok:
		_, code := c.f.fail(fmt.Sprintf("unknown migrate command %q", c.sub))
		return code
	case len(c.args) != n:
		_, code := c.f.fail(fmt.Sprintf("migrate %s takes %d argument(s), got %d", c.sub, n, len(c.args)))
		return code
	}
	switch c.sub {
	case "validate":
		return c.validate()
	case "new":
		return c.create(c.args[0])
	case "accept":
		v, err := strconv.ParseInt(c.args[0], 10, 64)
		if err != nil {
			_, code := c.f.fail(fmt.Sprintf("VERSION %q is not a number", c.args[0]))
			return code
		}
		c.to = v
	}
	m, code := c.migrator(ctx)
	if m == nil {
		return code
	}
	switch c.sub {
	case "up", "down":
		return c.move(ctx, m)
	case "status":
		return c.status(ctx, m)
	case "plan":
		return c.plan(ctx, m)
	default: // accept
		return c.accept(ctx, m)
	}
}

// parse parses flags given before and after positional arguments
// ("accept 7 --line app"), then fills unset flags from the environment.
func (c *migrateCmd) parse(args []string) (done bool, code int) {
	c.args, done, code = c.f.parseMixed(args)
	return done, code
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *migrateCmd) fail(err error) int { return reportError(c.env, "migrate "+c.sub, err) }

// load reads --dir as the line's migrations.
func (c *migrateCmd) load() ([]*migrate.Migration, error) {
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return nil, &status.ActionError{Problem: "no migrations directory " + c.dir, Err: err,
			Hint: "point --dir (or UPLINK_MIGRATIONS_DIR) at a directory of .sql migration files"}
	}
	// From the parent, so that messages name files as dir/0001_x.sql.
	dir := filepath.Clean(c.dir)
	return migrate.Load(os.DirFS(filepath.Dir(dir)), filepath.Base(dir))
}

// migrator builds the migrator for --dir and the database; on failure it
// returns nil and the exit code, having reported why.
func (c *migrateCmd) migrator(ctx context.Context) (*migrate.Migrator, int) {
	log, err := c.log.logger(c.env.Stderr)
	if err != nil {
		_, code := c.f.fail(err.Error())
		return nil, code
	}
	migs, err := c.load()
	if err != nil {
		return nil, c.fail(err)
	}
	dsn := provision.DSN(c.database)
	if dsn == "" {
		t, err := resolveDB(ctx, c.cfg)
		if err != nil {
			return nil, c.fail(err)
		}
		if !t.running {
			return nil, c.fail(&status.ActionError{Problem: "no PostgreSQL runs on " + t.dataDir + " now",
				Hint: "start 'uplink serve' (lite mode) first, or give --database"})
		}
		dsn = t.dsn
	}
	cc, err := provision.ConnConfig(dsn)
	if err != nil {
		return nil, c.fail(status.NeedsAction(err, "check --database or DATABASE_URL"))
	}
	m, err := migrate.New(cc, migrate.Config{Logger: log, AllowOutOfOrder: c.allowOOO, ApplicationName: "uplink migrate",
		LockTimeout: c.cfg.MigrationLockTimeout, StatementTimeout: c.cfg.MigrationStatementTimeout},
		migrate.Line{Name: c.line, Migrations: migs})
	if err != nil {
		return nil, c.fail(err)
	}
	return m, exitOK
}

func (c *migrateCmd) validate() int {
	migs, err := c.load()
	if err == nil {
		err = migrate.Validate(migrate.Line{Name: c.line, Migrations: migs})
	}
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.Stdout, "%d migration(s) in %s are valid\n", len(migs), c.dir)
	return exitOK
}

// move runs up or down, to --to when given.
func (c *migrateCmd) move(ctx context.Context, m *migrate.Migrator) int {
	var res *migrate.Result
	var err error
	switch {
	case c.sub == "up" && c.to >= 0:
		res, err = m.UpTo(ctx, c.line, c.to)
	case c.sub == "up":
		res, err = m.Up(ctx)
	case c.to >= 0:
		res, err = m.DownTo(ctx, c.line, c.to)
	default:
		res, err = m.Down(ctx, c.line)
	}
	c.printRun(res)
	if err != nil {
		return c.fail(err)
	}
	switch {
	case len(res.Applied) > 0:
	case c.sub == "up":
		fmt.Fprintln(c.env.Stdout, "nothing to apply: up to date")
	default:
		fmt.Fprintln(c.env.Stdout, "nothing to revert")
	}
	return exitOK
}

func (c *migrateCmd) printRun(res *migrate.Result) {
	if res == nil {
		return
	}
	for _, a := range res.Applied {
		verb := "applied"
		if a.Direction == migrate.DirDown {
			verb = "reverted"
		}
		extra := ""
		if a.Resumed > 0 {
			extra = fmt.Sprintf(", resumed after statement %d", a.Resumed)
		}
		fmt.Fprintf(c.env.Stdout, "%s %s %04d_%s (%s%s)\n", verb, a.Line, a.Version, a.Name, a.Duration.Round(time.Millisecond), extra)
	}
}

// accept records the file of migration c.to (the VERSION argument).
func (c *migrateCmd) accept(ctx context.Context, m *migrate.Migrator) int {
	if err := m.Accept(ctx, c.line, c.to); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.Stdout, "accepted the current file of %s migration %d\n", c.line, c.to)
	return exitOK
}

func (c *migrateCmd) status(ctx context.Context, m *migrate.Migrator) int {
	rep, err := m.Status(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.asJSON {
		return c.printJSON(rep)
	}
	w := c.env.Stdout
	for _, l := range rep.Lines {
		fmt.Fprintf(w, "line %s: at version %d, files up to %d\n", l.Line, l.Current, l.Target)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  VERSION\tNAME\tSTATE\tAPPLIED\tNOTE")
		for _, e := range l.Entries {
			applied := ""
			if e.Record != nil && !e.Record.AppliedAt.IsZero() {
				applied = e.Record.AppliedAt.UTC().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "  %04d\t%s\t%s\t%s\t%s\n", e.Version, e.Name, e.State, applied, entryNote(e))
		}
		tw.Flush()
	}
	for _, x := range rep.InvalidIndexes {
		fmt.Fprintf(w, "invalid index %s: drop it (DROP INDEX CONCURRENTLY %s) and let the migration build it again\n", x, x)
	}
	return exitOK
}

// entryNote says what a person should know about one migration.
func entryNote(e migrate.Entry) string {
	var notes []string
	if e.Drifted {
		notes = append(notes, fmt.Sprintf("file changed since applied (uplink migrate accept %d)", e.Version))
	}
	if e.OutOfOrder {
		notes = append(notes, "older than the newest applied")
	}
	if r := e.Record; e.State == migrate.StateFailed && r != nil {
		if r.Outcome == migrate.OutcomeRunning {
			notes = append(notes, "interrupted")
		}
		if r.FailedStatement > 0 {
			notes = append(notes, fmt.Sprintf("statement %d", r.FailedStatement))
		}
		if r.Message != "" {
			msg := r.Message
			if r.SQLState != "" {
				msg += " (SQLSTATE " + r.SQLState + ")"
			}
			notes = append(notes, msg)
		}
		if e.Resume > 0 {
			notes = append(notes, fmt.Sprintf("retry resumes after statement %d", e.Resume))
		}
	}
	return strings.Join(notes, "; ")
}

func (c *migrateCmd) plan(ctx context.Context, m *migrate.Migrator) int {
	p, err := m.Plan(ctx)
	if p == nil {
		return c.fail(err)
	}
	if c.asJSON {
		out := struct {
			*migrate.Plan
			Error string `json:"error,omitempty"`
			Hint  string `json:"hint,omitempty"`
		}{Plan: p}
		if err != nil {
			out.Error, out.Hint = err.Error(), status.HintOf(err)
		}
		if code := c.printJSON(out); code != exitOK || err == nil {
			return code
		}
		return exitFailure
	}
	w := c.env.Stdout
	for _, l := range p.Lines {
		if len(l.Entries) == 0 {
			fmt.Fprintf(w, "line %s: up to date at version %d\n", l.Line, l.Current)
			continue
		}
		fmt.Fprintf(w, "line %s: %d to apply, from version %d to %d\n", l.Line, len(l.Entries), l.Current, l.Entries[len(l.Entries)-1].Version)
		for _, e := range l.Entries {
			fmt.Fprintf(w, "  %04d_%s\t%s\n", e.Version, e.Name, stepNote(e))
		}
	}
	if err != nil {
		return c.fail(err)
	}
	return exitOK
}

func stepNote(e migrate.Entry) string {
	var notes []string
	if mig := e.Migration(); mig != nil {
		notes = append(notes, cmpOr(mig.File, "go"))
		if mig.NoTransaction() {
			notes = append(notes, "no transaction")
		}
	}
	if e.State == migrate.StateFailed {
		notes = append(notes, "retry")
	}
	if e.Resume > 0 {
		notes = append(notes, fmt.Sprintf("resumes after statement %d", e.Resume))
	}
	return strings.Join(notes, ", ")
}

func (c *migrateCmd) printJSON(v any) int {
	enc := json.NewEncoder(c.env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.fail(err)
	}
	return exitOK
}

// newName is what a migration's name may hold; anything else becomes '_'.
var newName = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// create writes the next migration file(s) of --dir.
func (c *migrateCmd) create(name string) int {
	name = strings.Trim(newName.ReplaceAllString(name, "_"), "_")
	if name == "" {
		_, code := c.f.fail("NAME needs a letter or digit, such as add_users")
		return code
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return c.fail(err)
	}
	migs, err := c.load()
	if err != nil {
		return c.fail(err)
	}
	format := c.format
	var last *migrate.Migration
	if len(migs) > 0 {
		last = migs[len(migs)-1]
	}
	if format == "auto" {
		format = "plain"
		if last != nil && last.DownFile != "" {
			format = "pair"
		} else if last != nil && last.Format() != migrate.FormatGo {
			format = string(last.Format())
		}
	}
	version := nextVersion(last, time.Now())
	base := filepath.Join(c.dir, version+"_"+name)
	intro := "-- " + name + ": runs in one transaction, committed with its history row.\n\n"
	var files [][2]string // path, content
	switch format {
	case string(sqlfile.FormatPlain):
		files = [][2]string{{base + ".sql", intro}}
	case "pair":
		files = [][2]string{{base + ".up.sql", intro}, {base + ".down.sql", "-- Reverts " + name + ".\n\n"}}
	case string(sqlfile.FormatGoose):
		files = [][2]string{{base + ".sql", "-- +goose Up\n\n-- +goose Down\n"}}
	case string(sqlfile.FormatDbmate):
		files = [][2]string{{base + ".sql", "-- migrate:up\n\n-- migrate:down\n"}}
	default:
		_, code := c.f.fail(fmt.Sprintf("unknown --format %q: want auto, plain, pair, goose or dbmate", c.format))
		return code
	}
	for _, file := range files {
		if err := writeNew(file[0], file[1]); err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, file[0])
	}
	return exitOK
}

// nextVersion follows the numbering the directory uses: timestamps
// (YYYYMMDDhhmmss, UTC) when the newest version is one, else the next
// integer with the newest file's zero padding (4 digits in an empty
// directory).
func nextVersion(last *migrate.Migration, now time.Time) string {
	const stamp = "20060102150405"
	if last == nil {
		return "0001"
	}
	if last.Version >= 19000101000000 {
		v, _ := strconv.ParseInt(now.UTC().Format(stamp), 10, 64)
		return strconv.FormatInt(max(v, last.Version+1), 10)
	}
	width := 0
	if file := filepath.Base(last.File); last.File != "" {
		width = strings.IndexByte(file, '_')
	}
	return fmt.Sprintf("%0*d", width, last.Version+1)
}

func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
