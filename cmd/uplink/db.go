package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/lite"
	"github.com/uplinkhq/uplink/provision/pro"
	"github.com/uplinkhq/uplink/status"
)

func init() {
	register(command{name: "db", order: 40, summary: "the database in use: url, psql, dump", run: runDB})
}

const dbSynopsis = `db url|psql|dump [flags] [args]

  url          print a connection URL tools can use (it holds the password)
  psql [ARGS]  run psql on the database; ARGS (-c 'select 1', -f file.sql, ...)
               go to psql, all of them after --
  dump [FILE]  write a pg_dump -Fc archive to FILE (or to stdout when redirected)`

func runDB(ctx context.Context, env *Env, args []string) int {
	sub, args := subcommand(args)
	f := newFlags("db", dbSynopsis, env)
	var cfg boot.Config
	bindDatabase(f, &cfg)
	var toPsql []string
	if sub == "psql" {
		args, toPsql = splitOwnFlags(f, args)
	}
	if done, code := f.parseWithEnv(args); done {
		return code
	}
	var run func(context.Context, *Env, *flags, dbTarget) int
	switch sub {
	case "url":
		if done, code := f.noArgs(); done {
			return code
		}
		run = dbURL
	case "psql":
		psqlArgs := append(f.Args(), toPsql...)
		run = func(ctx context.Context, env *Env, _ *flags, t dbTarget) int {
			return t.tool(ctx, env, "psql", psqlArgs, env.Stdout)
		}
	case "dump":
		if f.NArg() > 1 {
			_, code := f.fail("dump takes at most one FILE")
			return code
		}
		run = dbDump
	case "":
		_, code := f.fail("say which: url, psql or dump")
		return code
	default:
		_, code := f.fail(fmt.Sprintf("unknown db command %q", sub))
		return code
	}
	t, err := resolveDB(ctx, cfg)
	if err != nil {
		return reportError(env, "db "+sub, err)
	}
	return run(ctx, env, f, t)
}

// dbTarget is how client tools reach the database of the current mode.
type dbTarget struct {
	dsn     provision.DSN // full connection string, password included
	toolDir string        // where psql and pg_dump of the right version are; "" = PATH
	running bool          // false when we know no server runs (lite)
	dataDir string
}

// resolveDB finds the database the configuration names, without starting
// anything: DATABASE_URL in pro mode, the data directory's cluster in
// lite mode.
func resolveDB(ctx context.Context, cfg boot.Config) (dbTarget, error) {
	mode, err := provision.ParseMode(cfg.Mode)
	if err == nil {
		mode, err = mode.Resolve(cfg.DatabaseURL)
	}
	if err != nil {
		return dbTarget{}, err
	}
	if mode == provision.ModePro {
		p, err := pro.New(pro.Config{URL: cfg.DatabaseURL, CAFile: cfg.DatabaseCAFile})
		if err != nil {
			return dbTarget{}, err
		}
		t := dbTarget{dsn: p.DSN(), running: true}
		if b, err := pgbin.Find(ctx, pgbin.Options{BinDir: cfg.PGBinDir}); err == nil {
			t.toolDir = b.Dir
		}
		return t, nil
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = lite.DefaultDataDir()
	}
	ci, err := lite.ReadConnInfo(dir)
	if err != nil {
		return dbTarget{}, err
	}
	return dbTarget{dsn: ci.URL(), toolDir: ci.BinDir, running: ci.PID != 0, dataDir: dir}, nil
}

func dbURL(ctx context.Context, env *Env, f *flags, t dbTarget) int {
	fmt.Fprintln(env.Stdout, t.dsn.Secret())
	if !t.running {
		fmt.Fprintf(env.Stderr, "uplink db url: note: no PostgreSQL runs on %s now; start 'uplink serve' to use this URL\n", t.dataDir)
	}
	return exitOK
}

// splitOwnFlags takes out of args the flags f knows (with their values),
// and leaves the rest, in order, for psql: uplink db psql -c 'select 1'
// --data-dir /srv/app. Everything after -- is psql's.
func splitOwnFlags(f *flags, args []string) (own, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return own, append(rest, args[i+1:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		fl := f.Lookup(name)
		if !strings.HasPrefix(a, "-") || (fl == nil && name != "help" && name != "h") {
			rest = append(rest, a)
			continue
		}
		own = append(own, a)
		if !hasValue && takesValue(fl) && i+1 < len(args) {
			i++
			own = append(own, args[i])
		}
	}
	return own, rest
}

// takesValue reports whether fl reads the next argument as its value: a
// flag that is not boolean (-help, not a flag of f, takes none).
func takesValue(fl *flag.Flag) bool {
	if fl == nil {
		return false
	}
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func dbDump(ctx context.Context, env *Env, f *flags, t dbTarget) int {
	args := []string{"--format=custom"}
	out := env.Stdout
	if file := f.Arg(0); file != "" && file != "-" {
		args = append(args, "--file="+file)
	} else if isTerminal(env.Stdout) {
		fmt.Fprintln(env.Stderr, "uplink db dump: not writing a binary archive to a terminal\nhint: give a FILE, or redirect the output")
		return exitUsage
	}
	return t.tool(ctx, env, "pg_dump", args, out)
}

// tool runs a PostgreSQL client program on the target. The password goes
// in PGPASSWORD, never on the command line, where other users of the
// machine can read it.
func (t dbTarget) tool(ctx context.Context, env *Env, name string, args []string, stdout io.Writer) int {
	if !t.running {
		fmt.Fprintf(env.Stderr, "uplink db: no PostgreSQL runs on %s now\nhint: start 'uplink serve' (lite mode) first\n", t.dataDir)
		return exitFailure
	}
	path, err := t.find(name)
	if err != nil {
		fmt.Fprintf(env.Stderr, "uplink db: %v\nhint: install PostgreSQL's client programs (apt-get install -y postgresql-client)\n", err)
		return exitFailure
	}
	conn, password := provision.SplitPassword(t.dsn.Secret())
	cmd := exec.CommandContext(ctx, path, append([]string{"--dbname=" + conn}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, stdout, env.Stderr
	cmd.Env = os.Environ()
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "uplink db: %s: %v\n", name, err)
		return exitFailure
	}
	return exitOK
}

func (t dbTarget) find(name string) (string, error) {
	if t.toolDir != "" {
		if b := (pgbin.Binaries{Dir: t.toolDir}); b.Has(name) {
			return b.Path(name), nil
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no %s program found", name)
	}
	return path, nil
}

// reportError prints an error and its hint the one way all commands do,
// and returns the exit code for it.
func reportError(env *Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "uplink %s: %s\n", cmd, provision.Redact(err.Error()))
	if hint := status.HintOf(err); hint != "" {
		fmt.Fprintf(env.Stderr, "hint: %s\n", hint)
	}
	return exitFailure
}
