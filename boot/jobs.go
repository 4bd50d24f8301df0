package boot

import (
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/uplinkhq/uplink/backup"
	"github.com/uplinkhq/uplink/jobs"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/lite"
)

// AddWorker registers a River worker for its job kind; call it before
// Run. Once one is registered the app works jobs, in the queues of
// Config.Jobs.Queues (default: River's default queue); without any it
// only inserts them.
//
//	boot.AddWorker(app, &SendEmailWorker{})
func AddWorker[T river.JobArgs](a *App, w river.Worker[T]) error {
	return jobs.AddWorker(a.jobs, w)
}

// Jobs is River's client, to insert jobs (Insert, or InsertTx in the
// app's own transaction) and manage them; nil before phase starting.
// Services added with Add may use it from their Start on.
func (a *App) Jobs() *river.Client[pgx.Tx] { return a.jobs.Client() }

// initJobs makes the job queue service, started after the pool, and in
// lite mode registers Uplink's backup job with it.
func (a *App) initJobs() error {
	cfg := a.cfg.Jobs
	cfg.Logger = a.log
	dataDir, backups := a.backupDir()
	var w *backup.Worker
	if backups {
		w = backup.NewWorker(dataDir, a.cfg.Backups, a.log)
		queues := maps.Clone(cfg.Queues)
		if len(queues) == 0 {
			// What jobs.Config would have defaulted to without ours.
			queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: jobs.DefaultQueueWorkers}}
		}
		queues[backup.Queue] = river.QueueConfig{MaxWorkers: 1}
		cfg.Queues = queues
		cfg.River.PeriodicJobs = append(slices.Clone(cfg.River.PeriodicJobs), w.PeriodicJob())
	}
	svc, err := jobs.New(a.Pool, cfg)
	if err != nil {
		return err
	}
	if w != nil {
		if err := jobs.AddWorker(svc, w); err != nil {
			return err
		}
	}
	a.jobs = svc
	return nil
}

// backupDir says whether Uplink backs the database up itself (lite mode,
// backups not turned off) and the data directory it then dumps.
func (a *App) backupDir() (string, bool) {
	if !a.cfg.Backups.Enabled() {
		return "", false
	}
	if l, ok := a.cfg.Provisioner.(*lite.Lite); ok {
		return l.Layout().Root, true
	}
	if a.cfg.Provisioner != nil {
		return "", false
	}
	mode, err := provision.ParseMode(a.cfg.Mode)
	if err == nil {
		mode, err = mode.Resolve(a.cfg.DatabaseURL)
	}
	if err != nil || mode != provision.ModeLite {
		return "", false // a bad mode is reported by Run, in phase error
	}
	lc, err := (lite.Config{DataDir: a.cfg.DataDir}).WithDefaults()
	if err != nil {
		return "", false
	}
	return lc.DataDir, true
}

// jobsLine is River's schema as a migration line, in the schema River's
// client uses.
func (a *App) jobsLine() (migrate.Line, error) { return jobs.MigrationLine(a.cfg.Jobs.River.Schema) }
