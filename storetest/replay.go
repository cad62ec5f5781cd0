package storetest

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// replay calls Replay and returns the count.
func (b *bundle) replay(p fanout.ReplayParams) int {
	b.t.Helper()
	n, err := b.store.Replay(b.ctx, p)
	require.NoError(b.t, err)
	return n
}

// requireFresh requires a delivery to be pending with no attempts, due at
// now.
func requireFresh(t *testing.T, d fanout.Delivery, now time.Time) {
	t.Helper()
	require.Equal(t, fanout.StatePending, d.State, "delivery %d", d.ID)
	require.Zero(t, d.Attempts, "delivery %d", d.ID)
	requireTime(t, now, d.NextAttemptAt, "delivery %d", d.ID)
}

// bulkReplaySetup leaves dead deliveries m1→a, m1→b (route r1, tenant t1,
// t0), m2→a (route r2, tenant t2, t0+1m) and a retrying m3→a (route r1,
// t0+2m).
type bulkReplaySetup struct{ m1, m2, m3 string }

func (b *bundle) bulkReplaySetup() bulkReplaySetup {
	b.t.Helper()
	send := func(route, tenant string, at time.Time, targets ...string) string {
		m := b.msg(route, at)
		m.Tenant = tenant
		b.accept(fanout.AcceptParams{Message: m, Targets: targets})
		return m.ID
	}
	s := bulkReplaySetup{
		m1: send("r1", "t1", b.t0, "a", "b"),
		m2: send("r2", "t2", b.at(time.Minute), "a"),
		m3: send("r1", "t1", b.at(2*time.Minute), "a"),
	}
	now := b.at(time.Hour)
	dead := outcome{fanout.StateDead, time.Time{}}
	b.settle("a", now, map[string]outcome{s.m1: dead, s.m2: dead, s.m3: {fanout.StateRetrying, now.Add(time.Hour)}})
	b.settle("b", now, map[string]outcome{s.m1: dead})
	return s
}

