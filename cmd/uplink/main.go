// Command uplink runs a service that brings up its own PostgreSQL, schema
// and startup tasks, and serves its health while it does. It is built on
// the public boot package, exactly as any Go service would use it.
//
//	uplink serve             run (lite mode unless DATABASE_URL is set)
//	uplink status            ask a running uplink how it is
//	uplink migrate ...       the migrator on its own
//	uplink db url|psql|dump  reach the database in use
//	uplink version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/uplinkhq/uplink/starttask"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and failed (or: not ready)
	exitUsage    = 2 // bad command line
	exitNoServer = 3 // uplink status: nothing answered
)

func main() {
	if actAsInit(os.Getpid(), os.Args[1:], os.Getenv) {
		os.Exit(runInit())
	}
	os.Unsetenv(initChildEnv) // not for hooks and tasks to see
	ctx, cancel := context.WithCancel(context.Background())
	// Only main touches signals and os.Exit. The first SIGINT/SIGTERM
	// starts an orderly stop; a second one means "now".
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "uplink: %s: stopping (send it again to exit at once)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "uplink: second %s: exiting now\n", s)
		starttask.KillRunning() // hooks and tasks would outlive us
		os.Exit(exitFailure)
	}()
	code := run(ctx, os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	cancel()
	os.Exit(code)
}

// Env is what a command may touch of the outside world; tests give their
// own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand. Each lives in its own file and registers
// itself, so that adding one touches nothing else.
type command struct {
	name    string
	summary string
	order   int // position in the help listing
	run     func(ctx context.Context, env *Env, args []string) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func run(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, env, []string{"--help"})
			}
		}
		usage(env.Stdout)
		return exitOK
	case "-v", "-version", "--version":
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "uplink: unknown command %q\n\n", args[0])
		usage(env.Stderr)
		return exitUsage
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: uplink <command> [flags]\n\nCommands:\n")
	list := make([]command, 0, len(commands))
	for _, c := range commands {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].order < list[j].order })
	for _, c := range list {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'uplink <command> --help' for a command's flags.\n")
}

// subcommand splits "url --x" into "url" and the rest; flags first (or
// nothing) give "".
func subcommand(args []string) (string, []string) {
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}

// flags is one command's flag set, with the synopsis its usage starts
// with. Errors are reported, never os.Exit'ed: --help prints usage to
// stdout and ends the command with 0, a mistake prints it to stderr and
// ends it with 2.
type flags struct {
	*flag.FlagSet
	synopsis string
	env      *Env
}

func newFlags(name, synopsis string, env *Env) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, synopsis: synopsis, env: env}
}

// parse parses args; done=true means the command ends here with code.
func (f *flags) parse(args []string) (done bool, code int) {
	err := f.Parse(args)
	if err == nil {
		return false, exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		f.usage(f.env.Stdout)
		return true, exitOK
	}
	return f.fail(err.Error())
}

// fail reports a command-line mistake with the usage.
func (f *flags) fail(msg string) (done bool, code int) {
	fmt.Fprintf(f.env.Stderr, "uplink %s: %s\n\n", f.Name(), msg)
	f.usage(f.env.Stderr)
	return true, exitUsage
}

// noArgs rejects positional arguments for commands that take none.
func (f *flags) noArgs() (done bool, code int) {
	if f.NArg() == 0 {
		return false, exitOK
	}
	return f.fail(fmt.Sprintf("unexpected argument %q", f.Arg(0)))
}

func (f *flags) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: uplink %s\n", f.synopsis)
	var b strings.Builder
	f.VisitAll(func(fl *flag.Flag) {
		name, use := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(&b, "%s\n    \t%s", line, strings.ReplaceAll(use, "\n", "\n    \t"))
		if fl.DefValue != "" && fl.DefValue != "false" {
			fmt.Fprintf(&b, " (default %q)", fl.DefValue)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprint(w, "\nFlags:\n", b.String())
	}
}
