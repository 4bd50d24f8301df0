package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/status"
)

func init() {
	register(command{name: "status", order: 20, summary: "show a running uplink's status (exit 0 only when ready)", run: runStatus})
}

func runStatus(ctx context.Context, env *Env, args []string) int {
	f := newFlags("status", "status [--http ADDR] [--json] [--timeout D]", env)
	addr := f.String("http", boot.DefaultHTTPAddr, "address of the running uplink (UPLINK_HTTP_ADDR)")
	asJSON := f.Bool("json", false, "print /status as JSON, for scripts")
	timeout := f.Duration("timeout", 5*time.Second, "give up after this long")
	if done, code := f.parseWithEnv(args); done {
		return code
	}
	if done, code := f.noArgs(); done {
		return code
	}
	url := statusURL(*addr)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return f.failCode(exitUsage, err.Error())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "uplink status: no uplink answers at %s: %v\nhint: is 'uplink serve' running? point --http or UPLINK_HTTP_ADDR at its address\n", url, err)
		return exitNoServer
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(env.Stderr, "uplink status: reading %s: %v\n", url, err)
		return exitNoServer
	}
	var s status.Snapshot
	if err := json.Unmarshal(body, &s); err != nil || s.Phase == "" {
		fmt.Fprintf(env.Stderr, "uplink status: %s did not answer with an uplink status (HTTP %d)\n", url, resp.StatusCode)
		return exitNoServer
	}
	if *asJSON {
		env.Stdout.Write(body)
	} else {
		printStatus(env.Stdout, url, s, time.Now())
	}
	if !s.Ready() {
		return exitFailure
	}
	return exitOK
}

// failCode reports a mistake like fail, with another exit code.
func (f *flags) failCode(code int, msg string) int {
	fmt.Fprintf(f.env.Stderr, "uplink %s: %s\n", f.Name(), msg)
	return code
}

// statusURL accepts what people type: host:port, :port, or a full URL.
func statusURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/") + "/status"
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr + "/status"
}

// printStatus writes the human summary: one line for the process, one per
// check, and what to do when something needs a person.
func printStatus(w io.Writer, url string, s status.Snapshot, now time.Time) {
	fmt.Fprintf(w, "%s: %s (%s) for %s — mode %s, version %s\n",
		strings.TrimSuffix(url, "/status"), s.Phase, s.Status, ago(now, s.Since), orDash(s.Mode), s.Version)
	if s.Reason != "" {
		fmt.Fprintf(w, "  why:  %s\n", s.Reason)
	}
	if s.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", s.Hint)
	}
	names := make([]string, 0, len(s.Checks))
	for n := range s.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, n := range names {
		c := s.Checks[n]
		line := fmt.Sprintf("  %s\t%s\t%s", n, c.Status, c.Detail)
		if c.LastError != "" && c.Status != status.Pass {
			line += " — last error: " + c.LastError
		}
		if !c.NextRetry.IsZero() && c.Status != status.Pass {
			line += fmt.Sprintf(" (attempt %d, next try in %s)", c.Attempts, c.NextRetry.Sub(now).Round(time.Second))
		}
		if c.Hint != "" {
			line += " — hint: " + c.Hint
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
