package jobs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the numbers of Check to Prometheus, from the same
// cached count: a scrape never waits on the database.
type collector struct {
	s       *Service
	queued  *prometheus.Desc
	counted *prometheus.Desc
	running *prometheus.Desc
}

// Collector returns the Prometheus collector of the job queue:
//
//	uplink_jobs{queue,state}            unfinished jobs, as last counted
//	uplink_jobs_counted_timestamp_seconds  when they were counted
//	uplink_jobs_running_here            jobs this process works now
func (s *Service) Collector() prometheus.Collector {
	return &collector{
		s:       s,
		queued:  prometheus.NewDesc("uplink_jobs", "Unfinished jobs per queue and state, as last counted.", []string{"queue", "state"}, nil),
		counted: prometheus.NewDesc("uplink_jobs_counted_timestamp_seconds", "Unix time of the last successful count of uplink_jobs.", nil, nil),
		running: prometheus.NewDesc("uplink_jobs_running_here", "Jobs this process is working now.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.counted
	ch <- c.running
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.s.Depth()
	for _, q := range d.queueNames() {
		for st, n := range d.Queues[q] {
			ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(n), q, st)
		}
	}
	if !d.At.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.counted, prometheus.GaugeValue, float64(d.At.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(c.s.Running()))
}

var _ prometheus.Collector = (*collector)(nil)
