package starttask

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/uplinkhq/uplink/migrate"
)

// A task's timeout must not end the session: the session holds the
// cluster lock, and the runner still has to record the failure and run
// the tasks after it. pgx ends a query whose context is done by closing
// the connection, so the task's statements never see the task's
// deadline. Instead, at the deadline the runner asks the server to cancel
// the running statement (a cancel request, as psql's Ctrl-C sends), and
// guardDB refuses statements after it.

// errTimedOut is what a statement started after the task's timeout gets.
var errTimedOut = errors.New("the task's timeout has passed")

// cancelAtDeadline sends a cancel request for conn's running statement
// when task's deadline passes (not when it is cancelled: then the whole
// run stops and pgx ends the session). The returned func disarms it, or
// waits until a request on its way has been acknowledged: a request still
// in flight could otherwise cancel the statement that follows the task.
func cancelAtDeadline(task context.Context, conn *pgx.Conn) (disarm func()) {
	sent := make(chan struct{})
	stop := context.AfterFunc(task, func() {
		defer close(sent)
		if !errors.Is(task.Err(), context.DeadlineExceeded) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.PgConn().CancelRequest(ctx)
	})
	return sync.OnceFunc(func() {
		if !stop() {
			<-sent
		}
	})
}

// guardDB is the DB a Func task gets: statements run under the run's
// context (session-safe) and are refused once the task's deadline passed.
type guardDB struct {
	db   migrate.DB
	run  context.Context // the whole run's: ends only when boot stops
	task context.Context // the task's: carries its deadline
}

var _ migrate.DB = guardDB{}

func (g guardDB) ctx() (context.Context, error) {
	if err := g.task.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errTimedOut, err)
	}
	return g.run, nil
}

func (g guardDB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, err := g.ctx()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return g.db.Exec(ctx, sql, args...)
}

func (g guardDB) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, err := g.ctx()
	if err != nil {
		return nil, err
	}
	return g.db.Query(ctx, sql, args...)
}

func (g guardDB) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	ctx, err := g.ctx()
	if err != nil {
		return errRow{err}
	}
	return g.db.QueryRow(ctx, sql, args...)
}

func (g guardDB) CopyFrom(_ context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	ctx, err := g.ctx()
	if err != nil {
		return 0, err
	}
	return g.db.CopyFrom(ctx, table, columns, src)
}

func (g guardDB) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	ctx, err := g.ctx()
	if err != nil {
		return errBatch{err}
	}
	return g.db.SendBatch(ctx, b)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }
