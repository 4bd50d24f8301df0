package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/migrate"
	"github.com/uplinkhq/uplink/starttask"
)

// todo is one row of the todos table.
type todo struct {
	ID          int64      `json:"id"`
	Title       string     `json:"title"`
	WorkMS      int        `json:"work_ms"`
	CreatedAt   time.Time  `json:"created_at"`
	ProcessedAt *time.Time `json:"processed_at"`
}

// todos serves the HTTP API.
type todos struct {
	app *boot.App
	log *slog.Logger
}

func (t *todos) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /todos", t.create)
	mux.HandleFunc("GET /todos", t.list)
	mux.HandleFunc("GET /todos/{id}", t.get)
	return mux
}

// create inserts the todo and its job in one transaction: if either
// fails, neither exists.
func (t *todos) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title  string `json:"title"`
		WorkMS int    `json:"work_ms"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == "" || in.WorkMS < 0 {
		http.Error(w, `want {"title": "...", "work_ms": 0}`, http.StatusBadRequest)
		return
	}
	pool, jobs := t.app.Pool(), t.app.Jobs()
	if pool == nil || jobs == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	var id int64
	err := pgx.BeginFunc(r.Context(), pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(r.Context(), `INSERT INTO todos (title, work_ms) VALUES ($1, $2) RETURNING id`,
			in.Title, in.WorkMS).Scan(&id); err != nil {
			return err
		}
		_, err := jobs.InsertTx(r.Context(), tx, processArgs{TodoID: id}, nil)
		return err
	})
	if err != nil {
		t.log.Error("creating a todo", "err", err)
		http.Error(w, "could not create the todo", http.StatusServiceUnavailable)
		return
	}
	t.log.Info("todo created", "todo_id", id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]int64{"id": id})
}

func (t *todos) list(w http.ResponseWriter, r *http.Request) {
	t.query(w, r, `SELECT id, title, work_ms, created_at, processed_at FROM todos ORDER BY id`, false)
}

func (t *todos) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	t.query(w, r, `SELECT id, title, work_ms, created_at, processed_at FROM todos WHERE id = $1`, true, id)
}

// query answers with the todos sql selects: all of them, or the one.
func (t *todos) query(w http.ResponseWriter, r *http.Request, sql string, one bool, args ...any) {
	pool := t.app.Pool()
	if pool == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	rows, _ := pool.Query(r.Context(), sql, args...)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[todo])
	if err != nil {
		http.Error(w, "could not read todos", http.StatusServiceUnavailable)
		return
	}
	var out any = list
	if one {
		if len(list) == 0 {
			http.NotFound(w, r)
			return
		}
		out = list[0]
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// processArgs is the job that processes one todo.
type processArgs struct {
	TodoID int64 `json:"todo_id"`
}

func (processArgs) Kind() string { return "todo_process" }

type processWorker struct {
	river.WorkerDefaults[processArgs]
	app *boot.App
	log *slog.Logger
}

// Work takes the todo's work_ms, then marks it processed. It honours ctx:
// when the app stops and the soft-stop timeout passes, the job returns
// and River runs it again later.
func (w *processWorker) Work(ctx context.Context, job *river.Job[processArgs]) error {
	pool := w.app.Pool()
	var workMS int
	if err := pool.QueryRow(ctx, `SELECT work_ms FROM todos WHERE id = $1`, job.Args.TodoID).Scan(&workMS); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return river.JobCancel(err) // the todo is gone: nothing to do, ever
		}
		return err
	}
	w.log.Info("todo job started", "todo_id", job.Args.TodoID, "work_ms", workMS)
	select {
	case <-time.After(time.Duration(workMS) * time.Millisecond):
	case <-ctx.Done():
		w.log.Info("todo job cancelled", "todo_id", job.Args.TodoID, "err", context.Cause(ctx))
		return ctx.Err()
	}
	if _, err := pool.Exec(ctx, `UPDATE todos SET processed_at = now() WHERE id = $1`, job.Args.TodoID); err != nil {
		return err
	}
	w.log.Info("todo processed", "todo_id", job.Args.TodoID)
	return nil
}

// tasks are the app's startup tasks: demo data in dev only, once per
// database however many replicas boot together.
func tasks() []starttask.Task {
	return []starttask.Task{{
		Name: "seed-demo-todos",
		Env:  []string{boot.EnvDev},
		Func: func(ctx context.Context, db migrate.DB) error {
			_, err := db.Exec(ctx, `INSERT INTO todos (title, processed_at) VALUES
				('Read the README', now()), ('Run uplink status', now())`)
			return err
		},
	}}
}
