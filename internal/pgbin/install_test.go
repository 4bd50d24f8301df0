package pgbin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/status"
)

func TestParseOSRelease(t *testing.T) {
	osr, err := ParseOSRelease(strings.NewReader(`# comment
PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian

BROKEN LINE
`))
	if err != nil {
		t.Fatal(err)
	}
	want := OSRelease{ID: "ubuntu", IDLike: []string{"debian"}, VersionID: "24.04", Pretty: "Ubuntu 24.04.1 LTS"}
	if osr.ID != want.ID || !slices.Equal(osr.IDLike, want.IDLike) || osr.VersionID != want.VersionID || osr.Pretty != want.Pretty {
		t.Fatalf("got %+v, want %+v", osr, want)
	}
	if !osr.Is("debian") || osr.Is("fedora") {
		t.Error("Is does not follow ID_LIKE")
	}
	rocky, _ := ParseOSRelease(strings.NewReader(`ID="rocky"` + "\n" + `ID_LIKE="rhel centos fedora"` + "\n" + `VERSION_ID='9.4'`))
	if rocky.ID != "rocky" || !rocky.Is("fedora") || rocky.VersionID != "9.4" {
		t.Errorf("rocky: %+v", rocky)
	}
}

func TestPlanFor(t *testing.T) {
	cases := []struct {
		osRelease string
		install   string // "" when no plan
		dropIn    bool
	}{
		{"ID=debian\nVERSION_ID=12", "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql", true},
		{"ID=ubuntu\nID_LIKE=debian", "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql", true},
		{"ID=linuxmint\nID_LIKE=\"ubuntu debian\"", "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql", true},
		{"ID=alpine\nVERSION_ID=3.20.3", "apk add --no-progress postgresql16 postgresql16-client", false},
		{"ID=alpine\nVERSION_ID=3.21.0", "apk add --no-progress postgresql17 postgresql17-client", false},
		{"ID=alpine\nVERSION_ID=3.99_alpha", "apk add --no-progress postgresql postgresql-client", false},
		{"ID=fedora\nVERSION_ID=40", "dnf install -y postgresql-server", false},
		{"ID=rocky\nID_LIKE=\"rhel centos fedora\"", "dnf install -y postgresql-server", false},
		{"ID=arch", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		osr, _ := ParseOSRelease(strings.NewReader(c.osRelease))
		p, ok := PlanFor(osr, "/drop")
		if got := p.Command(); ok != (c.install != "") || got != c.install {
			t.Errorf("%q: plan %q (ok %v), want %q", c.osRelease, got, ok, c.install)
		}
		if (p.DropIn != "") != c.dropIn {
			t.Errorf("%q: drop-in %q", c.osRelease, p.DropIn)
		}
	}
}

// fakeMachine is a machine the installer can be run against: an
// os-release file, some programs, root or not, and a recorder of commands.
type fakeMachine struct {
	t    *testing.T
	dir  string
	root bool
	have []string       // programs LookPath finds
	fail map[string]int // command prefix → how many more times it fails
	ran  []string       // commands run, in order
}

func newFakeMachine(t *testing.T, osRelease string, have ...string) *fakeMachine {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "os-release"), []byte(osRelease), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fakeMachine{t: t, dir: dir, root: true, have: have, fail: map[string]int{}}
}

