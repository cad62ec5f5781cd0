package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// TestMigrateStepsKeepsDeliveries upgrades a database made by the first
// version (migration 001 only) with a waiting delivery in it: 002
// rebuilds the deliveries table, and the delivery is still there, still
// due, and delivered as before.
func TestMigrateStepsKeepsDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	init1, err := os.ReadFile("migration/001_init.up.sql")
	require.NoError(t, err)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for _, q := range []string{
		string(init1),
		`CREATE TABLE fanout_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO fanout_migrations VALUES (1, 'init', 0)`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	_, err = db.Exec(`INSERT INTO messages (id, route, method, path, body, received_at) VALUES ('msg_1', 'r', 'POST', '/in', x'7b7d', ?)`, at)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
VALUES ('msg_1', 'r', 'a', 'retrying', 2, ?1, ?1, ?1, ?1, ?1)`, at)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	st := open(t, path)
	require.NoError(t, st.Migrate(t.Context()))
	md, err := st.GetMessage(t.Context(), "msg_1")
	require.NoError(t, err)
	require.Len(t, md.Deliveries, 1)
	d := md.Deliveries[0]
	require.Equal(t, fanout.StateRetrying, d.State)
	require.Equal(t, 2, d.Attempts)
	require.Empty(t, d.Step)
	leased, err := st.Lease(t.Context(), fanout.LeaseParams{Target: "a", Owner: "w", Limit: 10, Now: time.UnixMilli(at + 1)})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.Equal(t, "msg_1", leased[0].Message.ID)
}

// TestMigrateAttemptCountKeepsDeliveries upgrades a database made by the
// migrations before 004_attempt_count: its deliveries keep their attempts,
// and a replay after the upgrade counts on from them.
func TestMigrateAttemptCountKeepsDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	qs := []string{`CREATE TABLE fanout_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for _, m := range []string{"001_init", "002_steps"} {
		b, err := os.ReadFile("migration/" + m + ".up.sql")
		require.NoError(t, err)
		qs = append(qs, string(b))
	}
	qs = append(qs, `INSERT INTO fanout_migrations VALUES (1, 'init', 0), (2, 'steps', 0)`)
	for _, q := range qs {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	_, err = db.Exec(`INSERT INTO messages (id, route, method, path, body, received_at) VALUES ('msg_1', 'r', 'POST', '/in', x'7b7d', ?)`, at)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
VALUES ('msg_1', 'r', 'a', 'dead', 3, ?1, NULL, ?1, ?1, ?1)`, at)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	st := open(t, path)
	require.NoError(t, st.Migrate(t.Context()))
	md, err := st.GetMessage(t.Context(), "msg_1")
	require.NoError(t, err)
	require.Len(t, md.Deliveries, 1)
	d := md.Deliveries[0]
	require.Equal(t, fanout.StateDead, d.State)
	require.Equal(t, 3, d.Attempts)
	require.Zero(t, d.AttemptsBefore)

	now := time.UnixMilli(at + 1000)
	n, err := st.Replay(t.Context(), fanout.ReplayParams{MessageID: "msg_1", Now: now})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	leased, err := st.Lease(t.Context(), fanout.LeaseParams{Target: "a", Owner: "w", Limit: 10, Now: now, LeaseFor: time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.Equal(t, 1, leased[0].Delivery.Attempts)
	require.Equal(t, 4, leased[0].Delivery.AttemptNumber())
}
