package lite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/runas"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// TestColdThenWarm walks the main path: a cold start initialises and
// serves, the files are private, nothing listens beyond loopback, no
// password leaks, and a warm start reuses the cluster and its rows.
func TestColdThenWarm(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	lay := LayoutOf(dir)

	cold := newLite(t, dir, nil)
	began := time.Now()
	dsn := provisionOK(t, cold)
	coldTime := time.Since(began)

	if st := cold.Status(); st.Status != status.Pass || st.Data["step"] != StepReady {
		t.Fatalf("Status after Provision = %+v", st)
	}
	for _, want := range []Step{StepCheck, StepFindBinaries, StepInitdb, StepStart, StepCreateDatabase, StepReady} {
		if !hasStep(cold.steps(), want) {
			t.Errorf("cold start steps %v lack %s", cold.steps(), want)
		}
	}
	exec1(t, dsn, "CREATE TABLE kept (v text)")
	exec1(t, dsn, "INSERT INTO kept VALUES ('before restart')")
	// Uplink's own schema is called after the role: the application's
	// tables must still go to public, not beside Uplink's.
	exec1(t, dsn, "CREATE SCHEMA uplink")
	exec1(t, dsn, "CREATE TABLE uplink.instances (id int)")
	exec1(t, dsn, "CREATE TABLE instances (v text)")
	if n := pgtest.QueryInt(t, dsn.Secret(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('kept', 'instances')"); n != 2 {
		t.Errorf("%d of the application's tables in public, want 2", n)
	}

	t.Run("files are private", func(t *testing.T) { checkModes(t, lay) })
	t.Run("loopback only", func(t *testing.T) { checkLoopbackOnly(t, cold.pid()) })
	t.Run("conninfo", func(t *testing.T) {
		ci, err := ReadConnInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		if ci.PID != cold.pid() {
			t.Errorf("ConnInfo.PID = %d, running postmaster is %d", ci.PID, cold.pid())
		}
		if n := pgtest.QueryInt(t, ci.URL().Secret(), "SELECT count(*) FROM kept"); n != 1 {
			t.Errorf("over TCP: %d rows", n)
		}
		if ci.SocketDSN() != dsn {
			t.Errorf("SocketDSN %s != Provision's %s", ci.SocketDSN(), dsn)
		}
	})
	// Someone changes the application role's password by hand: the next
	// start puts pg/password's back, or the DSN would stop working.
	exec1(t, cold.superDSN(), "ALTER ROLE uplink PASSWORD 'changed-by-hand'")

	if err := cold.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cold.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if ci, err := ReadConnInfo(dir); err != nil || ci.PID != 0 {
		t.Errorf("ConnInfo after Stop: PID %d, %v", ci.PID, err)
	}

	warm := newLite(t, dir, nil)
	began = time.Now()
	dsn2 := provisionOK(t, warm)
	warmTime := time.Since(began)
	t.Logf("cold Provision %v, warm Provision %v", coldTime.Round(time.Millisecond), warmTime.Round(time.Millisecond))
	if hasStep(warm.steps(), StepInitdb) || hasStep(warm.steps(), StepRecover) {
		t.Errorf("warm start steps %v: initdb or recovery after a clean stop", warm.steps())
	}
	if !hasStep(warm.steps(), StepCreateDatabase) {
		t.Errorf("warm start steps %v: the changed password was not repaired", warm.steps())
	}
	if n := pgtest.QueryInt(t, dsn2.Secret(), "SELECT count(*) FROM kept WHERE v = 'before restart'"); n != 1 {
		t.Fatalf("row written before the restart: found %d", n)
	}
	// The cold start renamed the postgres database into the application's
	// and made a new one after Provision returned.
	if n := pgtest.QueryInt(t, warm.superDSN().Secret(), "SELECT count(*) FROM pg_database WHERE datname IN ('postgres', 'uplink')"); n != 2 {
		t.Errorf("databases postgres and uplink: %d of them", n)
	}

	t.Run("no password in logs or status", func(t *testing.T) {
		pw := warm.run.password
		raw, err := json.Marshal(warm.Status())
		if err != nil {
			t.Fatal(err)
		}
		serverLog, _ := os.ReadFile(lay.LogFile)
		for what, text := range map[string]string{
			"cold log": cold.logs.String(), "warm log": warm.logs.String(),
			"status": string(raw), "server log": string(serverLog),
			"DSN %v": fmt.Sprintf("%v %s", dsn, dsn2),
		} {
			if strings.Contains(text, pw) {
				t.Errorf("%s contains the password", what)
			}
		}
		if !strings.Contains(dsn2.Secret(), pw) {
			t.Error("DSN has no password: the test above proves nothing")
		}
	})
}

func checkModes(t *testing.T, lay Layout) {
	pgUser := pgtest.User(t)
	for _, c := range []struct {
		path string
		perm fs.FileMode
		ours bool // owned by Uplink's user rather than the server's
	}{
		{lay.Data, 0o700, false},
		{lay.Run, 0o700, false},
		{lay.Password, 0o600, true},
		{lay.SuperPassword, 0o600, true},
		{lay.LogDir, 0o700, true},
		{lay.LogFile, 0o600, true},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != c.perm {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.perm)
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		want := uint32(os.Geteuid())
		if !c.ours && pgUser != nil {
			want = pgUser.UID
		}
		if uid != want {
			t.Errorf("%s: owner %d, want %d", c.path, uid, want)
		}
	}
	if _, err := os.Stat(lay.initdbPwfile()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("initdb's password file is still there: %v", err)
	}
}

// checkLoopbackOnly finds the postmaster's listening TCP sockets in
// /proc/net and insists they are all on 127.0.0.1.
func checkLoopbackOnly(t *testing.T, pid int) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var listening []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			addr := decodeProcAddr(t, f[1])
			listening = append(listening, addr)
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Errorf("postmaster listens on %s", addr)
			}
		}
	}
	if len(listening) == 0 {
		t.Fatal("found no listening socket of the postmaster: the check proves nothing")
	}
}

