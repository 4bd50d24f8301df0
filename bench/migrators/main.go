// Command migrators compares Uplink's migrator with goose v3,
// golang-migrate v4, tern v2 and a hand-written pgx floor, on one
// PostgreSQL server started for the purpose, with the same SQL for every
// tool (generated in each tool's file format):
//
//	(a) apply N migrations to an empty database;
//	(b) run again with all N applied;
//	(c) P processes at once on an empty database with M migrations, against
//	    one process with the same M; and the same P processes (and the one)
//	    again with nothing pending, which is the machine's cost of starting
//	    P processes that connect and find nothing to do.
//
// Every run is a migrun process on a fresh database. Rounds interleave
// the tools, rotating their order, so that load from neighbours spreads
// over all of them.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/bench/internal/machine"
	"github.com/uplinkhq/uplink/bench/internal/pgrun"
	"github.com/uplinkhq/uplink/bench/internal/stats"
)

var (
	migrunBin = flag.String("migrun", "", "the migrun binary (go build ./migrators/migrun)")
	count     = flag.Int("n", 1000, "(a), (b): migrations")
	rounds    = flag.Int("rounds", 7, "(a): runs per tool; (b) runs three times per (a)")
	concN     = flag.Int("conc-migrations", 200, "(c): migrations")
	concP     = flag.Int("procs", 20, "(c): processes at once")
	concR     = flag.Int("conc-rounds", 5, "(c): runs per tool, single and concurrent each")
	only      = flag.String("only", "abc", "which parts to run: any of a, b (needs a), c")
	keep      = flag.Bool("keep", false, "keep the server's directory")
	trace     = flag.Bool("trace", false, "only print the statements each tool sends for 3 migrations")
)

// tool is one migrator as migrun runs it, with the file format it reads.
type tool struct {
	name   string // shown in tables
	id     string // migrun -tool
	format string
	args   []string // extra migrun flags
	ref    bool     // a reference row, not one of the compared tools
}

var tools = []tool{
	{name: "floor (pgx loop: BEGIN, SQL, INSERT, COMMIT)", id: "floor", format: "plain"},
	{name: "uplink migrate", id: "uplink", format: "plain"},
	{name: "goose v3 (Provider, session locker)", id: "goose", format: "goose"},
	{name: "golang-migrate v4 (pgx/v5)", id: "golang-migrate", format: "golang-migrate"},
	{name: "tern v2", id: "tern", format: "tern"},
	{name: "floor, one round trip per migration (reference)", id: "floor-1rt", format: "plain", ref: true},
}

// concTools are the (c) contenders: goose twice, with its default lock
// retry period and with the shortest it allows; the floor with a blocking
// advisory lock.
var concTools = []tool{
	{name: "floor (pg_advisory_lock, then the loop)", id: "floor", format: "plain", args: []string{"-floor-lock"}},
	{name: "uplink migrate", id: "uplink", format: "plain"},
	{name: "goose v3, session locker, retry 5 s (default)", id: "goose", format: "goose", args: []string{"-goose-retry", "5"}},
	{name: "goose v3, session locker, retry 1 s (minimum)", id: "goose", format: "goose", args: []string{"-goose-retry", "1"}},
	{name: "golang-migrate v4 (pgx/v5)", id: "golang-migrate", format: "golang-migrate"},
	{name: "tern v2", id: "tern", format: "tern"},
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *migrunBin == "" {
		log.Fatal("migrators: -migrun is required")
	}
	base, err := pgrun.TempDir("uplink-migrators-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(base)
	}
	srv, err := startServer(base)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.stop()

	if *trace {
		runTrace(base, srv)
		return
	}
	load := machine.SampleLoad(5 * time.Second)
	fmt.Printf("### Migrators\n\nServer: %s, started for the benchmark with its defaults (fsync on, synchronous_commit on) but max_connections=200, trust authentication on 127.0.0.1 (so connection cost is not password hashing). Every run is a separate process on a fresh database; for (a) and (b) the time is measured inside the process, from before the files are read to after the connection is closed. \"paired\" is the median of the ratios of runs made side by side in the same round, steadier than the ratio of medians when the machine's load drifts. Migration *i* is `%s`, identical for every tool.\n\n",
		pgrun.Version(srv.binDir), sqlFor(1))
	if containsAny(*only, "ab") {
		runAB(base, srv)
	}
	if containsAny(*only, "c") {
		runC(base, srv)
	}
	fmt.Println("Load while measuring: " + load.Stop() + ".")
}

