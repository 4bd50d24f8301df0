package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/uplinkhq/uplink/status"
)

// PoolConfig parses dsn for a pool, pgxpool's settings included. A bad
// string is an ActionError whose message holds no password.
func PoolConfig(dsn DSN) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn.Secret())
	if err != nil {
		return nil, &status.ActionError{Problem: "the database connection string is invalid", Err: errors.New(Redact(err.Error()))}
	}
	return cfg, nil
}

// ConnConfig parses dsn for a connection of its own (the migrator's, the
// task runner's). It takes pgxpool's settings out of it (pool_max_conns
// and the like, which a DATABASE_URL may carry for the app's pool):
// pgx.ParseConfig would send them to the server as parameters, and the
// server refuses unknown ones.
func ConnConfig(dsn DSN) (*pgx.ConnConfig, error) {
	cfg, err := PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	return cfg.ConnConfig, nil
}

// ServerVersionNum asks the server behind q for server_version_num
// (150018 for 15.18): how Uplink's probes prove that a connection
// answers. The simple protocol: no prepared statement for a pooler in
// transaction mode to lose.
func ServerVersionNum(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int, error) {
	var s string
	if err := q.QueryRow(ctx, "SHOW server_version_num", pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil {
		return 0, err
	}
	num, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("server_version_num %q is not a number: %w", s, err)
	}
	return num, nil
}
