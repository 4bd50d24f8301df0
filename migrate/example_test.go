package migrate_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/migrate"
)

func ExampleLoad() {
	fsys := fstest.MapFS{
		"db/0001_users.sql":       {Data: []byte("CREATE TABLE users (id bigint PRIMARY KEY);")},
		"db/0002_email.up.sql":    {Data: []byte("ALTER TABLE users ADD email text;")},
		"db/0002_email.down.sql":  {Data: []byte("ALTER TABLE users DROP email;")},
		"db/0003_email_idx.sql":   {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n")},
		"db/20240131120000_x.sql": {Data: []byte("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n")},
		"db/README.md":            {Data: []byte("not a migration")},
		"db/archive/0000_old.sql": {Data: []byte("subdirectories are not read")},
	}
	migs, err := migrate.Load(fsys, "db")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range migs {
		fmt.Printf("%d %s %s down=%v no-tx=%v\n", m.Version, m.Name, m.Format(), m.HasDown(), m.NoTransaction())
	}
	// Output:
	// 1 users plain down=false no-tx=false
	// 2 email plain down=true no-tx=false
	// 3 email_idx goose down=true no-tx=true
	// 20240131120000 x dbmate down=true no-tx=false
}

// A service's boot: every replica runs this at start; one applies, the
// others wait for the lock and find nothing left to do.
func ExampleMigrator_Up() {
	ctx := context.Background()
	migs, err := migrate.Load(os.DirFS("."), "migrations")
	if err != nil {
		log.Fatal(err)
	}
	cc, err := pgx.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := migrate.New(cc, migrate.Config{}, migrate.Line{Name: "app", Migrations: migs})
	if err != nil {
		log.Fatal(err)
	}
	res, err := m.Up(ctx)
	if err != nil {
		// A *migrate.PartialError says what was applied before the
		// failure; status.IsAction(err) says a person must fix a file.
		log.Fatal(err)
	}
	fmt.Printf("applied %d migration(s)\n", len(res.Applied))
}