// decodeProcAddr turns /proc/net/tcp's "0100007F:1F90" into 127.0.0.1:8080.
// Addresses are 32-bit words in host (little-endian) order.
func decodeProcAddr(t *testing.T, s string) string {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		slices.Reverse(raw[i : i+4])
	}
	port, _ := strconv.ParseUint(hexPort, 16, 16)
	return net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(int(port)))
}

// TestPostgresKilledIsRestarted: kill -9 of the postmaster, and Uplink
// brings it back through crash recovery, same DSN, no restart of its own.
func TestPostgresKilledIsRestarted(t *testing.T) {
	t.Parallel()
	// A back-off long enough to see the restart step in Status.
	l := newLite(t, dataDir(t), func(c *Config) { c.RestartBackoffMin, c.RestartBackoffMax = time.Second, time.Second })
	dsn := provisionOK(t, l)
	exec1(t, dsn, "CREATE TABLE t AS SELECT 1 AS v")
	old := l.pid()
	killPID(t, old)
	testutil.Eventually(t, "the restart step", 10*time.Second, func() bool { return l.tr.currentStep() == StepRestart })
	if st := l.Status(); st.Status != status.Warn || st.Attempts != 1 || !st.NextRetry.After(time.Now()) || !strings.Contains(st.LastError, "signal: killed") {
		t.Errorf("Status while restarting = %+v; want warn, attempt 1, a next retry ahead, the cause", st)
	}
	testutil.Eventually(t, "a new postmaster, ready", time.Minute, func() bool {
		return l.pid() != old && l.Status().Data["step"] == StepReady
	})
	if n := pgtest.QueryInt(t, dsn.Secret(), "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("after restart: %d rows", n)
	}
	steps := l.steps()
	restart := slices.Index(steps, StepRestart)
	if restart < 0 || !slices.Contains(steps[restart:], StepRecover) {
		t.Errorf("steps %v: want restart, then recover", steps)
	}
	if st := l.Status(); st.LastError == "" || st.Status != status.Pass {
		t.Errorf("Status after recovery = %+v; want pass with the crash as last error", st)
	}
	select {
	case err := <-l.Failed():
		t.Fatalf("Failed delivered after one crash: %v", err)
	default:
	}
}

