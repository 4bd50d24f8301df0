package pgbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/uplinkhq/uplink/status"
)

// Plan is how PostgreSQL gets installed on one distribution. It is a value
// so that the choice can be tested, and shown to a person, without running
// anything.
type Plan struct {
	// Manager is the package manager program the plan runs.
	Manager string
	// DropIn, when set, is a file written before installing, with
	// DropInContent. On Debian it keeps the package from creating and
	// starting a default cluster on port 5432 that nobody would use.
	DropIn, DropInContent string
	// Known, when set, exits non-zero when the package index does not know
	// the package yet (a fresh container); Update then runs first.
	Known []string
	// Update refreshes the package index. It runs at most once: when
	// Known fails, or when Install fails (a stale index points at
	// packages the mirror no longer has).
	Update []string
	// Install installs the server and client programs.
	Install []string
	// Env is added to the environment of every command.
	Env []string
}

// Command is the install command line, as a person would type it.
func (p Plan) Command() string { return strings.Join(p.Install, " ") }

// DebianDropInDir is where postgresql-common reads createcluster.conf
// drop-ins; its stock createcluster.conf includes this directory.
const DebianDropInDir = "/etc/postgresql-common/createcluster.d"

// alpineMajor is the PostgreSQL major each Alpine release ships as its
// default. Unknown releases fall back to the unversioned meta packages.
var alpineMajor = map[string]int{
	"3.15": 14, "3.16": 14, "3.17": 15, "3.18": 15, "3.19": 16,
	"3.20": 16, "3.21": 17, "3.22": 17, "3.23": 18,
}

// PlanFor picks the install plan for a distribution. dropInDir is
// DebianDropInDir outside tests. ok is false when Uplink knows no way to
// install PostgreSQL there.
func PlanFor(osr OSRelease, dropInDir string) (p Plan, ok bool) {
	switch {
	case osr.Is("debian") || osr.Is("ubuntu"):
		return Plan{
			Manager:       "apt-get",
			DropIn:        filepath.Join(dropInDir, "uplink.conf"),
			DropInContent: "# Written by Uplink: it runs its own cluster, so the package needs no default one.\ncreate_main_cluster = false\n",
			Known:         []string{"apt-cache", "show", "postgresql"},
			Update:        []string{"apt-get", "-o", "DPkg::Lock::Timeout=300", "update"},
			// The lock timeout matters on fresh cloud machines, where
			// unattended-upgrades holds the dpkg lock for the first minutes.
			Install: []string{"apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", "postgresql"},
			Env:     []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"},
		}, true
	case osr.Is("alpine"):
		pkgs := []string{"postgresql", "postgresql-client"}
		ver := osr.VersionID
		if parts := strings.SplitN(ver, ".", 3); len(parts) >= 2 {
			ver = parts[0] + "." + parts[1]
		}
		if m, ok := alpineMajor[ver]; ok {
			pkgs = []string{fmt.Sprintf("postgresql%d", m), fmt.Sprintf("postgresql%d-client", m)}
		}
		return Plan{Manager: "apk", Install: append([]string{"apk", "add", "--no-progress"}, pkgs...)}, true
	case osr.Is("fedora") || osr.Is("rhel") || osr.Is("centos"):
		return Plan{Manager: "dnf", Install: []string{"dnf", "install", "-y", "postgresql-server"}}, true
	}
	return Plan{}, false
}

// Runner runs one command with its output sent to out and env added to the
// environment. Tests replace it to see what would run.
type Runner func(ctx context.Context, out io.Writer, env []string, argv ...string) error

// ExecRunner runs commands for real.
func ExecRunner(ctx context.Context, out io.Writer, env []string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	return cmd.Run()
}

// Installer installs PostgreSQL through the OS package manager. The zero
// value acts on the real machine; the fields are seams for tests.
type Installer struct {
	// Never forbids installing (UPLINK_PG_INSTALL=never); Install then
	// only says what a person should run.
	Never bool
	// Output receives the package manager's output, a line at a time.
	Output io.Writer
	// Progress, when set, is told each step and each line of output.
	Progress func(line string)

	OSReleasePath string                       // default /etc/os-release
	DropInDir     string                       // default DebianDropInDir
	IsRoot        func() bool                  // default: effective uid 0
	LookPath      func(string) (string, error) // default exec.LookPath
	Run           Runner                       // default ExecRunner

	// An install runs at most once per Installer: a package manager that
	// failed will fail the same way on every retry, and one that worked
	// need not run again.
	mu   sync.Mutex
	done bool
	err  error
}

// installMu keeps two installs in one process (a provisioner and a test
// helper, say) from fighting over the package manager's lock.
var installMu sync.Mutex