func (m *fakeMachine) installer(never bool, out io.Writer, progress *[]string) *Installer {
	return &Installer{
		Never:         never,
		Output:        out,
		Progress:      func(s string) { *progress = append(*progress, s) },
		OSReleasePath: filepath.Join(m.dir, "os-release"),
		DropInDir:     filepath.Join(m.dir, "createcluster.d"),
		IsRoot:        func() bool { return m.root },
		LookPath: func(name string) (string, error) {
			if slices.Contains(m.have, name) {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		Run: func(_ context.Context, out io.Writer, env []string, argv ...string) error {
			cmd := strings.Join(argv, " ")
			m.ran = append(m.ran, cmd)
			io.WriteString(out, "output of "+argv[0]+"\n")
			for prefix, n := range m.fail {
				if strings.HasPrefix(cmd, prefix) && n > 0 {
					m.fail[prefix] = n - 1
					io.WriteString(out, "E: Unable to locate package postgresql")
					return errors.New("exit status 100")
				}
			}
			return nil
		},
	}
}

const debian = "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"

func TestInstallerDebian(t *testing.T) {
	const install = "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql"
	cases := []struct {
		name string
		fail map[string]int
		want []string
		err  string
	}{
		{"index knows the package", nil, []string{"apt-cache show postgresql", install}, ""},
		{"fresh container: update first", map[string]int{"apt-cache": 1}, []string{"apt-cache show postgresql", "apt-get -o DPkg::Lock::Timeout=300 update", install}, ""},
		{"stale index: update after a failed install", map[string]int{"apt-get install": 1}, []string{"apt-cache show postgresql", install, "apt-get -o DPkg::Lock::Timeout=300 update", install}, ""},
		{"broken: one update only", map[string]int{"apt-get install": 2}, []string{"apt-cache show postgresql", install, "apt-get -o DPkg::Lock::Timeout=300 update", install}, "Unable to locate package"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newFakeMachine(t, debian, "apt-get")
			m.fail = c.fail
			var out bytes.Buffer
			var progress []string
			in := m.installer(false, &out, &progress)
			err := in.Install(context.Background())
			if !slices.Equal(m.ran, c.want) {
				t.Errorf("ran %q\nwant %q", m.ran, c.want)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !status.IsAction(err)) {
				t.Fatalf("Install: %v; want error %q", err, c.err)
			}
			if !strings.Contains(out.String(), "output of apt-get") || len(progress) == 0 {
				t.Errorf("output %q, progress %q: want the package manager's output in both", out.String(), progress)
			}
			dropIn, rerr := os.ReadFile(filepath.Join(m.dir, "createcluster.d", "uplink.conf"))
			if rerr != nil || !strings.Contains(string(dropIn), "create_main_cluster = false") {
				t.Errorf("drop-in: %q %v", dropIn, rerr)
			}
			// Never again, whatever the outcome: a retry must not rerun it.
			before := len(m.ran)
			if err2 := in.Install(context.Background()); len(m.ran) != before || (err == nil) != (err2 == nil) {
				t.Errorf("second Install ran %q, returned %v", m.ran[before:], err2)
			}
		})
	}
}

func TestInstallerKeepsOperatorDropIn(t *testing.T) {
	m := newFakeMachine(t, debian, "apt-get")
	path := filepath.Join(m.dir, "createcluster.d", "uplink.conf")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte("# mine\n"), 0o644)
	var progress []string
	if err := m.installer(false, io.Discard, &progress).Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != "# mine\n" {
		t.Errorf("drop-in overwritten: %q", raw)
	}
}

func TestInstallerOtherSystems(t *testing.T) {
	for _, c := range []struct{ osRelease, manager, want string }{
		{"ID=alpine\nVERSION_ID=3.20.1", "apk", "apk add --no-progress postgresql16 postgresql16-client"},
		{"ID=fedora\nVERSION_ID=40", "dnf", "dnf install -y postgresql-server"},
	} {
		m := newFakeMachine(t, c.osRelease, c.manager)
		var progress []string
		if err := m.installer(false, io.Discard, &progress).Install(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.ran, []string{c.want}) {
			t.Errorf("%s: ran %q, want %q", c.manager, m.ran, c.want)
		}
		if _, err := os.Stat(filepath.Join(m.dir, "createcluster.d")); err == nil {
			t.Errorf("%s: Debian drop-in written", c.manager)
		}
	}
}