// TestGivesUpAfterRepeatedFailures: a server that cannot start again is
// retried MaxRestarts times, then Failed delivers and Status fails with
// the server's own words.
func TestGivesUpAfterRepeatedFailures(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	l := newLite(t, dir, func(c *Config) { c.MaxRestarts = 2 })
	provisionOK(t, l)
	conf := filepath.Join(LayoutOf(dir).Data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "shared_buffers = 'plenty'")
	f.Close()
	killPID(t, l.pid())

	select {
	case err := <-l.Failed():
		if !strings.Contains(err.Error(), "3 times") {
			t.Errorf("Failed: %v; want it to count 3 failures", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Failed did not deliver; status %+v", l.Status())
	}
	st := l.Status()
	tail, _ := st.Data["log_tail"].([]string)
	if st.Status != status.Fail || st.Data["step"] != StepFailed || !strings.Contains(strings.Join(tail, "\n"), "shared_buffers") {
		t.Errorf("Status = %+v; want fail with the log tail naming shared_buffers", st)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Errorf("Stop after giving up: %v", err)
	}

	// The next Uplink fails the same way, tries again (it cannot know a
	// configuration from a passing trouble), and then says why.
	next := newLite(t, dir, func(c *Config) {
		c.MaxRestarts, c.RestartBackoffMin, c.RestartBackoffMax = 2, 10*time.Millisecond, 20*time.Millisecond
	})
	if _, err := next.Provision(context.Background()); !status.IsAction(err) || !strings.Contains(err.Error(), "shared_buffers") || !strings.Contains(err.Error(), "3 times") {
		t.Errorf("Provision on a broken configuration: %v; want the server's complaint after 3 tries, for a person", err)
	}
	st = next.Status()
	tail, _ = st.Data["log_tail"].([]string)
	if st.Status != status.Fail || !strings.Contains(strings.Join(tail, "\n"), "shared_buffers") {
		t.Errorf("Status after a failed Provision = %+v; want fail with the log tail", st)
	}
}

// TestSecondUplinkRefusedAndKilledUplink: another Uplink process holds
// the data directory, so a second one is refused at once; then the first
// is killed with SIGKILL. Its server gets the parent-death signal (SIGINT,
// a clean fast shutdown), and the next Uplink comes up on the same data,
// without crash recovery.
func TestSecondUplinkRefusedAndKilledUplink(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	h := startHelper(t, dir, false)
	ci, err := ReadConnInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, ci.URL(), "CREATE TABLE survived AS SELECT 1 AS v")

	second := newLite(t, dir, nil)
	began := time.Now()
	_, err = second.Provision(context.Background())
	if !errors.Is(err, ErrLocked) || !status.IsAction(err) {
		t.Fatalf("second Uplink: %v; want an ActionError wrapping ErrLocked", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("refusal took %v; want it at once", d)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(h.cmd.Process.Pid)) {
		t.Errorf("refusal %q does not name the holder's pid %d", err, h.cmd.Process.Pid)
	}
	if st := second.Status(); st.Status != status.Fail || st.Hint == "" {
		t.Errorf("Status of refused Uplink = %+v", st)
	}

	h.kill()
	// The kernel told the postmaster (SIGINT, a fast shutdown) that its
	// parent died: it goes away without anyone's help.
	testutil.Eventually(t, "the killed Uplink's postmaster to shut down", 30*time.Second, func() bool { return !processAlive(h.pgPID) })
	third := comesBack(t, dir, "survived")
	if hasStep(third.steps(), StepRecover) {
		t.Errorf("steps %v: recovery after a parent-death SIGINT, which should shut down cleanly", third.steps())
	}
}

// TestOrphanStopped: a server left running by an Uplink whose parent-death
// signal could not fire (here: switched off in the helper) is found
// through postmaster.pid, /proc/PID/exe and cwd, and stopped first.
func TestOrphanStopped(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	h := startHelper(t, dir, true)
	h.kill()
	// Still serving with its parent gone: a real orphan.
	ci, err := ReadConnInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ci.PID != h.pgPID {
		t.Fatalf("orphan not identified: ConnInfo.PID %d, postmaster %d", ci.PID, h.pgPID)
	}
	exec1(t, ci.URL(), "CREATE TABLE from_orphan_era AS SELECT 1 AS v")

	l := comesBack(t, dir, "from_orphan_era")
	if !hasStep(l.steps(), StepOrphan) {
		t.Errorf("steps %v lack %s", l.steps(), StepOrphan)
	}
	if processAlive(h.pgPID) {
		t.Errorf("orphan %d still alive", h.pgPID)
	}
}

// TestReusedPIDLeftAlone: postmaster.pid names a live process that is not
// a postgres (a pid reused after a crash), owned by the server's own user
// so that PostgreSQL itself would refuse the file. Uplink leaves the
// process alone and starts.
func TestReusedPIDLeftAlone(t *testing.T) {
	t.Parallel()
	dir, port := initialized(t)
	sleeper := pgtest.User(t).Command(context.Background(), "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	lay := LayoutOf(dir)
	pidFile := fmt.Sprintf("%d\n%s\n%d\n%d\n%s\n127.0.0.1\n  0 0\nready   \n", sleeper.Process.Pid, lay.Data, time.Now().Unix(), port, lay.Run)
	if err := os.WriteFile(filepath.Join(lay.Data, "postmaster.pid"), []byte(pidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	pgtest.User(t).Chown(filepath.Join(lay.Data, "postmaster.pid"))

	l := newLite(t, dir, nil)
	provisionOK(t, l)
	if !processAlive(sleeper.Process.Pid) {
		t.Error("the unrelated process was killed")
	}
	if hasStep(l.steps(), StepOrphan) {
		t.Errorf("steps %v: an unrelated process was treated as an orphan", l.steps())
	}
}

// TestPortTakenMovesServer: another program listens on the recorded port;
// the next start picks a new one, records it, and says so.
func TestPortTakenMovesServer(t *testing.T) {
	t.Parallel()
	dir, oldPort := initialized(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(oldPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	l := newLite(t, dir, nil)
	dsn := provisionOK(t, l)
	st, err := readState(LayoutOf(dir).State)
	if err != nil {
		t.Fatal(err)
	}
	if st.Port == oldPort || l.run.port != st.Port || !strings.Contains(dsn.String(), "port="+strconv.Itoa(st.Port)) {
		t.Errorf("old port %d, state %d, running %d, DSN %s", oldPort, st.Port, l.run.port, dsn)
	}
	if !strings.Contains(l.logs.String(), "port taken") {
		t.Error("the move was not logged")
	}
	pgtest.QueryInt(t, dsn.Secret(), "SELECT 1")
}

// TestStopEscalates: a server that ignores SIGINT and SIGQUIT (stopped
// with SIGSTOP) is killed with its group, and the next start recovers.
func TestStopEscalates(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	l := newLite(t, dir, func(c *Config) { c.StopTimeout, c.QuitTimeout = 100*time.Millisecond, 100*time.Millisecond })
	provisionOK(t, l)
	pid := l.pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	err := l.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a stuck server: %v; want it to say it killed it", err)
	}
	if processAlive(pid) {
		t.Fatal("server still alive after Stop")
	}
	next := newLite(t, dir, nil)
	provisionOK(t, next)
	if !hasStep(next.steps(), StepRecover) {
		t.Errorf("steps %v: want recovery after a SIGKILL", next.steps())
	}
}

// tree records every file under a directory: path, mode, owner, size,
// modification time and content hash.
func tree(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		sum := ""
		if fi.Mode().IsRegular() {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(raw)
			sum = hex.EncodeToString(h[:8])
		}
		out[path] = fmt.Sprintf("%v %d:%d %d %d %s", fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano(), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusesForeignData: directories that are not Uplink's clusters are
// refused with a hint and left exactly as they were.
func TestRefusesForeignData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files map[string]string // relative to the data directory
		want  string
	}{
		{"non-cluster pg/data", map[string]string{"pg/data/notes.txt": "mine", "pg/data/sub/keep.bin": "x"}, "not a PostgreSQL cluster"},
		{"data dir is a cluster", map[string]string{"PG_VERSION": "15\n", "base/1/1259": "x"}, "itself a PostgreSQL data directory"},
		{"other major", map[string]string{"pg/data/PG_VERSION": "11\n", "pg/data/base/1/1259": "x", "pg/password": "pw\n"}, "pg_upgrade"},
		// initdb killed while it worked in a pg/data that existed (a volume):
		// a PG_VERSION, but not a cluster to start.
		{"interrupted initdb in place", map[string]string{"pg/data/PG_VERSION": "15\n", "pg/data/base/1/1259": "x",
			"pg/initdb-incomplete": "initdb into pg/data began\n", "pg/password": "pw\n"}, "was interrupted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := dataDir(t)
			for rel, content := range c.files {
				path := filepath.Join(dir, rel)
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := tree(t, filepath.Dir(dir))
			l := newLite(t, dir, nil)
			_, err := l.Provision(context.Background())
			if !status.IsAction(err) || !strings.Contains(err.Error()+" "+status.HintOf(err), c.want) {
				t.Fatalf("Provision: %v; want an ActionError saying %q", err, c.want)
			}
			if st := l.Status(); st.Status != status.Fail || st.Hint == "" {
				t.Errorf("Status = %+v; want fail with a hint", st)
			}
			if after := tree(t, filepath.Dir(dir)); !mapsEqual(before, after) {
				t.Errorf("directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestStopInterruptsProvision: Stop while Provision waits ends it, and
// leaves nothing running or locked.
func TestStopInterruptsProvision(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	l := newLite(t, dir, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Provision(context.Background())
		errc <- err
	}()
	testutil.Eventually(t, "initdb to start", time.Minute, func() bool { return l.tr.currentStep() == StepInitdb })
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("Provision succeeded although Stop interrupted it")
	}
	if st := l.Status(); st.Data["step"] != StepStopped || st.Status == status.Fail {
		t.Errorf("Status after an interrupted Provision = %+v; want stopped, not failed", st)
	}
	lock, err := lockDir(LayoutOf(dir).Lock)
	if err != nil {
		t.Fatalf("lock still held: %v", err)
	}
	lock.release()
	// The interrupted initdb left no pg/data that would pass for a cluster.
	if _, err := os.Stat(filepath.Join(LayoutOf(dir).Data, "PG_VERSION")); err == nil {
		t.Error("an interrupted initdb left pg/data/PG_VERSION")
	}
}

// TestServerUserCannotReach: as root, a data directory under a path the
// postgres user cannot enter is an ActionError, not an initdb failure.
func TestServerUserCannotReach(t *testing.T) {
	t.Parallel()
	if !runas.IsRoot() {
		t.Skip("needs root: the server user differs only then")
	}
	pgtest.Binaries(t)
	l := newLite(t, filepath.Join(t.TempDir(), "uplink"), nil) // t.TempDir is 0700 root
	_, err := l.Provision(context.Background())
	if !status.IsAction(err) || !strings.Contains(err.Error(), "cannot enter") {
		t.Fatalf("Provision: %v; want an ActionError about the path", err)
	}
}

// TestWrongPasswordFile: a pg/superuser-password that is not the
// cluster's is an ActionError at once, not a wait for a server that will
// never let us in, and the file is not "repaired" behind the operator's
// back. (A wrong pg/password is repaired: the application role is
// Uplink's, and gets the file's password again.)
func TestWrongPasswordFile(t *testing.T) {
	t.Parallel()
	dir, _ := initialized(t)
	pwPath := LayoutOf(dir).SuperPassword
	if err := os.WriteFile(pwPath, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := newLite(t, dir, nil)
	began := time.Now()
	_, err := l.Provision(context.Background())
	if !status.IsAction(err) || !strings.Contains(err.Error(), "refused Uplink's password for role postgres") {
		t.Fatalf("Provision: %v; want an ActionError about the password", err)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("took %v: it waited for the start timeout", d)
	}
	if raw, _ := json.Marshal(l.Status()); strings.Contains(string(raw)+err.Error()+l.logs.String(), "not-the-password") {
		t.Error("the password shows in Status, the error or the log")
	}
	if raw, _ := os.ReadFile(pwPath); string(raw) != "not-the-password\n" {
		t.Errorf("password file changed to %q", raw)
	}
}

// TestScramIterations: the superuser's verifier has superIterations from
// initdb on and its own password, the application role's keeps
// PostgreSQL's 4096 for clients that refuse fewer, both log in, the
// application's password does not log in as the superuser, and a cluster
// made before (superuser at 4096, sharing the application's password,
// no pg/superuser-password) is rewritten once, without a password
// reaching any log.
func TestScramIterations(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	cold := newLite(t, dir, nil)
	dsn := provisionOK(t, cold)
	pw := cold.run.password
	iterations := func(l testLite) (super, app int) {
		t.Helper()
		withConn(t, l.superDSN(), func(ctx context.Context, conn *pgx.Conn) error {
			var sv, av string
			err := conn.QueryRow(ctx, `SELECT (SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'),
				(SELECT rolpassword FROM pg_authid WHERE rolname = 'uplink')`).Scan(&sv, &av)
			super, _, _ = parseScram(sv)
			app, _, _ = parseScram(av)
			superPW, _ := readPassword(LayoutOf(dir).SuperPassword)
			if superPW == "" || superPW == pw || l.run.superPassword != superPW {
				t.Errorf("superuser password %q (in use %q), application's %q: want its own, from pg/superuser-password", superPW, l.run.superPassword, pw)
			}
			if !scramMatches(sv, superPW) || scramMatches(sv, pw) || !scramMatches(av, pw) {
				t.Errorf("verifiers do not match their own passwords: %q, %q", sv, av)
			}
			// What lets the next start skip the PBKDF2.
			if st, _ := readState(LayoutOf(dir).State); st.AppVerifierMAC != verifierMAC(pw, av) {
				t.Errorf("state file's app_verifier_mac %q is not the stored verifier's", st.AppVerifierMAC)
			}
			return err
		})
		return super, app
	}
	if super, app := iterations(cold); super != superIterations || app != appIterations {
		t.Errorf("after initdb: superuser %d iterations, application role %d; want %d and %d", super, app, superIterations, appIterations)
	}
	exec1(t, dsn, "SELECT 1") // the application role logs in
	asSuper := strings.Replace(dsn.Secret(), "uplink:", "postgres:", 1)
	var pgErr *pgconn.PgError
	if conn, err := pgx.Connect(context.Background(), asSuper); err == nil {
		conn.Close(context.Background())
		t.Error("the application's password logs in as the superuser")
	} else if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Errorf("the superuser with the application's password: %v; want a refused password (28P01)", err)
	}

	// A cluster from before: initdb's own verifier for the superuser, the
	// application's password, no pg/superuser-password.
	exec1(t, cold.superDSN(), "ALTER ROLE postgres PASSWORD "+quoteLiteral(scramVerifier(pw, 4096)))
	if err := cold.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(LayoutOf(dir).SuperPassword); err != nil {
		t.Fatal(err)
	}
	// And a state file from before, without the verifier's MAC: the
	// first start checks the slow way and records it.
	st, err := readState(LayoutOf(dir).State)
	if err != nil {
		t.Fatal(err)
	}
	st.AppVerifierMAC = ""
	if err := writeState(LayoutOf(dir).State, st); err != nil {
		t.Fatal(err)
	}
	const rewrote = "rewrote the postgres role's password verifier"
	for i, want := range []int{1, 0} { // rewritten by the first start only
		l := newLite(t, dir, nil)
		provisionOK(t, l)
		if n := strings.Count(l.logs.String(), rewrote); n != want {
			t.Errorf("start %d after the old cluster: %d log lines %q, want %d", i+1, n, rewrote, want)
		}
		if super, app := iterations(l); super != superIterations || app != appIterations {
			t.Errorf("start %d: superuser %d iterations, application role %d", i+1, super, app)
		}
		if hasStep(l.steps(), StepCreateDatabase) {
			t.Errorf("start %d: steps %v; the rewrite is not a repair of the application's role", i+1, l.steps())
		}
		serverLog, _ := os.ReadFile(LayoutOf(dir).LogFile)
		if strings.Contains(l.logs.String()+string(serverLog), pw) || strings.Contains(l.logs.String()+string(serverLog), l.run.superPassword) {
			t.Errorf("start %d: a password is in a log", i+1)
		}
		if err := l.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresDBAfterQuietPeriod: on a fresh cluster the postgres database
// is made after postgresDBDelay, not while boot migrates; a Stop before
// then does not wait for it, and the next start makes it.
func TestPostgresDBAfterQuietPeriod(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	postgresDB := func(l testLite) int {
		return pgtest.QueryInt(t, l.superDSN().Secret(), "SELECT count(*) FROM pg_database WHERE datname = 'postgres'")
	}
	cold := newLite(t, dir, nil)
	cold.postgresDBDelay = time.Hour
	provisionOK(t, cold)
	if n := postgresDB(cold); n != 0 {
		t.Errorf("postgres database made before the quiet period: %d", n)
	}
	began := time.Now()
	if err := cold.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("Stop took %v: it waited for the postgres database", d)
	}

	warm := newLite(t, dir, nil) // postgresDBDelay 0
	provisionOK(t, warm)
	testutil.Eventually(t, "the postgres database", 30*time.Second, func() bool { return postgresDB(warm) == 1 })
	if strings.Contains(warm.logs.String(), "could not create the postgres database") {
		t.Errorf("log:\n%s", warm.logs.String())
	}
}

// TestWarmStartWithoutAppDatabase: the first connection of a warm start
// goes to the application's database; when someone dropped it, Provision
// falls back to template1 at once and makes it again.
func TestWarmStartWithoutAppDatabase(t *testing.T) {
	t.Parallel()
	dir, _ := initialized(t)
	l := newLite(t, dir, nil)
	provisionOK(t, l)
	exec1(t, l.superDSN(), "DROP DATABASE uplink")
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	warm := newLite(t, dir, nil)
	began := time.Now()
	dsn := provisionOK(t, warm)
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("Provision took %v: it waited for the start timeout", d)
	}
	if !hasStep(warm.steps(), StepCreateDatabase) {
		t.Errorf("steps %v: the database was not made again", warm.steps())
	}
	exec1(t, dsn, "SELECT 1")
}

// TestStartFailureThatFixesItselfIsRetried: a postmaster.pid naming a
// dead server whose process nobody has reaped yet (a zombie: its parent,
// a killed Uplink, gone, and init slow to reap) is left alone, since its
// backends may still hold the data directory, and PostgreSQL refuses to
// start while the zombie exists. That fixes itself: Provision tries
// again, says so in Status, and comes up once the process is reaped.
func TestStartFailureThatFixesItselfIsRetried(t *testing.T) {
	t.Parallel()
	dir, _ := initialized(t)
	// The server's own user's: PostgreSQL ignores a pid it may not signal.
	zombie := pgtest.User(t).Command(context.Background(), "true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	for { // exited, not waited for: a zombie
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", zombie.Process.Pid))
		if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	pidFile := filepath.Join(LayoutOf(dir).Data, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s\n", zombie.Process.Pid, LayoutOf(dir).Data)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.User(t).Chown(pidFile); err != nil {
		t.Fatal(err)
	}
	l := newLite(t, dir, func(c *Config) {
		c.RestartBackoffMin, c.RestartBackoffMax = 200*time.Millisecond, 400*time.Millisecond
		c.MaxRestarts = 30
	})
	// Reaped once Status shows the retry, not on a clock: a slow machine
	// must not reap it before the first start.
	retried := make(chan status.Check, 1)
	go func() {
		defer zombie.Wait()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if st := l.Status(); st.Data["step"] == StepRetry {
				retried <- st
				return
			}
		}
	}()
	dsn := provisionOK(t, l)
	exec1(t, dsn, "SELECT 1")
	select {
	case st := <-retried:
		if st.Attempts < 1 || st.NextRetry.IsZero() || st.LastError == "" {
			t.Errorf("Status while retrying = %+v", st)
		}
		t.Logf("retried after: %s", st.LastError)
	default:
		t.Error("Status never showed the retry")
	}
}

// TestInitdbIntoExistingEmptyDataDir: a pg/data that exists, empty (a
// mounted volume), is initialised in place, and the marker that guards
// an interrupted initdb there is gone once it completes.
func TestInitdbIntoExistingEmptyDataDir(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	lay := LayoutOf(dir)
	if err := os.MkdirAll(lay.Data, 0o755); err != nil { // lite makes it 0700, the server's
		t.Fatal(err)
	}
	l := newLite(t, dir, nil)
	exec1(t, provisionOK(t, l), "SELECT 1")
	if _, err := os.Stat(lay.initdbMarker()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker after a complete initdb: %v", err)
	}
}

// countingProbe is a Config.Probe that logs in as the DSN says, queries,
// and counts its calls and its refusals.
type countingProbe struct {
	calls, refused atomic.Int32
}

func (p *countingProbe) probe(ctx context.Context, dsn provision.DSN) (int, error) {
	p.calls.Add(1)
	conn, err := pgx.Connect(ctx, dsn.Secret())
	if err != nil {
		if refusedApp(err) {
			p.refused.Add(1)
		}
		return 0, err
	}
	defer conn.Close(ctx)
	var num int
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num)
	return num, err
}

// TestQuickStartChecksSuperuserLater: a warm start proves the server
// ready with the application's login (Config.Probe) and leaves the
// superuser's login to after the boot. A superuser password changed
// inside the cluster does not stop that start; the later check says so
// in the log, and the next start checks first, and fails as a first start
// would.
func TestQuickStartChecksSuperuserLater(t *testing.T) {
	t.Parallel()
	dir, _ := initialized(t)
	l := newLite(t, dir, nil)
	l.postgresDBDelay = time.Hour
	provisionOK(t, l)
	exec1(t, l.superDSN(), "ALTER ROLE postgres PASSWORD 'changed-inside'")
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var p countingProbe
	warm := newLite(t, dir, func(c *Config) { c.Probe = p.probe })
	dsn := provisionOK(t, warm)
	if n := p.calls.Load(); n != 1 {
		t.Errorf("probe called %d times, want 1", n)
	}
	exec1(t, dsn, "SELECT 1")
	testutil.Eventually(t, "the later check's warning", 30*time.Second, func() bool {
		return strings.Contains(warm.logs.String(), "the superuser's check of the cluster after the start failed")
	})
	testutil.Eventually(t, "the state file to ask for a full check", 10*time.Second, func() bool {
		st, err := readState(LayoutOf(dir).State)
		return err == nil && st.SuperPasswordMAC == ""
	})
	if err := warm.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	next := newLite(t, dir, func(c *Config) { c.Probe = p.probe })
	_, err := next.Provision(context.Background())
	if !status.IsAction(err) || !strings.Contains(err.Error(), "refused Uplink's password for role postgres") {
		t.Fatalf("Provision after the warning: %v; want the superuser's password refused", err)
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("probe called %d times in all, want 1: the last start should have checked as the superuser", n)
	}
}

// TestQuickStartRepairsRefusedRole: when the application role's password
// was changed inside the cluster, the probe is refused, and the start
// falls back to the superuser, who sets pg/password's again.
func TestQuickStartRepairsRefusedRole(t *testing.T) {
	t.Parallel()
	dir, _ := initialized(t)
	l := newLite(t, dir, nil)
	provisionOK(t, l)
	exec1(t, l.superDSN(), "ALTER ROLE uplink PASSWORD 'changed-inside'")
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var p countingProbe
	warm := newLite(t, dir, func(c *Config) { c.Probe = p.probe })
	dsn := provisionOK(t, warm)
	if c, r := p.calls.Load(), p.refused.Load(); c != 1 || r != 1 {
		t.Errorf("probe called %d times, refused %d; want 1 and 1", c, r)
	}
	if !hasStep(warm.steps(), StepCreateDatabase) {
		t.Errorf("steps %v: the role was not repaired", warm.steps())
	}
	exec1(t, dsn, "SELECT 1")
}
