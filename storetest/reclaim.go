package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// deadAfter is the heartbeat timeout the Reclaim tests use.
const deadAfter = 5 * time.Second

// reclaim calls Reclaim for owner of node at now and returns how many
// deliveries it took back.
func (b *bundle) reclaim(owner, node string, now time.Time) int {
	b.t.Helper()
	n, err := b.store.Reclaim(b.ctx, fanout.ReclaimParams{Owner: owner, Node: node, Now: now, DeadAfter: deadAfter})
	require.NoError(b.t, err)
	return n
}

func reclaimTests() []test {
	return []test{
		{"RestartTakesBackTheDeadRunsLeases", func(t *testing.T, b *bundle) {
			ids := []string{b.send("r", b.t0, "a"), b.send("r", b.at(time.Second), "a"), b.send("r", b.at(2*time.Second), "a")}
			other := b.send("r", b.t0, "b")
			now := b.at(time.Minute)
			require.Zero(t, b.reclaim("run1", "node1", now))
			require.Len(t, b.lease("a", "run1", now, 2), 2)
			require.Len(t, b.lease("b", "run1", now, 1), 1)

			// The process is killed: nothing given back. It starts again
			// at once, long before its leases (leaseFor) expire.
			b.restart()
			later := now.Add(time.Second)
			require.Equal(t, 3, b.reclaim("run2", "node1", later))
			for _, id := range ids[:2] {
				d := b.delivery(id, "a")
				require.Equal(t, fanout.StateRetrying, d.State, "taken back")
				require.Equal(t, 1, d.Attempts, "the dead run's attempt counts: it may have been sent")
				requireTime(t, later, d.UpdatedAt)
			}
			require.Equal(t, fanout.StateRetrying, b.delivery(other, "b").State)
			require.Equal(t, fanout.StatePending, b.delivery(ids[2], "a").State, "never leased")

			again := b.lease("a", "run2", later, 10)
			require.ElementsMatch(t, ids, leasedIDs(again), "due at once")
			for _, ld := range again {
				want := 2
				if ld.Delivery.MessageID == ids[2] {
					want = 1
				}
				require.Equal(t, want, ld.Delivery.Attempts, "Fanout-Attempt counts on from the dead run's")
			}
			require.Zero(t, b.reclaim("run2", "node1", later.Add(time.Second)), "nothing left to take back")
		}},

		{"KeepsTheCallersLeases", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			require.Zero(t, b.reclaim("w", "node1", now))
			require.Len(t, b.lease("a", "w", now, 10), 1)
			require.Zero(t, b.reclaim("w", "node1", now.Add(time.Second)))
			require.Zero(t, b.reclaim("w", "node1", now.Add(time.Hour)), "however late: the caller is alive")
			require.Equal(t, fanout.StateDelivering, b.delivery(id, "a").State)
		}},

		{"LiveOwnersThatHeartbeatKeepTheirLeases", func(t *testing.T, b *bundle) {
			// Two owners on one store, or two nodes on one database, each
			// heartbeating well within deadAfter while a slow attempt runs.
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			require.Zero(t, b.reclaim("slow", "node1", now))
			require.Zero(t, b.reclaim("other", "node2", now))
			leased := b.lease("a", "slow", now, 10)
			require.Len(t, leased, 1)
			for i := 1; i <= 10; i++ { // 40s of heartbeats, 4s apart
				at := now.Add(time.Duration(i) * 4 * time.Second)
				require.Zero(t, b.reclaim("slow", "node1", at))
				require.Zero(t, b.reclaim("other", "node2", at.Add(3*time.Second)), "heartbeat %d", i)
			}
			require.Equal(t, fanout.StateDelivering, b.delivery(id, "a").State)

			// The slow attempt ends: its outcome is recorded.
			done := now.Add(41 * time.Second)
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: leased[0].Delivery.ID, Owner: "slow", State: fanout.StateSucceeded, Now: done,
				Attempt: attempt(leased[0], now, 200, "", ""),
			}}))
			require.Equal(t, fanout.StateSucceeded, b.delivery(id, "a").State)
		}},
	}
}
