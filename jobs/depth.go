package jobs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// nowFunc tells the time; a variable for the log tamer's tests.
var nowFunc = time.Now

// States are the job states counted as queue depth: the jobs not yet
// finished.
var States = []string{"available", "pending", "retryable", "running", "scheduled"}

// Depth is the last count of unfinished jobs per queue and state.
type Depth struct {
	// Queues maps queue → state → jobs. Configured queues appear with
	// zeros; queues worked elsewhere appear once they hold jobs.
	Queues map[string]map[string]int64 `json:"queues"`
	// At is when the count was made; zero before the first one.
	At time.Time `json:"counted_at,omitzero"`
	// Err is the last count's failure, while counts fail; ErrAt its time.
	Err   string    `json:"last_error,omitempty"`
	ErrAt time.Time `json:"last_error_at,omitzero"`
}

// Depth returns the last count. It never touches the database.
func (s *Service) Depth() Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.depth
	d.Queues = maps.Clone(d.Queues)
	return d
}

// countLoop counts queue depth now and every DepthInterval until ctx ends.
func (s *Service) countLoop(ctx context.Context, pool *pgxpool.Pool) {
	t := time.NewTicker(s.cfg.DepthInterval)
	defer t.Stop()
	for {
		s.countOnce(ctx, pool)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// countOnce runs one bounded count. A failure keeps the last numbers, with
// the error beside them: /status shows how old they are.
func (s *Service) countOnce(parent context.Context, pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.DepthTimeout)
	defer cancel()
	counts, err := countJobs(ctx, pool, s.cfg.River.Schema)
	if parent.Err() != nil {
		return // stopping: not a failure worth showing
	}
	now := nowFunc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.depth.Err, s.depth.ErrAt = provision.Redact(err.Error()), now
		return
	}
	for q := range s.queues {
		if counts[q] == nil {
			counts[q] = map[string]int64{}
		}
	}
	for _, byState := range counts {
		for _, st := range States {
			if _, ok := byState[st]; !ok {
				byState[st] = 0 // every state shows, so graphs have no gaps
			}
		}
	}
	s.depth = Depth{Queues: counts, At: now}
}

// countJobs counts unfinished jobs by queue and state. River's fetch index
// leads with state, so the count reads the index of the unfinished jobs,
// not the finished ones that pile up until River's cleaner removes them.
func countJobs(ctx context.Context, pool *pgxpool.Pool, schema string) (map[string]map[string]int64, error) {
	table := pgx.Identifier{"river_job"}
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}
	}
	rows, err := pool.Query(ctx, `SELECT queue, state::text, count(*) FROM `+table.Sanitize()+
		` WHERE state = ANY($1::text[]::river_job_state[]) GROUP BY 1, 2`, States)
	if err != nil {
		return nil, err
	}
	counts := map[string]map[string]int64{}
	var q, st string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&q, &st, &n}, func() error {
		if counts[q] == nil {
			counts[q] = map[string]int64{}
		}
		counts[q][st] = n
		return nil
	})
	return counts, err
}

// Check reports the job queue for /status: the client's state, the jobs
// this process works, and queue depth per queue and state. It warns while
// counts fail (the numbers shown are then as old as Data's counted_at).
func (s *Service) Check() status.Check {
	s.mu.Lock()
	d, working, started, client := s.depth, s.working, s.run != nil, s.client != nil
	s.mu.Unlock()
	mode := "stopped"
	switch {
	case started && working:
		mode = "working"
	case started || client:
		mode = "insert-only"
	}
	var waiting int64
	for _, byState := range d.Queues {
		waiting += byState["available"]
	}
	c := status.Check{
		Status: status.Pass,
		Detail: fmt.Sprintf("%s; %d queues, %d jobs available, %d running here", mode, len(d.Queues), waiting, s.Running()),
		Data: map[string]any{
			"client":       mode,
			"queues":       d.Queues,
			"running_here": s.Running(),
		},
	}
	if !d.At.IsZero() {
		c.Data["counted_at"] = d.At
	}
	if d.Err != "" && d.ErrAt.After(d.At) {
		c.Status = status.Warn
		c.LastError, c.LastErrorAt = d.Err, d.ErrAt
		c.Detail += "; queue depth cannot be counted now"
	}
	return c
}

// queueNames lists the counted queues in order, for stable output.
func (d Depth) queueNames() []string { return slices.Sorted(maps.Keys(d.Queues)) }