func containsAny(s, chars string) bool {
	for _, c := range chars {
		if bytes.ContainsRune([]byte(s), c) {
			return true
		}
	}
	return false
}

// runAB measures (a) and, on the database (a) leaves, (b).
func runAB(base string, srv *server) {
	dirs := writeFormats(filepath.Join(base, "ab"), *count)
	a := make([]stats.Sample, len(tools))
	b := make([]stats.Sample, len(tools))
	writesA := make([]int64, len(tools))
	writesB := make([]int64, len(tools))
	var loadB stats.Sample
	began := time.Now()
	for r := range *rounds {
		order := rotated(len(tools), r)
		for _, i := range order {
			t := tools[i]
			db := srv.createDB()
			res, err := migrun(t, dirs[t.format], srv.url(db))
			if err != nil {
				log.Fatalf("(a) %s: %v", t.name, err)
			}
			a[i] = append(a[i], res.Elapsed)
			writesA[i] = res.Writes
			if containsAny(*only, "b") {
				for range 3 {
					res, err := migrun(t, dirs[t.format], srv.url(db))
					if err != nil {
						log.Fatalf("(b) %s: %v", t.name, err)
					}
					b[i] = append(b[i], res.Elapsed)
					writesB[i] = res.Writes
					if t.id == "uplink" {
						loadB = append(loadB, res.Load)
					}
				}
			}
			srv.dropDB(db)
		}
		fmt.Fprintf(os.Stderr, "migrators: (a)/(b) round %d/%d done (%s)\n", r+1, *rounds, time.Since(began).Round(time.Second))
	}
	fmt.Printf("#### (a) %d migrations on an empty database (%d runs each)\n\n", *count, *rounds)
	t := stats.Table{Head: []string{"tool", "median", "min–max", "× floor", "paired", "per migration", "client writes per migration"}}
	for i, tl := range tools {
		t.Add(tl.name, stats.Dur(a[i].Median()), a[i].Spread(), fmt.Sprintf("%.2f×", a[i].Ratio(a[0])), fmt.Sprintf("%.2f×", stats.PairedRatio(a[i], a[0])),
			stats.Dur(a[i].Median()/time.Duration(*count)), fmt.Sprintf("%.1f", float64(writesA[i])/float64(*count)))
	}
	fmt.Print(t.String())
	fmt.Println()
	verdict("(a) uplink", a[1], a[0], 1.0, "the floor")
	fmt.Println()
	if !containsAny(*only, "b") {
		return
	}
	fmt.Printf("#### (b) %d migrations, all applied already (%d runs each)\n\n", *count, 3**rounds)
	t = stats.Table{Head: []string{"tool", "median", "min–max", "× floor", "paired", "client writes"}}
	for i, tl := range tools {
		if tl.ref {
			continue // the same check as the floor's
		}
		t.Add(tl.name, stats.Dur(b[i].Median()), b[i].Spread(), fmt.Sprintf("%.2f×", b[i].Ratio(b[0])), fmt.Sprintf("%.2f×", stats.PairedRatio(b[i], b[0])), fmt.Sprint(writesB[i]))
	}
	fmt.Print(t.String())
	fmt.Println()
	fmt.Printf("Uplink's migrate.Load (list the %d files and check their names; Up reads and checksums them while it connects) took %s of its median (b) run.\n\n", *count, stats.Dur(loadB.Median()))
	verdict("(b) uplink", b[1], b[0], 1.5, "the floor")
	fmt.Println()
}

