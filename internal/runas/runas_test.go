package runas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCommandsPerSystem(t *testing.T) {
	only := func(have ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			if slices.Contains(have, name) {
				return "/usr/sbin/" + name, nil
			}
			return "", exec.ErrNotFound
		}
	}
	shadow, err := (&Creator{LookPath: only("useradd", "adduser")}).Commands("pgu")
	if err != nil || len(shadow) != 1 || shadow[0][0] != "useradd" || !slices.Contains(shadow[0], "--system") || shadow[0][len(shadow[0])-1] != "pgu" {
		t.Errorf("shadow-utils: %q %v", shadow, err)
	}
	busybox, err := (&Creator{LookPath: only("adduser", "addgroup")}).Commands("pgu")
	if err != nil || len(busybox) != 2 || busybox[0][0] != "addgroup" || busybox[1][0] != "adduser" || !slices.Contains(busybox[1], "-S") {
		t.Errorf("busybox: %q %v", busybox, err)
	}
	if _, err := (&Creator{LookPath: only()}).Commands("pgu"); err == nil {
		t.Error("no tools, yet commands")
	}
}

// TestEnsureCreatesSystemUser creates a real, uniquely named system user
// and removes it again.
func TestEnsureCreatesSystemUser(t *testing.T) {
	if !IsRoot() {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "uplink-t" + hex.EncodeToString(b)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := (&Creator{}).Ensure(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != name || u.UID == 0 || u.UID >= 1000 {
		t.Errorf("created %+v; want a system uid", u)
	}
	again, err := (&Creator{Run: func(context.Context, ...string) ([]byte, error) {
		return nil, errors.New("must not run: the user exists")
	}}).Ensure(context.Background(), name)
	if err != nil || again.UID != u.UID {
		t.Errorf("second Ensure: %+v, %v", again, err)
	}
}

// TestCommandDropsPrivileges runs id(1) as the postgres user: its uid and
// gid, and none of root's supplementary groups.
func TestCommandDropsPrivileges(t *testing.T) {
	if !IsRoot() {
		t.Skip("needs root")
	}
	u, err := Lookup(PostgresName)
	if err != nil {
		t.Skip("no postgres user")
	}
	out, err := u.Command(context.Background(), "id").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	if !strings.HasPrefix(got, "uid="+strconv.FormatUint(uint64(u.UID), 10)+"(") || strings.Contains(got, "(root)") {
		t.Errorf("id as postgres: %s", got)
	}
}

func TestCanReach(t *testing.T) {
	u := &User{Name: "nobody-ish", UID: 65534, GID: 65534}
	root, err := os.MkdirTemp("", "canreach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	closed := filepath.Join(root, "closed")
	os.Mkdir(closed, 0o700)
	open := filepath.Join(closed, "open")
	os.Mkdir(open, 0o755)
	if os.Geteuid() == 65534 {
		t.Skip("running as the test user itself")
	}
	if err := u.CanReach(filepath.Join(open, "data")); err == nil || !strings.Contains(err.Error(), closed) {
		t.Errorf("through a 0700 directory: %v; want it named", err)
	}
	os.Chmod(closed, 0o711)
	if err := u.CanReach(filepath.Join(open, "data")); err != nil {
		t.Errorf("through 0711: %v", err)
	}
	var none *User
	if err := none.CanReach("/root/x"); err != nil {
		t.Errorf("nil user: %v", err)
	}
}

func TestWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) || WaitGone(pid, 50*time.Millisecond) {
		t.Fatal("a sleeping process counted as gone")
	}
	cmd.Process.Kill()
	// Not reaped yet: a zombie, which counts as gone.
	if !WaitGone(pid, 5*time.Second) {
		t.Fatal("killed process still counted alive")
	}
	cmd.Wait()
}