// Plan decides what Install would do, without doing it. It returns a
// *status.ActionError when installing is not possible or not allowed; its
// hint names the exact command a person should run.
func (in *Installer) Plan() (Plan, error) {
	path := in.OSReleasePath
	if path == "" {
		path = "/etc/os-release"
	}
	osr, err := ReadOSRelease(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Plan{}, fmt.Errorf("read %s: %w", path, err)
	}
	dropInDir := in.DropInDir
	if dropInDir == "" {
		dropInDir = DebianDropInDir
	}
	plan, known := PlanFor(osr, dropInDir)
	lookPath := in.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if known {
		if _, err := lookPath(plan.Manager); err != nil {
			known = false
		}
	}
	if !known {
		return Plan{}, &status.ActionError{
			Problem: fmt.Sprintf("PostgreSQL server binaries not found, and Uplink knows no package manager on %s to install them with", osr.name()),
			Hint:    fmt.Sprintf("install PostgreSQL %d or newer and set UPLINK_PG_BINDIR to its bin directory, or set DATABASE_URL to use an existing server (pro mode)", MinMajor),
		}
	}
	isRoot := in.IsRoot
	if isRoot == nil {
		isRoot = func() bool { return os.Geteuid() == 0 }
	}
	switch {
	case in.Never:
		return plan, &status.ActionError{Problem: "PostgreSQL server binaries not found, and UPLINK_PG_INSTALL=never forbids installing them", Hint: manualHint(plan)}
	case !isRoot():
		return plan, &status.ActionError{Problem: "PostgreSQL server binaries not found, and Uplink is not root so it cannot install them", Hint: manualHint(plan)}
	}
	return plan, nil
}

func manualHint(p Plan) string {
	return "run as root: " + p.Command() + "; or set UPLINK_PG_BINDIR to an existing installation; or set DATABASE_URL to use an existing server (pro mode)"
}

// Install installs PostgreSQL if Plan allows it. Failures are
// *status.ActionError, and are remembered: later calls return the same
// error without running anything. Only an interrupted install (ctx ended)
// is tried again.
func (in *Installer) Install(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done {
		return in.err
	}
	plan, err := in.Plan()
	if err != nil {
		return err
	}
	err = in.install(ctx, plan)
	if ctx.Err() == nil {
		in.done, in.err = true, err
	}
	return err
}

func (in *Installer) install(ctx context.Context, plan Plan) error {
	installMu.Lock()
	defer installMu.Unlock()

	run := in.Run
	if run == nil {
		run = ExecRunner
	}
	out := &lineWriter{out: in.Output, progress: in.Progress}
	step := func(argv []string) error {
		in.progress("$ " + strings.Join(argv, " "))
		err := run(ctx, out, plan.Env, argv...)
		out.Flush()
		return err
	}
	if plan.DropIn != "" {
		if err := writeDropIn(plan.DropIn, plan.DropInContent); err != nil {
			return &status.ActionError{Problem: "cannot prepare the PostgreSQL package install", Err: err, Hint: manualHint(plan)}
		}
	}
	updated := false
	if plan.Known != nil && step(plan.Known) != nil {
		if err := step(plan.Update); err != nil {
			return in.failed(ctx, plan, plan.Update, err, out)
		}
		updated = true
	}
	err := step(plan.Install)
	if err != nil && plan.Update != nil && !updated {
		if uerr := step(plan.Update); uerr != nil {
			return in.failed(ctx, plan, plan.Update, uerr, out)
		}
		err = step(plan.Install)
	}
	if err != nil {
		return in.failed(ctx, plan, plan.Install, err, out)
	}
	in.progress("installed")
	return nil
}

func (in *Installer) progress(line string) {
	if in.Progress != nil {
		in.Progress(line)
	}
}

func (in *Installer) failed(ctx context.Context, plan Plan, argv []string, err error, out *lineWriter) error {
	if ctx.Err() != nil {
		// Interrupted, not broken: the caller may try again.
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), context.Cause(ctx))
	}
	return &status.ActionError{
		Problem: fmt.Sprintf("%s failed: %v; last output: %s", strings.Join(argv, " "), err, out.Tail()),
		Hint:    "fix what the package manager reports (full output in the log), then " + manualHint(plan),
	}
}

// writeDropIn writes the file unless it exists: an operator's own version
// wins.
func writeDropIn(path, content string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// lineWriter passes whole lines on to out and progress, and keeps the last
// few for error messages.
type lineWriter struct {
	out      io.Writer
	progress func(string)
	partial  []byte
	tail     []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// Flush passes on a last line that had no newline.
func (w *lineWriter) Flush() {
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

func (w *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	// apt redraws progress with carriage returns; keep the last state.
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		s = s[i+1:]
	}
	if strings.TrimSpace(s) == "" {
		return
	}
	if w.out != nil {
		io.WriteString(w.out, s+"\n")
	}
	if w.progress != nil {
		w.progress(s)
	}
	const keep = 5
	w.tail = append(w.tail, s)
	if len(w.tail) > keep {
		w.tail = w.tail[len(w.tail)-keep:]
	}
}

// Tail returns the last lines of output, joined.
func (w *lineWriter) Tail() string { return strings.Join(w.tail, " | ") }
