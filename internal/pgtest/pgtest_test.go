package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, url string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "SELECT 41 + 1").Scan(&n)
	return n, err
}

func TestServerLifecycle(t *testing.T) {
	s := pgtest.New(t)
	if _, err := query(t, s.URL("postgres")); err == nil {
		t.Fatal("server answers before Start")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if n, err := query(t, s.URL("postgres")); err != nil || n != 42 {
		t.Fatalf("query after Start = %d, %v", n, err)
	}
	s.Kill()
	if _, err := query(t, s.URL("postgres")); err == nil {
		t.Fatal("server answers after Kill")
	}
	if err := s.Start(); err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	if n, err := query(t, s.URL("postgres")); err != nil || n != 42 {
		t.Fatalf("query after restart = %d, %v", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("Running after Stop")
	}
}

func TestSharedDatabasesAreSeparate(t *testing.T) {
	s := pgtest.Shared(t)
	a, b := s.NewDatabase(t), s.NewDatabase(t)
	if a == b {
		t.Fatal("NewDatabase returned the same database twice")
	}
	ctx := context.Background()
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table from database a seen in b: n=%d err=%v", n, err)
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	s := pgtest.Shared(t)
	url := s.URL("postgres")
	bad := url[:len("postgres://postgres:")] + "wrong" + url[len("postgres://postgres:")+len(s.Password):]
	if _, err := query(t, bad); err == nil {
		t.Fatal("wrong password accepted: scram-sha-256 auth is not in force")
	}
}
