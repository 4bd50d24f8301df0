package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/uplinkhq/uplink/boot"
)

func init() {
	register(command{name: "version", order: 90, summary: "print the version", run: runVersion})
}

func runVersion(ctx context.Context, env *Env, args []string) int {
	f := newFlags("version", "version", env)
	if done, code := f.parse(args); done {
		return code
	}
	if done, code := f.noArgs(); done {
		return code
	}
	fmt.Fprintf(env.Stdout, "uplink %s (%s %s/%s)\n", boot.Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
