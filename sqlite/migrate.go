package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema migrations, migration/NNN_name.up.sql,
// applied in the order of NNN. The postgres package keeps the same numbers.
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
// one transaction, and records each in the fanout_migrations table. It is
// idempotent, and safe to run from two processes at once: the IMMEDIATE
// transaction makes the second wait and then find nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	var applied []migration
	err = s.withTx(ctx, "migrate", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, qCreateMigrations); err != nil {
			return s.dbErr("migrate: create fanout_migrations", err)
		}
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return s.dbErr("migrate: read fanout_migrations", err)
		}
		now := time.Now().UnixMilli()
		for _, m := range migrations {
			if done[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return s.dbErr(fmt.Sprintf("migrate: apply %03d_%s", m.version, m.name), err)
			}
			if _, err := tx.ExecContext(ctx, qRecordMigration, m.version, m.name, now); err != nil {
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
			slog.Int(logKeyVersion, m.version), slog.String(logKeyName, m.name))
	}
	return nil
}

// appliedVersions returns the versions recorded in fanout_migrations.
func appliedVersions(ctx context.Context, tx *sql.Tx) (done map[int]bool, err error) {
	rows, err := tx.QueryContext(ctx, qAppliedMigrations)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	done = make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}
