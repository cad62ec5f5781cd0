package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// migrationFiles holds the schema migrations, migration/NNN_name.up.sql,
// applied in the order of NNN. The numbers are the sqlite package's: the
// same version is the same change in both dialects.
//
//go:embed migration/*.up.sql
var migrationFiles embed.FS

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations, sorted by version.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migration/*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	migrations := make([]migration, 0, len(names))
	seen := make(map[int]string, len(names))
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".up.sql")
		num, label, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNN_name.up.sql", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s: same version %d", other, name, version)
		}
		seen[version] = name
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		migrations = append(migrations, migration{version: version, name: label, sql: string(body)})
	}
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].version < migrations[j].version })
	return migrations, nil
}

// Migrate applies the embedded migrations that have not run yet, all in
// one transaction, and records each in the fanout_migrations table. It
// creates Options.Schema first if it is missing. It is idempotent, and safe
// to run from any number of processes at once: the transaction begins by
// taking a transaction-level advisory lock on the schema, so the others
// wait for it to commit and then find nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	var applied []migration
	err = s.withTx(ctx, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, qMigrateLock, migrateLockKey(s.schema)); err != nil {
			return s.dbErr("migrate: lock", err)
		}
		if s.schema != "" {
			if _, err := tx.Exec(ctx, qCreateSchema+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return s.dbErr("migrate: create schema "+s.schema, err)
			}
		}
		if _, err := tx.Exec(ctx, qCreateMigrations); err != nil {
			return s.dbErr("migrate: create fanout_migrations", err)
		}
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return s.dbErr("migrate: read fanout_migrations", err)
		}
		now := time.Now()
		for _, m := range migrations {
			if done[m.version] {
				continue
			}
			// No arguments: pgx sends it with the simple protocol, which
			// runs a file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return s.dbErr(fmt.Sprintf("migrate: apply %03d_%s", m.version, m.name), err)
			}
			if _, err := tx.Exec(ctx, qRecordMigration, m.version, m.name, now); err != nil {
				return s.dbErr(fmt.Sprintf("migrate: record %03d_%s", m.version, m.name), err)
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range applied {
		s.logger.LogAttrs(ctx, slog.LevelInfo, "applied migration",
			slog.Int(logKeyVersion, m.version), slog.String(logKeyName, m.name), slog.String(logKeySchema, s.schema))
	}
	return nil
}

// appliedVersions returns the versions recorded in fanout_migrations.
func appliedVersions(ctx context.Context, tx pgx.Tx) (map[int]bool, error) {
	rows, err := tx.Query(ctx, qAppliedMigrations)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	done := make(map[int]bool, len(versions))
	for _, v := range versions {
		done[int(v)] = true
	}
	return done, nil
}