func replayTests() []test {
	return []test{
		{"MessageAllDeliveries", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a", "b")
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateSucceeded, time.Time{}}})
			b.settle("b", b.at(time.Minute), map[string]outcome{id: {fanout.StateDead, time.Time{}}})

			now := b.at(time.Hour)
			require.Equal(t, 2, b.replay(fanout.ReplayParams{MessageID: id, Now: now}))
			for _, d := range b.get(id).Deliveries {
				requireFresh(t, d, now)
			}
			require.Len(t, b.lease("a", "w", now, 10), 1)
			require.Len(t, b.lease("b", "w", now, 10), 1)
			require.Len(t, b.get(id).Attempts, 2, "history is kept")
		}},

		{"MessageOneTarget", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a", "b")
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateSucceeded, time.Time{}}})
			b.settle("b", b.at(time.Minute), map[string]outcome{id: {fanout.StateDead, time.Time{}}})

			now := b.at(time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{MessageID: id, Target: "b", Now: now}))
			requireFresh(t, b.delivery(id, "b"), now)
			require.Equal(t, fanout.StateSucceeded, b.delivery(id, "a").State)
		}},

		{"MessageSkipsDelivering", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a", "b")
			now := b.at(time.Minute)
			require.Len(t, b.lease("a", "w", now, 10), 1)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{MessageID: id, Now: now}))
			d := b.delivery(id, "a")
			require.Equal(t, fanout.StateDelivering, d.State)
			require.Equal(t, 1, d.Attempts)
		}},

		{"AttemptNumberCountsOn", func(t *testing.T, b *bundle) {
			// docs/delivery.md: a duplicate, an operator replay included,
			// arrives with a higher Fanout-Attempt. The budget starts
			// over; the number does not.
			id := b.send("r", b.t0, "a")
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateRetrying, b.at(2 * time.Minute)}})
			b.settle("a", b.at(2*time.Minute), map[string]outcome{id: {fanout.StateDead, time.Time{}}})
			d := b.delivery(id, "a")
			require.Equal(t, 2, d.Attempts)
			require.Equal(t, 2, d.AttemptNumber())

			now := b.at(time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{MessageID: id, Now: now}))
			d = b.delivery(id, "a")
			requireFresh(t, d, now)
			require.Equal(t, 2, d.AttemptsBefore, "the attempts before the replay are remembered")
			leased := b.lease("a", "w", now, 10)
			require.Len(t, leased, 1)
			require.Equal(t, 1, leased[0].Delivery.Attempts, "a fresh budget")
			require.Equal(t, 3, leased[0].Delivery.AttemptNumber(), "the third attempt")
			n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "w", Now: now})
			require.NoError(t, err)
			require.Equal(t, 1, n)

			// A bulk replay counts on the same way; Complete stores the
			// number, and one given as 0 defaults to it.
			b.settle("a", now, map[string]outcome{id: {fanout.StateDead, time.Time{}}})
			later := b.at(2 * time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{Target: "a", Now: later}))
			leased = b.lease("a", "w", later, 10)
			require.Len(t, leased, 1)
			require.Equal(t, 4, leased[0].Delivery.AttemptNumber())
			a := attempt(leased[0], later, http.StatusOK, fanout.ClassNone, "")
			a.Number = 0
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{DeliveryID: leased[0].Delivery.ID, Owner: "w",
				State: fanout.StateSucceeded, Now: later, Attempt: a}}))
			var numbers []int
			for _, a := range b.get(id).Attempts {
				numbers = append(numbers, a.Number)
			}
			require.Equal(t, []int{1, 2, 3, 4}, numbers)
			require.Equal(t, 4, b.delivery(id, "a").AttemptNumber())
		}},

		{"MessageNotFound", func(t *testing.T, b *bundle) {
			_, err := b.store.Replay(b.ctx, fanout.ReplayParams{MessageID: fanout.NewMessageID(), Now: b.t0})
			requireNotFound(t, err)
		}},

		{"MessageOtherTenant", func(t *testing.T, b *bundle) {
			m := b.msg("r", b.t0)
			m.Tenant = "acme"
			b.accept(fanout.AcceptParams{Message: m, Targets: []string{"a"}})
			_, err := b.store.Replay(b.ctx, fanout.ReplayParams{MessageID: m.ID, Tenant: "other", Now: b.t0})
			requireNotFound(t, err)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{MessageID: m.ID, Tenant: "acme", Now: b.t0}))
		}},

		{"BulkDeadByDefault", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 3, b.replay(fanout.ReplayParams{Now: now}))
			requireFresh(t, b.delivery(s.m1, "a"), now)
			requireFresh(t, b.delivery(s.m1, "b"), now)
			requireFresh(t, b.delivery(s.m2, "a"), now)
			require.Equal(t, fanout.StateRetrying, b.delivery(s.m3, "a").State)
			require.Zero(t, b.replay(fanout.ReplayParams{Now: now}), "nothing dead is left")
		}},

		{"BulkByTarget", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 2, b.replay(fanout.ReplayParams{Target: "a", Now: now}))
			requireFresh(t, b.delivery(s.m1, "a"), now)
			requireFresh(t, b.delivery(s.m2, "a"), now)
			require.Equal(t, fanout.StateDead, b.delivery(s.m1, "b").State)
		}},

		{"BulkByRoute", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 2, b.replay(fanout.ReplayParams{Route: "r1", Now: now}))
			requireFresh(t, b.delivery(s.m1, "a"), now)
			requireFresh(t, b.delivery(s.m1, "b"), now)
			require.Equal(t, fanout.StateDead, b.delivery(s.m2, "a").State)
		}},

		{"BulkByTenant", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{Tenant: "t2", Now: now}))
			requireFresh(t, b.delivery(s.m2, "a"), now)
			require.Equal(t, fanout.StateDead, b.delivery(s.m1, "a").State)
		}},

		{"BulkByState", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{State: fanout.StateRetrying, Now: now}))
			requireFresh(t, b.delivery(s.m3, "a"), now)
			require.Equal(t, fanout.StateDead, b.delivery(s.m1, "a").State)
		}},

		{"BulkByTime", func(t *testing.T, b *bundle) {
			s := b.bulkReplaySetup()
			now := b.at(2 * time.Hour)
			require.Equal(t, 1, b.replay(fanout.ReplayParams{Since: b.at(time.Minute), Until: b.at(2 * time.Minute), Now: now}))
			requireFresh(t, b.delivery(s.m2, "a"), now)
			require.Equal(t, 2, b.replay(fanout.ReplayParams{Until: b.at(time.Minute), Now: now}))
			requireFresh(t, b.delivery(s.m1, "a"), now)
			requireFresh(t, b.delivery(s.m1, "b"), now)
		}},

		{"BulkSkipsDelivering", func(t *testing.T, b *bundle) {
			b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			require.Len(t, b.lease("a", "w", now, 10), 1)
			require.Zero(t, b.replay(fanout.ReplayParams{State: fanout.StateDelivering, Now: now}))
		}},
	}
}