// runC measures one process against P at once, per tool.
func runC(base string, srv *server) {
	dirs := writeFormats(filepath.Join(base, "c"), *concN)
	// single and many: on an empty database; idle1 and idleP: the same
	// processes again right after, with nothing pending, which is what
	// starting them, connecting and finding nothing to do costs.
	single := make([]stats.Sample, len(concTools))
	many := make([]stats.Sample, len(concTools))
	idle1 := make([]stats.Sample, len(concTools))
	idleP := make([]stats.Sample, len(concTools))
	began := time.Now()
	for r := range *concR {
		for _, i := range rotated(len(concTools), r) {
			t := concTools[i]
			for _, procs := range []int{1, *concP} {
				db := srv.createDB()
				d, err := migrunMany(t, dirs[t.format], srv.url(db), procs)
				if err == nil {
					err = srv.checkTables(db, *concN)
				}
				var idle time.Duration
				if err == nil {
					idle, err = migrunMany(t, dirs[t.format], srv.url(db), procs)
				}
				if err != nil {
					log.Fatalf("(c) %s, %d processes: %v", t.name, procs, err)
				}
				if procs == 1 {
					single[i], idle1[i] = append(single[i], d), append(idle1[i], idle)
				} else {
					many[i], idleP[i] = append(many[i], d), append(idleP[i], idle)
				}
				srv.dropDB(db)
			}
		}
		fmt.Fprintf(os.Stderr, "migrators: (c) round %d/%d done (%s)\n", r+1, *concR, time.Since(began).Round(time.Second))
	}
	fmt.Printf("#### (c) %d processes at once, %d migrations, against one process (%d runs each; wall time from starting the processes until the last exits; every process exits 0 and each table exists once)\n\n", *concP, *concN, *concR)
	t := stats.Table{Head: []string{"tool", "1 process median", "min–max", fmt.Sprintf("%d processes median", *concP), "min–max", "× 1 process", "paired",
		fmt.Sprintf("1 / %d processes, nothing pending", *concP), "× 1 process, beyond starting them"}}
	beyond := make([]stats.Sample, len(concTools))
	for i, tl := range concTools {
		beyond[i] = beyondStart(many[i], idleP[i], idle1[i])
		t.Add(tl.name, stats.Dur(single[i].Median()), single[i].Spread(), stats.Dur(many[i].Median()), many[i].Spread(),
			fmt.Sprintf("%.2f×", many[i].Ratio(single[i])), fmt.Sprintf("%.2f×", stats.PairedRatio(many[i], single[i])),
			stats.Dur(idle1[i].Median())+" / "+stats.Dur(idleP[i].Median()), fmt.Sprintf("%.2f×", beyond[i].Ratio(single[i])))
	}
	fmt.Print(t.String())
	fmt.Println()
	fmt.Printf("\"Nothing pending\" is the same processes run again on the migrated database: starting %d processes, each connecting and finding nothing to do. \"Beyond starting them\" is the %d-process time with that cost replaced by one process's (%d at once − %d idle + 1 idle), against one process: what the lock and the waiting add.\n\n", *concP, *concP, *concP, *concP)
	verdict("(c) uplink", many[1], single[1], 1.3, "one process")
	verdict("(c) uplink, beyond starting the processes", beyond[1], single[1], 1.3, "one process")
	fmt.Println()
}

// beyondStart is, run by run, many − idleP + idle1: the P-process time
// with the cost of starting P processes that find nothing to do replaced
// by the cost of one.
func beyondStart(many, idleP, idle1 stats.Sample) stats.Sample {
	out := make(stats.Sample, len(many))
	for k := range many {
		out[k] = many[k] - idleP[k] + idle1[k]
	}
	return out
}

// verdict says whether s meets target × base by both the ratio of
// medians and the paired ratio.
func verdict(what string, s, base stats.Sample, target float64, of string) {
	got, paired := s.Ratio(base), stats.PairedRatio(s, base)
	ok := "met"
	if got > target || paired > target {
		ok = "MISSED"
	}
	fmt.Printf("- %s: %.2f× %s (paired %.2f×), target ≤ %.2f× — %s\n", what, got, of, paired, target, ok)
}

func rotated(n, r int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = (i + r) % n
	}
	return idx
}

// result is migrun's JSON line.
type result struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Writes  int64         `json:"writes"`
	Load    time.Duration `json:"load_ns"`
}

