package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/postgres"
)

// heartbeat calls Reclaim for owner of node at now with a 5s timeout.
func heartbeat(t *testing.T, s *postgres.Store, owner, node string, now time.Time) int {
	t.Helper()
	n, err := s.Reclaim(t.Context(), fanout.ReclaimParams{Owner: owner, Node: node, Now: now, DeadAfter: 5 * time.Second})
	require.NoError(t, err)
	return n
}

// nodeRows returns the owners in the nodes table of schema.
func nodeRows(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := connect(t).Query(t.Context(), "SELECT owner FROM "+pgx.Identifier{schema, "nodes"}.Sanitize()+" ORDER BY owner")
	require.NoError(t, err)
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return owners
}

// TestReclaimTakesOverADeadNode has two nodes on one database: node a
// leases and stops heartbeating (killed, its host gone); node b takes its
// leases back once a's last heartbeat is older than the timeout, not
// before, and workers everywhere hear of the work.
func TestReclaimTakesOverADeadNode(t *testing.T) {
	t.Parallel()
	a, schema := openMigrated(t)
	b := open(t, schema)
	l := listen(t, b)
	l.established(t, b)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_, err := a.Accept(t.Context(), []fanout.AcceptParams{
		{Message: message("r", t0), Targets: []string{"x"}},
		{Message: message("r", t0), Targets: []string{"x"}},
	})
	require.NoError(t, err)

	require.Zero(t, heartbeat(t, a, "a-run1", "a", t0))
	require.Zero(t, heartbeat(t, b, "b-run1", "b", t0))
	leased, err := a.Lease(t.Context(), fanout.LeaseParams{Target: "x", Owner: "a-run1", Limit: 10, Now: t0, LeaseFor: 10 * time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 2)
	require.Zero(t, heartbeat(t, a, "a-run1", "a", t0.Add(time.Second)), "a's last heartbeat")

	for _, s := range []time.Duration{2, 4, 6} { // a was seen at most 5s ago
		require.Zero(t, heartbeat(t, b, "b-run1", "b", t0.Add(s*time.Second)), "at %ds", s)
	}
	require.Equal(t, 2, heartbeat(t, b, "b-run1", "b", t0.Add(6*time.Second+time.Millisecond)), "a gone for more than 5s")
	require.True(t, l.waitFor("x", time.Minute), "the takeover wakes the target's workers")
	require.Equal(t, []string{"b-run1"}, nodeRows(t, schema), "a's row goes with its leases")

	again, err := b.Lease(t.Context(), fanout.LeaseParams{Target: "x", Owner: "b-run1", Limit: 10, Now: t0.Add(7 * time.Second), LeaseFor: 10 * time.Minute})
	require.NoError(t, err)
	require.Len(t, again, 2, "due at once, long before the 10m lease ends")
	require.Equal(t, 2, again[0].Delivery.Attempts)

	// a was only slow: its next heartbeat registers it again (with a
	// warning), and its late outcome leaves b's lease alone.
	require.Zero(t, heartbeat(t, a, "a-run1", "a", t0.Add(8*time.Second)))
	require.Equal(t, []string{"a-run1", "b-run1"}, nodeRows(t, schema))
	require.NoError(t, a.Complete(t.Context(), []fanout.CompleteParams{{
		DeliveryID: leased[0].Delivery.ID, Owner: "a-run1", State: fanout.StateSucceeded, Now: t0.Add(8 * time.Second),
		Attempt: fanout.Attempt{StartedAt: t0, Status: 200},
	}}))
	m, err := b.GetMessage(t.Context(), leased[0].Delivery.MessageID)
	require.NoError(t, err)
	require.Equal(t, fanout.StateDelivering, m.Deliveries[0].State, "b's lease stands")
}

// TestReclaimAfterAnOutageWaits plays a database outage that stopped every
// heartbeat: the first node back does not take the others' leases until it
// has itself been heartbeating for the timeout, by when they are back too.
func TestReclaimAfterAnOutageWaits(t *testing.T) {
	t.Parallel()
	a, schema := openMigrated(t)
	b := open(t, schema)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_, err := a.Accept(t.Context(), []fanout.AcceptParams{{Message: message("r", t0), Targets: []string{"x"}}})
	require.NoError(t, err)
	require.Zero(t, heartbeat(t, a, "a-run1", "a", t0))
	require.Zero(t, heartbeat(t, b, "b-run1", "b", t0))
	_, err = a.Lease(t.Context(), fanout.LeaseParams{Target: "x", Owner: "a-run1", Limit: 10, Now: t0, LeaseFor: 10 * time.Minute})
	require.NoError(t, err)

	back := t0.Add(time.Minute) // a minute without any heartbeat
	require.Zero(t, heartbeat(t, b, "b-run1", "b", back), "b is back first: a looks gone, but so did b")
	require.Zero(t, heartbeat(t, b, "b-run1", "b", back.Add(2*time.Second)))
	require.Zero(t, heartbeat(t, a, "a-run1", "a", back.Add(3*time.Second)), "a is back too")
	require.Zero(t, heartbeat(t, b, "b-run1", "b", back.Add(6*time.Second)))
	require.Equal(t, []string{"a-run1", "b-run1"}, nodeRows(t, schema))
}

// TestReleaseAllForgetsTheOwner: an owner that gives back every lease at
// shutdown leaves no heartbeat row behind for the others to time out.
func TestReleaseAllForgetsTheOwner(t *testing.T) {
	t.Parallel()
	s, schema := openMigrated(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.Zero(t, heartbeat(t, s, "run1", "n", now))
	require.Zero(t, heartbeat(t, s, "other", "m", now))
	_, err := s.ReleaseLeases(t.Context(), fanout.ReleaseParams{Owner: "run1", IDs: []int64{1}, Now: now})
	require.NoError(t, err)
	require.Equal(t, []string{"other", "run1"}, nodeRows(t, schema), "releasing some leases is not leaving")
	_, err = s.ReleaseLeases(t.Context(), fanout.ReleaseParams{Owner: "run1", Now: now})
	require.NoError(t, err)
	require.Equal(t, []string{"other"}, nodeRows(t, schema))
}

// TestReclaimOnTheServerClock: with a zero Now the heartbeat is the
// database server's time, whatever the node's clock says.
func TestReclaimOnTheServerClock(t *testing.T) {
	t.Parallel()
	s, schema := openMigrated(t)
	n, err := s.Reclaim(t.Context(), fanout.ReclaimParams{Owner: "run1", Node: "n", DeadAfter: 5 * time.Second})
	require.NoError(t, err)
	require.Zero(t, n)
	var fresh bool
	require.NoError(t, connect(t).QueryRow(t.Context(),
		"SELECT heartbeat_at > now() - interval '1 hour' AND heartbeat_at <= now() FROM "+pgx.Identifier{schema, "nodes"}.Sanitize()).Scan(&fresh))
	require.True(t, fresh)
}
