// Command liteboot times lite mode's boot: from process start to the
// first moment the database is usable, for a cold boot (empty data
// directory: initdb and all) and a warm boot (the cluster exists).
//
// Three contenders, on the same PostgreSQL binaries:
//
//   - floor: initdb and postgres run by hand with exactly the flags
//     provision/lite uses, done at the first SELECT 1 over the socket;
//   - uplink: the real `uplink serve` binary, done at /readyz 200;
//   - embedded-postgres: github.com/fergusstrange/embedded-postgres via
//     epghelper, done when Start returns (after its own SELECT 1).
//
// Rounds interleave the contenders, rotating their order, so that a burst
// of load from a neighbour spreads over all of them instead of one.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/uplinkhq/uplink/bench/internal/machine"
	"github.com/uplinkhq/uplink/bench/internal/pgrun"
	"github.com/uplinkhq/uplink/bench/internal/stats"
)

var (
	uplinkBin = flag.String("uplink", "", "the uplink binary to time (go build ./cmd/uplink)")
	epgBin    = flag.String("epg", "", "the epghelper binary (go build ./liteboot/epghelper)")
	rounds    = flag.Int("cold", 9, "cold boots per contender (one per round)")
	warmEach  = flag.Int("warm", 3, "warm boots per contender after each cold one")
	poll      = flag.Duration("poll", 2*time.Millisecond, "retry interval once a contender says it is ready (floor: SELECT 1; uplink: /readyz)")
	keep      = flag.Bool("keep", false, "keep the data directories (for a post-mortem)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *uplinkBin == "" || *epgBin == "" {
		log.Fatal("liteboot: -uplink and -epg are required")
	}
	binDir, err := pgrun.BinDir()
	if err != nil {
		log.Fatal(err)
	}
	user, err := pgrun.ServerUser()
	if err != nil {
		log.Fatal(err)
	}
	base, err := pgrun.TempDir("uplink-liteboot-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(base)
	}

	ur := &uplinkRun{bin: *uplinkBin}
	var floorInitdb stats.Sample
	contenders := []*contender{
		{name: "floor (initdb + postgres + SELECT 1 by hand)", run: floor{binDir: binDir, user: user, initdb: &floorInitdb}.run},
		{name: "uplink serve → /readyz 200", run: ur.run},
		{name: "embedded-postgres (same binaries)", run: epg{helper: *epgBin, binDir: binDir, user: user}.run},
	}
	up := contenders[1]

	load := machine.SampleLoad(5 * time.Second)
	began := time.Now()
	for r := range *rounds {
		order := slices.Clone(contenders)
		rotate(order, r)
		for i, c := range order {
			dir := filepath.Join(base, fmt.Sprintf("r%d-%d", r, i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				log.Fatal(err)
			}
			d, err := c.run(dir, true)
			if err != nil {
				log.Fatalf("%s, cold, round %d: %v", c.name, r+1, err)
			}
			c.cold = append(c.cold, d)
			for range *warmEach {
				d, err := c.run(dir, false)
				if err != nil {
					log.Fatalf("%s, warm, round %d: %v", c.name, r+1, err)
				}
				c.warm = append(c.warm, d)
			}
			if !*keep {
				os.RemoveAll(dir)
			}
		}
		fmt.Fprintf(os.Stderr, "liteboot: round %d/%d done (%s)\n", r+1, *rounds, time.Since(began).Round(time.Second))
	}
	loadSummary := load.Stop()

	fmt.Println("### Lite boot: process start → database usable")
	fmt.Println()
	fmt.Printf("PostgreSQL: %s (%s). %d cold boots and %d warm boots per contender, interleaved. The floor connects once postgres logs \"ready to accept connections\"; Uplink's readiness is its \"phase ready\" log line confirmed by /readyz 200 (retries every %s), so that no contender is slowed by its own polling.\n\n",
		pgrun.Version(binDir), binDir, *rounds, *rounds**warmEach, *poll)
	floorC := contenders[0]
	fmt.Println("Ratios: \"× floor\" divides the medians; \"paired\" is the median of the ratios of runs made side by side in the same round, which a change in the machine's load between rounds disturbs less.")
	fmt.Println()
	t := stats.Table{Head: []string{"contender", "cold median", "cold min–max", "cold × floor", "cold paired", "warm median", "warm min–max", "warm × floor", "warm paired"}}
	row := func(name string, cold, warm stats.Sample) {
		t.Add(name, stats.Dur(cold.Median()), cold.Spread(), fmt.Sprintf("%.2f×", cold.Ratio(floorC.cold)), fmt.Sprintf("%.2f×", stats.PairedRatio(cold, floorC.cold)),
			stats.Dur(warm.Median()), warm.Spread(), fmt.Sprintf("%.2f×", warm.Ratio(floorC.warm)), fmt.Sprintf("%.2f×", stats.PairedRatio(warm, floorC.warm)))
	}
	for _, c := range contenders {
		row(c.name, c.cold, c.warm)
	}
	// Provision alone: what provision/lite adds to the floor, before
	// boot's own migrations and services.
	var provCold, provWarm stats.Sample
	for _, p := range ur.profiles {
		if p.cold {
			provCold = append(provCold, p.provisioned)
		} else {
			provWarm = append(provWarm, p.provisioned)
		}
	}
	if len(provCold) == len(floorC.cold) && len(provWarm) == len(floorC.warm) {
		row("uplink, provisioning only (start → database step ready, from /status)", provCold, provWarm)
	}
	fmt.Print(t.String())
	fmt.Println()
	verdict := func(what string, s, floor stats.Sample, target float64) {
		got, paired := s.Ratio(floor), stats.PairedRatio(s, floor)
		ok := "met"
		if got > target || paired > target {
			ok = "MISSED"
		}
		fmt.Printf("- %s: %.2f× the floor (paired %.2f×), target ≤ %.2f× — %s\n", what, got, paired, target, ok)
	}
	verdict("cold, uplink serve to /readyz 200", up.cold, floorC.cold, 1.05)
	verdict("warm, uplink serve to /readyz 200", up.warm, floorC.warm, 1.3)
	if len(provCold) == len(floorC.cold) && len(provWarm) == len(floorC.warm) {
		verdict("cold, provisioning only", provCold, floorC.cold, 1.05)
		verdict("warm, provisioning only", provWarm, floorC.warm, 1.3)
	}
	fmt.Println()
	fmt.Printf("The floor's initdb alone: median %s (%s) over %d cold runs; compare uplink's \"step initdb\" segment below.\n\n",
		stats.Dur(floorInitdb.Median()), floorInitdb.Spread(), len(floorInitdb))
	printProfile(ur.profiles)
	fmt.Println()
	fmt.Println("Load while measuring: " + loadSummary + ".")
}

// contender is one way to boot, with its timings.
type contender struct {
	name       string
	run        func(dir string, cold bool) (time.Duration, error)
	cold, warm stats.Sample
}

func rotate[T any](s []T, n int) {
	n %= len(s)
	tmp := slices.Clone(s)
	copy(s, tmp[n:])
	copy(s[len(s)-n:], tmp[:n])
}

// floor boots PostgreSQL the way provision/lite does, with nothing else:
// initdb with Uplink's flags, postgres with Uplink's settings, both as the
// postgres user, done at the first SELECT 1 over the unix socket with the
// scram password.
type floor struct {
	binDir string
	user   *pgrun.User
	initdb *stats.Sample // how long each cold run's initdb took
}

const floorPassword = "floor-password"

func (f floor) run(dir string, cold bool) (time.Duration, error) {
	pg := filepath.Join(dir, "pg")
	data, run, pwfile := filepath.Join(pg, "data"), filepath.Join(pg, "run"), filepath.Join(pg, "pwfile")
	if cold {
		if err := os.Mkdir(pg, 0o755); err != nil {
			return 0, err
		}
		if err := os.Mkdir(run, 0o700); err != nil {
			return 0, err
		}
		if err := os.WriteFile(pwfile, []byte(floorPassword+"\n"), 0o600); err != nil {
			return 0, err
		}
		for _, p := range []string{pg, run, pwfile} {
			if err := f.user.Chown(p); err != nil {
				return 0, err
			}
		}
	}
	port, err := pgrun.FreePort()
	if err != nil {
		return 0, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "floor-postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	serverOut, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer serverOut.Close()

	began := time.Now()
	if cold {
		// provision/lite's initdb, flag for flag (lite.go: initdb).
		out, err := f.user.Command(filepath.Join(f.binDir, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
			"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C").CombinedOutput()
		if err != nil {
			w.Close()
			return 0, fmt.Errorf("initdb: %v: %s", err, out)
		}
		*f.initdb = append(*f.initdb, time.Since(began))
	}
	// provision/lite's serverArgs (postmaster.go), setting for setting.
	cmd := f.user.Command(filepath.Join(f.binDir, "postgres"),
		"-D", data,
		"-p", fmt.Sprint(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+run,
		"-c", "fsync=on",
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
		"-c", "log_line_prefix=%m [%p] ",
		"-c", "lc_messages=C",
		"-c", "cluster_name=uplink")
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, err
	}
	// Like provision/lite, connect once the server says it is ready:
	// connecting earlier only makes the postmaster fork backends that
	// answer "starting up", which slows the start being timed.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(serverOut)
		seen := false
		for sc.Scan() {
			logFile.Write(append(sc.Bytes(), '\n'))
			if !seen && strings.Contains(sc.Text(), "ready to accept connections") {
				seen = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
	}
	dsn := fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=template1 sslmode=disable", run, port, floorPassword)
	err = pgrun.WaitSQL(dsn, *poll, time.Minute)
	d := time.Since(began)
	if stopErr := pgrun.Stop(cmd, syscall.SIGINT, time.Minute); err == nil && stopErr != nil && !isSignalExit(stopErr) {
		err = stopErr
	}
	return d, err
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// uplinkRun boots `uplink serve` in lite mode and keeps, per run, where
// the time went according to its own /status.
type uplinkRun struct {
	bin      string
	profiles []profile // in run order: cold, warm..., cold, warm...
}

func (u *uplinkRun) run(dir string, cold bool) (time.Duration, error) {
	port, err := pgrun.FreePort()
	if err != nil {
		return 0, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logFile, err := os.OpenFile(filepath.Join(dir, "uplink.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(u.bin, "serve")
	cmd.Env = append(withoutEnv(os.Environ(), "DATABASE_URL", "UPLINK_"),
		"UPLINK_MODE=lite", "UPLINK_DATA_DIR="+filepath.Join(dir, "uplink"), "UPLINK_HTTP_ADDR="+addr,
		"UPLINK_PG_INSTALL=never", "UPLINK_LOG_FORMAT=json")
	// An os.Pipe rather than StdoutPipe: Wait runs beside the reader.
	stdout, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer stdout.Close()
	cmd.Stdout, cmd.Stderr = w, logFile

	client := &http.Client{Timeout: 5 * time.Second}
	readyz := func() bool {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	began := time.Now()
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, err
	}
	// Readiness is taken from Uplink's own "phase ready" log line, then
	// confirmed on /readyz: polling /readyz every few milliseconds would
	// load the two cores that initdb and postgres need, and so slow down
	// the very boot being timed. A slow poll stays as a fallback.
	logged := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			logFile.Write(append(sc.Bytes(), '\n'))
			if !seen && strings.Contains(sc.Text(), `"msg":"phase ready"`) {
				seen = true
				close(logged)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var d time.Duration
	pace := 50 * time.Millisecond
	for {
		select {
		case <-logged:
			logged, pace = nil, *poll
		case err := <-exited:
			return 0, fmt.Errorf("uplink exited before ready: %v (see %s)", err, logFile.Name())
		case <-time.After(pace):
		}
		if readyz() {
			d = time.Since(began)
			break
		}
		if time.Since(began) > 2*time.Minute {
			cmd.Process.Kill()
			return 0, fmt.Errorf("uplink not ready within 2 minutes (see %s)", logFile.Name())
		}
	}
	p, perr := fetchProfile(client, addr, began, d, cold)
	if perr == nil {
		u.profiles = append(u.profiles, p)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return d, fmt.Errorf("uplink serve exited with %v after SIGTERM (see %s)", err, logFile.Name())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-exited
		return d, errors.New("uplink serve did not stop within a minute of SIGTERM")
	}
	return d, perr
}

func withoutEnv(env []string, prefixes ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
		return false
	})
}

// epg boots through embedded-postgres, run as the postgres user.
type epg struct {
	helper, binDir string
	user           *pgrun.User
}

func (e epg) run(dir string, cold bool) (time.Duration, error) {
	root := filepath.Join(dir, "epg")
	if cold {
		if err := os.Mkdir(root, 0o755); err != nil {
			return 0, err
		}
		if err := e.user.Chown(root); err != nil {
			return 0, err
		}
	}
	sock := filepath.Join(root, "run")
	if err := os.MkdirAll(sock, 0o700); err != nil {
		return 0, err
	}
	if err := e.user.Chown(sock); err != nil {
		return 0, err
	}
	port, err := pgrun.FreePort()
	if err != nil {
		return 0, err
	}
	major := filepath.Base(filepath.Dir(e.binDir))
	cmd := e.user.Command(e.helper, "-binaries", filepath.Dir(e.binDir), "-major", major,
		"-runtime", filepath.Join(root, "runtime"), "-data", filepath.Join(root, "data"),
		"-socket", sock, "-port", fmt.Sprint(port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr

	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	d := time.Since(began)
	stdin.Close()
	err = cmd.Wait()
	if strings.TrimSpace(line) != "ready" || err != nil {
		return 0, fmt.Errorf("epghelper: %v: %s", err, stderr.String())
	}
	return d, nil
}

// profile splits one uplink boot into segments, from the timestamps in
// its /status (the database check's steps and the phase transitions).
type profile struct {
	cold        bool
	provisioned time.Duration // until the database check's step ready
	segments    []segment
}

type segment struct {
	name string
	d    time.Duration
}

type statusDoc struct {
	Transitions []struct {
		Phase string    `json:"phase"`
		At    time.Time `json:"at"`
	} `json:"transitions"`
	Checks map[string]struct {
		Data struct {
			Steps []struct {
				Step string    `json:"step"`
				At   time.Time `json:"at"`
			} `json:"steps"`
		} `json:"data"`
	} `json:"checks"`
}

func fetchProfile(client *http.Client, addr string, began time.Time, total time.Duration, cold bool) (profile, error) {
	resp, err := client.Get("http://" + addr + "/status")
	if err != nil {
		return profile{}, err
	}
	defer resp.Body.Close()
	var doc statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return profile{}, fmt.Errorf("decode /status: %w", err)
	}
	// Marks in time order: the provisioner's steps, then boot's phases
	// after provisioning.
	type mark struct {
		name string
		at   time.Time
	}
	marks := []mark{{"exec → first step (process start, config)", began}}
	p := profile{cold: cold}
	for _, s := range doc.Checks["database"].Data.Steps {
		marks = append(marks, mark{"step " + s.Step, s.At})
		if s.Step == "ready" && p.provisioned == 0 {
			p.provisioned = s.At.Sub(began)
		}
	}
	for _, tr := range doc.Transitions {
		if tr.Phase != "provisioning" {
			marks = append(marks, mark{"phase " + tr.Phase, tr.At})
		}
	}
	slices.SortStableFunc(marks, func(a, b mark) int { return a.at.Compare(b.at) })
	for i := range marks {
		end := began.Add(total)
		if i+1 < len(marks) {
			end = marks[i+1].at
		}
		name := marks[i].name
		if i == len(marks)-1 {
			name += " → /readyz 200 seen"
		}
		p.segments = append(p.segments, segment{name, end.Sub(marks[i].at)})
	}
	return p, nil
}

// printProfile prints the median of each segment, cold and warm apart.
func printProfile(profiles []profile) {
	for _, cold := range []bool{true, false} {
		what := "warm"
		if cold {
			what = "cold"
		}
		order := []string{}
		bySeg := map[string]stats.Sample{}
		n := 0
		for _, p := range profiles {
			if p.cold != cold {
				continue
			}
			n++
			for _, s := range p.segments {
				if _, ok := bySeg[s.name]; !ok {
					order = append(order, s.name)
				}
				bySeg[s.name] = append(bySeg[s.name], s.d)
			}
		}
		fmt.Printf("Where uplink's %s boot goes (median over %d runs, from its /status timestamps; each segment runs until the next mark):\n\n", what, n)
		t := stats.Table{Head: []string{"segment (starts at)", "median", "min–max", "runs"}}
		for _, name := range order {
			s := bySeg[name]
			t.Add(name, stats.Dur(s.Median()), s.Spread(), fmt.Sprint(len(s)))
		}
		fmt.Print(t.String())
		fmt.Println()
	}
}
