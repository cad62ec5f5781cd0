package sqlite

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// TestAcceptSyncsWALBeforeReturning checks the mechanism of walsync.go: the
// writer commits with synchronous=NORMAL, and Accept returns only once an
// fdatasync covered its commit; relaxed writes do not sync.
func TestAcceptSyncsWALBeforeReturning(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "fanout.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(ctx))
	require.NotNil(t, s.wal, "a database on a local file system is in WAL mode")

	var sync int
	require.NoError(t, s.writer.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync))
	require.Equal(t, 1, sync, "the writer commits with synchronous=NORMAL")

	before := s.wal.committed.Load()
	_, err = s.Accept(ctx, []fanout.AcceptParams{{
		Message: fanout.Message{Route: "r", Method: http.MethodPost, Path: "/in", Body: []byte("{}")},
		Targets: []string{"a"},
	}})
	require.NoError(t, err)
	require.Equal(t, before+1, s.wal.committed.Load())
	s.wal.mu.Lock()
	synced := s.wal.synced
	s.wal.mu.Unlock()
	require.GreaterOrEqual(t, synced, before+1, "Accept returned before its commit was synced")

	leased, err := s.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "o", Limit: 10, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.Equal(t, before+1, s.wal.committed.Load(), "a lease is not a durable commit")
}
