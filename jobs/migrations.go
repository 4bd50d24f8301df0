package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/uplinkhq/uplink/migrate"
)

// LineName is the name of River's migration line in Uplink's history.
const LineName = "river"

// MigrationLine returns River's schema as a line of Uplink's migrator, so
// that it is applied under Uplink's cluster-wide lock with the app's own
// migrations, and replicas never race River's migrator. schema is the
// PostgreSQL schema River's tables live in ("" follows search_path); it
// must be the Config.Schema of the Service.
//
// Each version runs River's own migrator for that one version in the
// migration's transaction (rivermigrate's MigrateTx), so River's template
// placeholders are filled the way River fills them and River's own
// bookkeeping table, river_migration, stays right: River's CLI and
// rivermigrate.Validate agree with Uplink's history, and a database that
// River's CLI already migrated is adopted (versions it applied are
// recorded without running again).
func MigrationLine(schema string) (migrate.Line, error) {
	rm, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return migrate.Line{}, fmt.Errorf("jobs: River's migrations: %w", err)
	}
	line := migrate.Line{Name: LineName}
	for _, v := range rm.AllVersions() {
		version := v.Version
		up := func(ctx context.Context, db migrate.DB) error {
			tx, err := asTx(db)
			if err != nil {
				return err
			}
			_, err = rm.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: version})
			return err
		}
		down := func(ctx context.Context, db migrate.DB) error {
			tx, err := asTx(db)
			if err != nil {
				return err
			}
			// River reverts everything above its target; -1 means all of
			// it, which at version 1 is only version 1 itself.
			target := version - 1
			if target == 0 {
				target = -1
			}
			_, err = rm.MigrateTx(ctx, tx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: target})
			return err
		}
		line.Migrations = append(line.Migrations, migrate.GoMigration(int64(version),
			strings.ReplaceAll(v.Name, " ", "_"), up, down,
			// River's SQL is what defines the migration: an upgraded River
			// that changed an applied version shows up as drift.
			migrate.WithChecksum(sqlChecksum(v.SQLUp, v.SQLDown, schema))))
	}
	return line, nil
}

// asTx returns the migration's transaction: River's migrator runs on a
// pgx.Tx, which Uplink's migrator gives every migration that does not opt
// out of one (River's never do).
func asTx(db migrate.DB) (pgx.Tx, error) {
	tx, ok := db.(pgx.Tx)
	if !ok {
		return nil, fmt.Errorf("jobs: River's migrations must run in a transaction, got %T", db)
	}
	return tx, nil
}

func sqlChecksum(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