// TestInstallerRefusals: where Uplink may not or cannot install, nothing
// runs and the error is for a person, with the command to run and the
// pro-mode way out.
func TestInstallerRefusals(t *testing.T) {
	for _, c := range []struct {
		name      string
		osRelease string
		have      []string
		root      bool
		never     bool
		hint      []string
	}{
		{"never", debian, []string{"apt-get"}, true, true, []string{"apt-get install -y --no-install-recommends", "DATABASE_URL", "UPLINK_PG_BINDIR"}},
		{"not root", debian, []string{"apt-get"}, false, false, []string{"run as root: apt-get install", "DATABASE_URL"}},
		{"not root on alpine", "ID=alpine\nVERSION_ID=3.19.0", []string{"apk"}, false, false, []string{"apk add --no-progress postgresql16 postgresql16-client", "DATABASE_URL"}},
		{"unknown system", "ID=arch", []string{"pacman"}, true, false, []string{"UPLINK_PG_BINDIR", "DATABASE_URL"}},
		{"package manager missing", debian, nil, true, false, []string{"UPLINK_PG_BINDIR", "DATABASE_URL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newFakeMachine(t, c.osRelease, c.have...)
			m.root = c.root
			var progress []string
			err := m.installer(c.never, io.Discard, &progress).Install(context.Background())
			if !status.IsAction(err) {
				t.Fatalf("Install: %v; want an ActionError", err)
			}
			for _, h := range c.hint {
				if !strings.Contains(status.HintOf(err), h) {
					t.Errorf("hint %q lacks %q", status.HintOf(err), h)
				}
			}
			if len(m.ran) > 0 {
				t.Errorf("ran %q", m.ran)
			}
		})
	}
}

// TestEnsureInstallsOnlyWhenNothingFound: an explicit BinDir, or binaries
// of the wrong major, never trigger an install.
func TestEnsureInstallsOnlyWhenNothingFound(t *testing.T) {
	m := newFakeMachine(t, debian, "apt-get")
	var progress []string
	in := m.installer(false, io.Discard, &progress)
	_, installed, err := Ensure(context.Background(), Options{BinDir: t.TempDir()}, in)
	if err == nil || installed || len(m.ran) > 0 {
		t.Errorf("empty BinDir: err %v, installed %v, ran %q", err, installed, m.ran)
	}
	if _, err := Find(context.Background(), Options{}); err != nil {
		t.Skip("no PostgreSQL here to be of the wrong major")
	}
	_, installed, err = Ensure(context.Background(), Options{Major: 9}, in)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Nothing() || installed || len(m.ran) > 0 {
		t.Errorf("wrong major: err %v, installed %v, ran %q", err, installed, m.ran)
	}
}

// TestInstallerRealAptNoop runs the real Debian install where it cannot
// change anything: as root, with the postgresql package already installed
// at its candidate version, apt-get only confirms it. It proves the
// commands are right for the real apt-get, not just for the fake.
func TestInstallerRealAptNoop(t *testing.T) {
	t.Parallel() // seconds of apt reading its lists: overlap the rest
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	osr, err := ReadOSRelease("/etc/os-release")
	if err != nil || !(osr.Is("debian") || osr.Is("ubuntu")) {
		t.Skip("not Debian or Ubuntu")
	}
	policy, err := exec.Command("apt-cache", "policy", "postgresql").Output()
	installed, candidate := aptPolicy(string(policy))
	if err != nil || installed == "" || installed == "(none)" || installed != candidate {
		t.Skipf("postgresql not installed at its candidate version (installed %q, candidate %q): a real install would change the machine", installed, candidate)
	}
	var out bytes.Buffer
	in := &Installer{Output: &out, DropInDir: t.TempDir()}
	if err := in.Install(context.Background()); err != nil {
		t.Fatalf("real apt-get: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "postgresql is already the newest version") {
		t.Errorf("apt-get output does not confirm the package:\n%s", out.String())
	}
}

func aptPolicy(s string) (installed, candidate string) {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Installed: "); ok {
			installed = v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok {
			candidate = v
		}
	}
	return installed, candidate
}
