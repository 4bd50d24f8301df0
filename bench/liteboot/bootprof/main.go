// Command bootprof boots lite mode in-process, through the same public
// boot API that cmd/uplink uses, and records a CPU profile and an
// execution trace from the start until phase ready. It is the tool for
// finding where a boot's time goes when liteboot says it is slow:
//
//	bootprof -data /tmp/x -cpuprofile cpu.out -trace trace.out   # cold
//	bootprof -data /tmp/x -cpuprofile cpu.out -trace trace.out   # warm
//	go tool pprof -top cpu.out
//	go tool trace -pprof=net trace.out > net.out && go tool pprof -top net.out
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/status"
)

func main() {
	dataDir := flag.String("data", "", "UPLINK_DATA_DIR (empty for a cold boot, existing for a warm one)")
	cpuOut := flag.String("cpuprofile", "", "CPU profile output")
	traceOut := flag.String("trace", "", "execution trace output")
	logOut := flag.String("log", "", "Uplink's JSON log (default: discarded)")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("bootprof: -data is required")
	}
	logger := slog.New(slog.DiscardHandler)
	if *logOut != "" {
		f, err := os.Create(*logOut)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		logger = slog.New(slog.NewJSONHandler(f, nil))
	}
	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err != nil {
			log.Fatal(err)
		}
		trace.Start(f)
	}

	began := time.Now()
	app, err := boot.New(boot.Config{Mode: "lite", DataDir: *dataDir, HTTPAddr: "127.0.0.1:0", PGInstall: "never", Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	for app.Phase() != status.PhaseReady {
		if p := app.Phase(); p == status.PhaseError {
			log.Fatalf("bootprof: phase error: %+v", app.Status())
		}
		time.Sleep(time.Millisecond)
	}
	d := time.Since(began)
	trace.Stop()
	pprof.StopCPUProfile()
	fmt.Printf("ready after %s\n", d.Round(time.Microsecond))
	for _, tr := range app.Status().Transitions {
		fmt.Printf("  %-12s +%s\n", tr.Phase, tr.At.Sub(began).Round(time.Microsecond))
	}
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}
