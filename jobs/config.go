package jobs

import (
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// Defaults for Config.
const (
	DefaultQueueWorkers    = 10
	DefaultSoftStopTimeout = 5 * time.Second
	DefaultDepthInterval   = 5 * time.Second
	DefaultDepthTimeout    = time.Second
	DefaultQuietMin        = time.Second
	DefaultQuietMax        = 30 * time.Second
)

// Config tunes the job queue. The zero value works: each field names its
// default.
type Config struct {
	// Queues are the queues this process works, by name. Default: once a
	// worker is registered, river.QueueDefault with DefaultQueueWorkers
	// workers; with no worker at all the client only inserts jobs.
	Queues map[string]river.QueueConfig
	// SoftStopTimeout is how long running jobs may take to finish once
	// stopping began (fetching has stopped by then); after it their
	// contexts are cancelled and Stop waits, within its own bound, for
	// them to return. Default 5s: it must fit, with the HTTP drain and the
	// database's stop, in boot's ShutdownTimeout.
	SoftStopTimeout time.Duration
	// DepthInterval is how often queue depth is counted for /status and
	// /metrics, which read the last count and never wait on the database.
	// DepthTimeout bounds one count. Defaults 5s and 1s.
	DepthInterval, DepthTimeout time.Duration
	// QuietMin and QuietMax bound the back-off between two log lines of
	// one repeated River warning or error (the database went away and
	// every loop fails on each turn). Defaults 1s and 30s.
	QuietMin, QuietMax time.Duration
	// Logger receives River's logs, tamed as QuietMin says, and the
	// service's own. Default: discard.
	Logger *slog.Logger
	// River is River's client configuration for everything else: fetch
	// intervals, job timeout, retry policy, middleware, periodic jobs,
	// Schema. Its Logger, Workers and Queues are set by the Service and
	// must be left empty; its SoftStopTimeout is unused (see
	// SoftStopTimeout above).
	River river.Config
}

func (c Config) withDefaults() (Config, error) {
	if c.River.Logger != nil || c.River.Workers != nil || c.River.Queues != nil {
		return c, errors.New("jobs: set Logger and Queues in jobs.Config and register workers with AddWorker, not in Config.River")
	}
	if c.SoftStopTimeout < 0 || c.DepthInterval < 0 || c.DepthTimeout < 0 || c.QuietMin < 0 || c.QuietMax < 0 {
		return c, errors.New("jobs: negative duration in Config")
	}
	if c.SoftStopTimeout == 0 {
		c.SoftStopTimeout = DefaultSoftStopTimeout
	}
	if c.DepthInterval == 0 {
		c.DepthInterval = DefaultDepthInterval
	}
	if c.DepthTimeout == 0 {
		c.DepthTimeout = DefaultDepthTimeout
	}
	if c.QuietMin == 0 {
		c.QuietMin = DefaultQuietMin
	}
	if c.QuietMax == 0 {
		c.QuietMax = max(DefaultQuietMax, c.QuietMin)
	}
	if c.QuietMin > c.QuietMax {
		return c, errors.New("jobs: QuietMin above QuietMax")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
