// Package health serves Uplink's probe and status endpoints:
//
//	/livez    200 while the process's main loop turns; never touches the database
//	/readyz   200 only in phase ready; 503 naming the phase otherwise
//	/status   the status.Snapshot as JSON (never a secret)
//	/metrics  Prometheus metrics derived from the same snapshot
//
// It knows nothing of how the snapshot is made: boot implements Source.
package health

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uplinkhq/uplink/status"
)

// Source is what the endpoints read.
type Source interface {
	// Status returns the current snapshot without blocking on I/O.
	Status() status.Snapshot
	// Alive returns nil while the process's main loop is turning.
	Alive() error
}

// Handler returns the endpoints above on a fresh mux. Metrics go to a
// registry of their own, so that an app embedding Uplink keeps its default
// registry to itself; extra collectors (pool, queue) are added with reg.
func Handler(src Source, reg *prometheus.Registry) http.Handler {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newSnapshotCollector(src),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		if err := src.Alive(); err != nil {
			http.Error(w, "not alive: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		s := src.Status()
		if !s.Ready() {
			msg := "not ready: " + string(s.Phase)
			if s.Reason != "" {
				msg += ": " + s.Reason
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s := src.Status()
		// application/health+json is the media type of the health-check
		// draft whose pass/warn/fail vocabulary /status follows.
		w.Header().Set("Content-Type", "application/health+json")
		w.Header().Set("Cache-Control", "no-store")
		if !s.Ready() {
			// Load balancers that only look at the code get the same
			// answer as /readyz; scripts read the body either way.
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// Paths lists the endpoints Handler serves, so that an embedding app can
// route them to it ahead of its own handlers.
var Paths = []string{"/livez", "/readyz", "/status", "/metrics"}