func backfillTests() []test {
	// Route r1 has m1 (t0, a), m2 (t0+1m, a and b) and m3 (t0+2m, a);
	// route r2 has m4 (t0+1m, a).
	type msgs struct{ m1, m2, m3, m4 string }
	setupBackfill := func(b *bundle) msgs {
		return msgs{
			m1: b.send("r1", b.t0, "a"),
			m2: b.send("r1", b.at(time.Minute), "a", "b"),
			m3: b.send("r1", b.at(2*time.Minute), "a"),
			m4: b.send("r2", b.at(time.Minute), "a"),
		}
	}
	backfill := func(b *bundle, p fanout.BackfillParams) int {
		b.t.Helper()
		n, err := b.store.Backfill(b.ctx, p)
		require.NoError(b.t, err)
		return n
	}
	return []test{
		{"OnlyMissing", func(t *testing.T, b *bundle) {
			m := setupBackfill(b)
			now := b.at(time.Hour)
			p := fanout.BackfillParams{Route: "r1", Target: "b", Since: b.t0, Until: now, Now: now}
			require.Equal(t, 2, backfill(b, p))
			requireFresh(t, b.delivery(m.m1, "b"), now)
			requireFresh(t, b.delivery(m.m3, "b"), now)
			require.Len(t, b.get(m.m2).Deliveries, 2)
			require.Len(t, b.get(m.m4).Deliveries, 1, "another route is not backfilled")
			require.ElementsMatch(t, []string{m.m1, m.m2, m.m3}, leasedIDs(b.lease("b", "w", now, 10)))

			require.Zero(t, backfill(b, p), "a second backfill finds nothing missing")
		}},

		{"TimeRange", func(t *testing.T, b *bundle) {
			m := setupBackfill(b)
			now := b.at(time.Hour)
			require.Equal(t, 1, backfill(b, fanout.BackfillParams{
				Route: "r1", Target: "c", Since: b.at(time.Minute), Until: b.at(2 * time.Minute), Now: now,
			}))
			require.Equal(t, []string{m.m2}, leasedIDs(b.lease("c", "w", now, 10)), "since is inclusive, until exclusive")
		}},

		{"UntilDefaultsToNow", func(t *testing.T, b *bundle) {
			m := setupBackfill(b)
			now := b.at(90 * time.Second)
			require.Equal(t, 2, backfill(b, fanout.BackfillParams{Route: "r1", Target: "c", Since: b.t0, Now: now}))
			require.ElementsMatch(t, []string{m.m1, m.m2}, leasedIDs(b.lease("c", "w", now, 10)))
		}},
	}
}
