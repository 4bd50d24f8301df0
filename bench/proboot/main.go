// Command proboot times a warm pro-mode boot: `uplink serve` with
// DATABASE_URL pointing at a database that is already migrated, from the
// exec to its "phase ready" log line. Two builds alternate run by run
// (-old, -new), so that both see the same machine; it prints the medians
// and their ratio.
//
//	proboot -old /tmp/uplink-before -new /tmp/uplink -url postgres://...
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/uplinkhq/uplink/bench/internal/stats"
)

func main() {
	oldBin := flag.String("old", "", "the uplink binary to compare against")
	newBin := flag.String("new", "", "the uplink binary under test")
	url := flag.String("url", "", "DATABASE_URL of a database both may migrate (the first runs do)")
	runs := flag.Int("runs", 15, "boots per binary")
	flag.Parse()
	if *oldBin == "" || *newBin == "" || *url == "" {
		log.Fatal("proboot: -old, -new and -url are required")
	}
	// A first boot of each migrates the database, and warms the page cache.
	for _, b := range []string{*oldBin, *newBin} {
		if _, err := boot(b, *url); err != nil {
			log.Fatal(err)
		}
	}
	var before, after stats.Sample
	for range *runs {
		for _, r := range []struct {
			bin string
			s   *stats.Sample
		}{{*oldBin, &before}, {*newBin, &after}} {
			d, err := boot(r.bin, *url)
			if err != nil {
				log.Fatal(err)
			}
			*r.s = append(*r.s, d)
		}
	}
	fmt.Printf("| build | warm pro boot to ready, median | min–max | runs |\n| --- | --- | --- | --- |\n")
	fmt.Printf("| %s | %s | %s | %d |\n", *oldBin, stats.Dur(before.Median()), before.Spread(), len(before))
	fmt.Printf("| %s | %s | %s | %d |\n", *newBin, stats.Dur(after.Median()), after.Spread(), len(after))
	fmt.Printf("\nnew / old: %.2f×\n", after.Ratio(before))
}

// boot runs bin serve in pro mode until it logs phase ready, then stops
// it with SIGTERM and waits for it to exit.
func boot(bin, url string) (time.Duration, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "UPLINK_MODE=pro", "DATABASE_URL="+url, "UPLINK_HTTP_ADDR=127.0.0.1:0",
		"UPLINK_LOG_FORMAT=json", "UPLINK_BACKUP_INTERVAL=off")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = cmd.Stdout
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(out)
	var d time.Duration
	var tail []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"phase":"ready"`) {
			d = time.Since(began)
			break
		}
		tail = append(tail, sc.Text())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if d == 0 {
		return 0, errors.New(bin + " exited before ready: " + fmt.Sprint(werr) + "\n" + strings.Join(tail, "\n"))
	}
	return d, nil
}