func migrun(t tool, dir, url string) (result, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(*migrunBin, append([]string{"-tool", t.id, "-dir", dir, "-dsn", url}, t.args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%v: %s", err, errb.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return result{}, fmt.Errorf("migrun output %q: %w", out.String(), err)
	}
	return res, nil
}

// migrunMany starts procs migrun processes at once and returns the wall
// time until the last has exited; any failure fails the run.
func migrunMany(t tool, dir, url string, procs int) (time.Duration, error) {
	cmds := make([]*exec.Cmd, procs)
	errs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = exec.Command(*migrunBin, append([]string{"-tool", t.id, "-dir", dir, "-dsn", url}, t.args...)...)
		errs[i] = &bytes.Buffer{}
		cmds[i].Stderr = errs[i]
	}
	began := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			return 0, err
		}
	}
	var failed error
	for i, c := range cmds {
		if err := c.Wait(); err != nil && failed == nil {
			failed = fmt.Errorf("process %d: %v: %s", i, err, errs[i].String())
		}
	}
	return time.Since(began), failed
}

// sqlFor is migration i's up SQL, the same for every tool.
func sqlFor(i int) string {
	return fmt.Sprintf("CREATE TABLE t%d (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());", i)
}

// writeFormats writes n migrations in each tool's format and returns the
// directory of each format.
func writeFormats(root string, n int) map[string]string {
	dirs := map[string]string{}
	for _, f := range []string{"plain", "goose", "golang-migrate", "tern"} {
		dir := filepath.Join(root, f)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
		dirs[f] = dir
		for i := 1; i <= n; i++ {
			up, down := sqlFor(i), fmt.Sprintf("DROP TABLE t%d;", i)
			name := fmt.Sprintf("%04d_t%d", i, i)
			files := map[string]string{}
			switch f {
			case "plain": // Uplink's plain format: the whole file is up
				files[name+".sql"] = up + "\n"
			case "goose":
				files[name+".sql"] = "-- +goose Up\n" + up + "\n\n-- +goose Down\n" + down + "\n"
			case "golang-migrate":
				files[name+".up.sql"] = up + "\n"
				files[name+".down.sql"] = down + "\n"
			case "tern":
				files[name+".sql"] = up + "\n\n---- create above / drop below ----\n\n" + down + "\n"
			}
			for file, body := range files {
				if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	return dirs
}

// server is the PostgreSQL all tools run against.
type server struct {
	binDir  string
	logPath string
	port    int
	cmd     *exec.Cmd
	seq     int
}

func startServer(base string) (*server, error) {
	binDir, err := pgrun.BinDir()
	if err != nil {
		return nil, err
	}
	user, err := pgrun.ServerUser()
	if err != nil {
		return nil, err
	}
	data, run := filepath.Join(base, "data"), filepath.Join(base, "run")
	for _, d := range []string{data, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
		if err := user.Chown(d); err != nil {
			return nil, err
		}
	}
	if out, err := user.Command(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := pgrun.FreePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(base, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := user.Command(filepath.Join(binDir, "postgres"), "-D", data, "-p", fmt.Sprint(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+run, "-c", "max_connections=200",
		"-c", "log_line_prefix=%m [%p] %d ")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{binDir: binDir, logPath: logPath, port: port, cmd: cmd}
	if err := pgrun.WaitSQL(s.url("postgres"), 10*time.Millisecond, time.Minute); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) stop() { pgrun.Stop(s.cmd, syscall.SIGINT, time.Minute) }

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *server) admin(sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		log.Fatalf("%s: %v", sql, err)
	}
}

func (s *server) createDB() string {
	s.seq++
	name := fmt.Sprintf("bench_%d", s.seq)
	s.admin("CREATE DATABASE " + name)
	return name
}

func (s *server) dropDB(name string) { s.admin("DROP DATABASE " + name) }

// checkTables confirms that t1..tn exist, each once: with a tool that ran
// a migration twice the second CREATE TABLE would have failed its process.
func (s *server) checkTables(db string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var got int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'`).Scan(&got)
	if err == nil && got != n {
		err = fmt.Errorf("%d tables t1..t%d, want %d", got, n, n)
	}
	return err
}
