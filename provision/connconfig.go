package provision

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/status"
)

// ConnConfig parses dsn for a connection of its own (the migrator's, the
// task runner's). It takes pgxpool's settings out of it (pool_max_conns
// and the like, which a DATABASE_URL may carry for the app's pool):
// pgx.ParseConfig would send them to the server as parameters, and the
// server refuses unknown ones. A bad string is an ActionError whose
// message holds no password.
func ConnConfig(dsn DSN) (*pgx.ConnConfig, error) {
	cfg, err := pgxpool.ParseConfig(dsn.Secret())
	if err != nil {
		return nil, &status.ActionError{Problem: "the database connection string is invalid", Err: errors.New(Redact(err.Error()))}
	}
	return cfg.ConnConfig, nil
}
