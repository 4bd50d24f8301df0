package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/uplinkhq/uplink/status"
	"github.com/uplinkhq/uplink/supervise"
)

// Name is the Service's name among supervised services and in /status.
const Name = "jobs"

// Log attribute keys.
const (
	logComponent = "component"
	logErr       = "err"
	logRunning   = "running_jobs"
	logTimeout   = "soft_stop_timeout"
)

// ErrStoppedOnItsOwn is the crash reason when River's client stopped
// without being asked to.
var ErrStoppedOnItsOwn = errors.New("jobs: River's client stopped on its own")

// Service runs River's client under supervision: created on the first
// Start from the app's pool, with the workers registered by AddWorker and
// the queues of Config; fetching and working from Start to Stop.
//
// A database outage does not stop it: River's loops retry on their own
// (fetching every FetchPollInterval, completions kept in memory and
// written once the database is back), so jobs flow again within a poll
// of the database's return, and no job that River fetched is dropped.
type Service struct {
	pool    func() *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	workers *river.Workers
	running atomic.Int64 // jobs this process works now

	lifeMu sync.Mutex // serialises Start and Stop

	mu         sync.Mutex
	kinds      int
	client     *river.Client[pgx.Tx]
	clientPool *pgxpool.Pool
	working    bool
	queues     map[string]river.QueueConfig // worked here: Config.Queues or the default
	run        *run
	depth      Depth
}

// run is one Start-to-Stop of the service.
type run struct {
	done     chan error
	started  chan struct{} // closed when River's Start has returned
	stopping atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

var _ supervise.Watched = (*Service)(nil)

// New returns a Service that takes its connection pool from pool when it
// starts (boot's pool exists only from phase starting on). It checks cfg
// and creates nothing yet.
func New(pool func() *pgxpool.Pool, cfg Config) (*Service, error) {
	if pool == nil {
		return nil, errors.New("jobs: nil pool function")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Service{
		pool:    pool,
		cfg:     cfg,
		log:     cfg.Logger,
		workers: river.NewWorkers(),
	}, nil
}

// AddWorker registers w for its job kind; call it before the first Start.
// A process with at least one worker works jobs; one without only
// inserts them.
func AddWorker[T river.JobArgs](s *Service, w river.Worker[T]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return errors.New("jobs: AddWorker after the job queue started")
	}
	if err := river.AddWorkerSafely(s.workers, w); err != nil {
		return err
	}
	s.kinds++
	return nil
}

// Name implements supervise.Service.
func (s *Service) Name() string { return Name }

// Client is River's client, to insert jobs (Insert, InsertTx) and manage
// them; nil before the first Start. A Start on a new pool (boot starting
// its services again) makes a new client: ask for it each time rather
// than keeping it.
func (s *Service) Client() *river.Client[pgx.Tx] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// Running is the number of jobs this process is working now.
func (s *Service) Running() int { return int(s.running.Load()) }

// Start creates the client on first use and, when there are workers,
// starts fetching. ctx is the run's lifetime (see supervise.Service).
//
// River's own start is not awaited: it opens connections for its
// notifier, elector and producers, tens of milliseconds on a small
// machine, and the app needs none of it to serve (a job inserted
// meanwhile waits in its table for the fetchers). Its failure (an
// unreachable database: boot.IsOutage says so) ends the run through
// Done, and the supervisor restarts it like any run that ended.
func (s *Service) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.run != nil {
		return errors.New("jobs: already started")
	}
	pool := s.pool()
	if pool == nil {
		return errors.New("jobs: no connection pool yet")
	}
	client, working, err := s.clientFor(pool)
	if err != nil {
		return err
	}
	r := &run{done: make(chan error, 1), started: make(chan struct{})}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.countLoop(runCtx, pool)
	}()
	if !working {
		close(r.started)
	} else {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			err := client.Start(runCtx)
			close(r.started)
			if err != nil {
				if !r.stopping.Load() {
					r.done <- fmt.Errorf("jobs: starting River: %w", err)
				}
				return
			}
			select {
			case <-client.Stopped():
				if !r.stopping.Load() {
					r.done <- ErrStoppedOnItsOwn
				}
			case <-runCtx.Done():
			}
		}()
	}
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
	return nil
}

// clientFor returns the client for pool, making it on first use or when
// the pool changed.
func (s *Service) clientFor(pool *pgxpool.Pool) (*river.Client[pgx.Tx], bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil && s.clientPool == pool {
		return s.client, s.working, nil
	}
	rc := s.cfg.River
	rc.Logger = slog.New(newQuietHandler(s.log.With(logComponent, "river").Handler(), s.cfg.QuietMin, s.cfg.QuietMax, nowFunc))
	// Counting jobs in flight costs an atomic add per job; it tells the
	// stop log and /metrics how many jobs a stop is waiting for.
	rc.Middleware = append([]rivertype.Middleware{river.WorkerMiddlewareFunc(s.count)}, rc.Middleware...)
	working := s.kinds > 0
	if working {
		rc.Workers = s.workers
		rc.Queues = s.cfg.Queues
		if len(rc.Queues) == 0 {
			rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DefaultQueueWorkers}}
		}
	} else if len(s.cfg.Queues) > 0 {
		return nil, false, &status.ActionError{Problem: "job queues are configured but no worker is registered",
			Hint: "register workers with boot.AddWorker, or remove the queues from Config.Jobs"}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &rc)
	if err != nil {
		return nil, false, &status.ActionError{Problem: "the job queue is misconfigured", Err: err,
			Hint: "fix Config.Jobs or the workers registered with boot.AddWorker"}
	}
	s.client, s.clientPool, s.working, s.queues = client, pool, working, rc.Queues
	return client, working, nil
}

func (s *Service) count(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	s.running.Add(1)
	defer s.running.Add(-1)
	return doInner(ctx)
}

// Done reports a run that ended on its own: River's client stopped
// without Stop. An insert-only run never ends.
func (s *Service) Done() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil || !s.working {
		return nil
	}
	return s.run.done
}

// Stop stops fetching at once, gives running jobs SoftStopTimeout to
// finish, then cancels their contexts and waits for them, all within
// ctx. Jobs cancelled this way are retried by River later (here or on
// another replica). A second call does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.mu.Lock()
	r, client, working := s.run, s.client, s.working
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.stopping.Store(true)
	var err error
	if working {
		select { // a stop must not overtake the start
		case <-r.started:
		case <-ctx.Done():
		}
		err = s.stopClient(ctx, client)
	}
	r.cancel()
	r.wg.Wait()
	return err
}

func (s *Service) stopClient(ctx context.Context, client *river.Client[pgx.Tx]) error {
	s.log.Info("jobs: stopping: fetching stopped, waiting for running jobs",
		logRunning, s.Running(), logTimeout, s.cfg.SoftStopTimeout.String())
	softCtx, cancel := context.WithTimeout(ctx, s.cfg.SoftStopTimeout)
	defer cancel()
	if err := client.Stop(softCtx); err == nil {
		s.log.Info("jobs: stopped")
		return nil
	}
	s.log.Warn("jobs: soft stop timed out; cancelling running jobs", logRunning, s.Running(), logTimeout, s.cfg.SoftStopTimeout.String())
	if err := client.StopAndCancel(ctx); err != nil {
		return fmt.Errorf("jobs: %d running jobs did not return after being cancelled: %w", s.Running(), err)
	}
	s.log.Info("jobs: stopped after cancelling running jobs")
	return nil
}
