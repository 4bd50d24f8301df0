package lite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/pgtest"
)

// TestProvisionTiming measures cold and warm Provision against the floor:
// the same initdb and postgres, by hand, up to the first SELECT 1. It is a
// measurement, not a timed test: it fails only if something does not
// work, and runs only when asked (UPLINK_LITE_TIMING=rounds).
//
//	UPLINK_LITE_TIMING=5 go test -run TestProvisionTiming -v ./provision/lite/
func TestProvisionTiming(t *testing.T) {
	var rounds int
	if _, err := fmt.Sscan(os.Getenv("UPLINK_LITE_TIMING"), &rounds); err != nil || rounds < 1 {
		t.Skip("set UPLINK_LITE_TIMING=rounds to measure")
	}
	var coldFloor, warmFloor, cold, warm []time.Duration
	for range rounds {
		cf, wf := floor(t)
		coldFloor, warmFloor = append(coldFloor, cf), append(warmFloor, wf)

		dir := dataDir(t)
		l := newLite(t, dir, nil)
		began := time.Now()
		provisionOK(t, l)
		cold = append(cold, time.Since(began))
		l.Stop(context.Background())

		l = newLite(t, dir, nil)
		began = time.Now()
		provisionOK(t, l)
		warm = append(warm, time.Since(began))
		var steps []string
		for _, r := range l.Status().Data["steps"].([]StepRecord) {
			steps = append(steps, fmt.Sprintf("%s +%v", r.Step, r.At.Sub(began).Round(time.Millisecond)))
		}
		t.Logf("warm steps: %s", strings.Join(steps, ", "))
		l.Stop(context.Background())
	}
	t.Logf("median of %d: cold floor %v, cold Provision %v (%.2fx); warm floor %v, warm Provision %v (%.2fx)", rounds,
		median(coldFloor), median(cold), ratio(cold, coldFloor), median(warmFloor), median(warm), ratio(warm, warmFloor))
}

// floor runs initdb and postgres with Uplink's flags and no Uplink, and
// times the first SELECT 1 after each.
func floor(t *testing.T) (cold, warm time.Duration) {
	bin, user := pgtest.Binaries(t), pgtest.User(t)
	lay := LayoutOf(filepath.Join(pgtest.BaseDir(t), "floor"))
	for _, d := range []string{lay.Root, lay.PG, lay.Run} {
		os.Mkdir(d, 0o755)
		user.Chown(d)
	}
	const pw = "floor-password"
	pwfile := filepath.Join(lay.PG, "pw")
	os.WriteFile(pwfile, []byte(pw), 0o600)
	user.Chown(pwfile)
	port := pgtest.FreePort(t)
	dsn := socketDSN(lay.Run, port, superuser, pw, "postgres")

	run := func() time.Duration {
		began := time.Now()
		if _, err := os.Stat(lay.Data); err != nil {
			out, err := user.Command(context.Background(), bin.Path("initdb"), "-D", lay.Data, "-U", superuser, "--pwfile", pwfile,
				"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C").CombinedOutput()
			if err != nil {
				t.Fatalf("initdb: %v\n%s", err, out)
			}
		}
		cmd := user.Command(context.Background(), bin.Path("postgres"), serverArgs(lay, port)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := connect(ctx, dsn)
			if err == nil {
				_, err = conn.Exec(ctx, "SELECT 1")
				conn.Close(ctx)
			}
			cancel()
			if err == nil {
				break
			}
			if strings.Contains(err.Error(), "password") {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(began)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		return d
	}
	return run(), run()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func ratio(a, b []time.Duration) float64 { return float64(median(a)) / float64(median(b)) }
