package boot

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// Check names of the services' own numbers in /status.
const (
	checkPool  = "pool"
	checkQueue = "queues"
)

// serviceChecks adds what the running services report to a /status
// snapshot: the pool's statistics and the job queue's depth. Both are read
// from memory (pgxpool's counters, the last count of the queue), so
// /status answers even while the database does not.
func (a *App) serviceChecks(checks map[string]status.Check) {
	if pool := a.Pool(); pool != nil {
		checks[checkPool] = poolCheck(pool.Stat())
	}
	checks[checkQueue] = a.jobs.Check()
}

func poolCheck(st *pgxpool.Stat) status.Check {
	return status.Check{
		Status: status.Pass,
		Detail: fmt.Sprintf("%d of %d connections in use, %d idle", st.AcquiredConns(), st.MaxConns(), st.IdleConns()),
		Data: map[string]any{
			"total_conns":              st.TotalConns(),
			"acquired_conns":           st.AcquiredConns(),
			"idle_conns":               st.IdleConns(),
			"constructing_conns":       st.ConstructingConns(),
			"max_conns":                st.MaxConns(),
			"acquire_count":            st.AcquireCount(),
			"acquire_duration_seconds": st.AcquireDuration().Seconds(),
			"empty_acquire_count":      st.EmptyAcquireCount(),
			"canceled_acquire_count":   st.CanceledAcquireCount(),
			"new_conns_count":          st.NewConnsCount(),
			"max_lifetime_destroy":     st.MaxLifetimeDestroyCount(),
			"max_idle_destroy":         st.MaxIdleDestroyCount(),
		},
	}
}

// collectors export to /metrics what serviceChecks and the services check
// show in /status, read at scrape time from the same sources.
func (a *App) collectors() []prometheus.Collector {
	return []prometheus.Collector{&servicesCollector{app: a, desc: newServiceDescs()}, a.jobs.Collector()}
}

type serviceDescs struct {
	state, restarts                   *prometheus.Desc
	conns, maxConns                   *prometheus.Desc
	acquires, acquireWait, emptyWaits *prometheus.Desc
	canceled, newConns, destroyed     *prometheus.Desc
}

func newServiceDescs() serviceDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return serviceDescs{
		state:       d("uplink_service_state", "1 for the state each supervised service is in, 0 for the others.", "service", "state"),
		restarts:    d("uplink_service_restarts_total", "Restarts of each supervised service since the process started.", "service"),
		conns:       d("uplink_pool_connections", "Connections of the app's pool by state.", "state"),
		maxConns:    d("uplink_pool_max_connections", "The pool's maximum size."),
		acquires:    d("uplink_pool_acquires_total", "Connections acquired from the pool."),
		acquireWait: d("uplink_pool_acquire_wait_seconds_total", "Time spent acquiring connections from the pool."),
		emptyWaits:  d("uplink_pool_empty_acquires_total", "Acquires that had to wait for a connection."),
		canceled:    d("uplink_pool_canceled_acquires_total", "Acquires cancelled before getting a connection."),
		newConns:    d("uplink_pool_new_connections_total", "Connections the pool opened."),
		destroyed:   d("uplink_pool_destroyed_connections_total", "Connections the pool closed for age or idleness.", "reason"),
	}
}

type servicesCollector struct {
	app  *App
	desc serviceDescs
}

var _ prometheus.Collector = (*servicesCollector)(nil)

func (c *servicesCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.desc
	for _, desc := range []*prometheus.Desc{d.state, d.restarts, d.conns, d.maxConns, d.acquires,
		d.acquireWait, d.emptyWaits, d.canceled, d.newConns, d.destroyed} {
		ch <- desc
	}
}

var serviceStates = []supervise.State{
	supervise.StateStopped, supervise.StateStarting, supervise.StateRunning, supervise.StateRestarting, supervise.StateFailed,
}

func (c *servicesCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	c.app.mu.Lock()
	sup := c.app.sup
	c.app.mu.Unlock()
	if sup != nil {
		for name, chk := range sup.Checks() {
			for _, st := range serviceStates {
				gauge(c.desc.state, boolValue(chk.Data["state"] == string(st)), name, string(st))
			}
			restarts, _ := chk.Data["restarts"].(int)
			counter(c.desc.restarts, float64(restarts), name)
		}
	}
	pool := c.app.Pool()
	if pool == nil {
		return
	}
	st := pool.Stat()
	d := c.desc
	gauge(d.conns, float64(st.AcquiredConns()), "acquired")
	gauge(d.conns, float64(st.IdleConns()), "idle")
	gauge(d.conns, float64(st.ConstructingConns()), "constructing")
	gauge(d.conns, float64(st.TotalConns()), "total")
	gauge(d.maxConns, float64(st.MaxConns()))
	counter(d.acquires, float64(st.AcquireCount()))
	counter(d.acquireWait, st.AcquireDuration().Seconds())
	counter(d.emptyWaits, float64(st.EmptyAcquireCount()))
	counter(d.canceled, float64(st.CanceledAcquireCount()))
	counter(d.newConns, float64(st.NewConnsCount()))
	counter(d.destroyed, float64(st.MaxLifetimeDestroyCount()), "max_lifetime")
	counter(d.destroyed, float64(st.MaxIdleDestroyCount()), "max_idle")
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
