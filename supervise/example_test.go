package supervise_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/uplinkhq/uplink/supervise"
)

// step is a service that says when it starts and stops.
type step string

func (s step) Name() string { return string(s) }

func (s step) Start(context.Context) error {
	fmt.Println("start", s)
	return nil
}

func (s step) Stop(context.Context) error {
	fmt.Println("stop", s)
	return nil
}

// The pool starts first and stops last, so the job client and the app can
// use it for as long as they run.
func Example() {
	sup, err := supervise.New(supervise.Config{Logger: slog.New(slog.DiscardHandler)},
		step("pool"), step("jobs"), step("app"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := sup.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("jobs:", sup.Checks()["jobs"].Data["state"])
	if err := sup.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// start pool
	// start jobs
	// start app
	// jobs: running
	// stop app
	// stop jobs
	// stop pool
}
