package lite_test

import (
	"context"
	"log"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/provision/lite"
)

// A private PostgreSQL for a program: provisioned at start, watched while
// the program runs, stopped last.
func Example() {
	l, err := lite.New(lite.Config{DataDir: "/var/lib/myapp"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dsn, err := l.Provision(ctx) // Status() tells how far it got meanwhile
	if err != nil {
		log.Fatal(err) // status.HintOf(err) says what a person should do
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l.Stop(ctx)
	}()

	conn, err := pgx.Connect(ctx, dsn.Secret())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	select {
	case err := <-l.Failed(): // the server kept crashing: a person must look
		log.Print(err)
	case <-ctx.Done():
	}
}
