package backup

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// Log attribute keys.
const (
	logFile     = "file"
	logDuration = "duration"
	logDeleted  = "deleted"
	logErr      = "err"
)

// Worker runs backups of one lite data directory.
type Worker struct {
	river.WorkerDefaults[Args]
	dataDir string
	cfg     Config
	log     *slog.Logger
}

var _ river.Worker[Args] = (*Worker)(nil)

// NewWorker returns the worker for dataDir's database; cfg's zero fields
// take their defaults, and log (nil: discard) gets a line per backup.
func NewWorker(dataDir string, cfg Config, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{dataDir: dataDir, cfg: cfg.withDefaults(), log: log}
}

// Timeout lets a dump take Config.Timeout, instead of River's one-minute
// default for a job.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.cfg.Timeout }

// Work dumps the database, then applies the retention count. A failed
// dump deletes nothing but its own partial file, and River retries it.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	start := time.Now()
	file, err := Run(ctx, w.dataDir, start)
	if err != nil {
		w.log.Error("backup failed", logErr, err)
		return err
	}
	w.log.Info("backup written", logFile, file, logDuration, time.Since(start).Round(time.Millisecond).String())
	deleted, err := Prune(Dir(w.dataDir), w.cfg.Keep)
	if len(deleted) > 0 {
		w.log.Info("old backups deleted", logDeleted, deleted)
	}
	if err != nil {
		// The backup itself is done: a retry would only write another.
		w.log.Warn("deleting old backups failed", logErr, err)
	}
	return nil
}

// PeriodicJob schedules backups for River's periodic enqueuer. The first
// comes Interval after the newest backup on disk, so that a process
// restarted every few hours still backs up daily, but no sooner than a
// minute (or Interval, when shorter) after the enqueuer starts, so that a
// restart loop does not dump on every start; each later one comes Interval
// after the one before.
func (w *Worker) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(&schedule{dir: Dir(w.dataDir), interval: w.cfg.Interval},
		func() (river.JobArgs, *river.InsertOpts) { return Args{}, nil },
		&river.PeriodicJobOpts{ID: Args{}.Kind()})
}

type schedule struct {
	dir      string
	interval time.Duration

	mu     sync.Mutex
	primed bool
}

// Next is called with the enqueuer's start time first, then with each
// run time it just enqueued.
func (s *schedule) Next(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.primed {
		return t.Add(s.interval)
	}
	s.primed = true
	next := t.Add(min(s.interval, time.Minute))
	if names, err := List(s.dir); err == nil && len(names) > 0 {
		if last, err := time.Parse(timeLayout, backupTime(names[len(names)-1])); err == nil {
			// Never later than a full Interval from now: a backup dated in
			// the future (a clock that jumped back) must not stop backups.
			next = earlier(later(next, last.Add(s.interval)), t.Add(s.interval))
		}
	}
	return next
}

// backupTime is the time part of a backup's file name.
func backupTime(path string) string {
	base := filepath.Base(path)
	return base[len("uplink-") : len(base)-len(".dump")]
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
