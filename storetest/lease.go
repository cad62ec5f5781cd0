package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func leaseTests() []test {
	return []test{
		{"OnlyDueOfTarget", func(t *testing.T, b *bundle) {
			due := b.send("r", b.t0, "a", "b")
			b.send("r", b.at(10*time.Minute), "a") // not due yet
			b.send("r", b.t0, "b")                 // another target

			leased := b.lease("a", "w", b.at(time.Minute), 10)
			require.Equal(t, []string{due}, leasedIDs(leased))

			ld := leased[0]
			require.Equal(t, "a", ld.Delivery.Target)
			require.Equal(t, "r", ld.Delivery.Route)
			want := b.get(due).Message
			require.Equal(t, want.ID, ld.Message.ID)
			require.Equal(t, want.Body, ld.Message.Body)
			require.Equal(t, want.Header, ld.Message.Header)
			require.Equal(t, want.Method, ld.Message.Method)
			require.Equal(t, want.Path, ld.Message.Path)
			requireTime(t, want.ReceivedAt, ld.Message.ReceivedAt)
		}},

		{"LimitOldestFirst", func(t *testing.T, b *bundle) {
			var ids []string
			for i := range 5 {
				// Accepted newest first, so insertion order is not the answer.
				ids = append([]string{b.send("r", b.at(time.Duration(5-i)*time.Second), "a")}, ids...)
			}
			now := b.at(time.Minute)
			require.Equal(t, ids[:3], leasedIDs(b.lease("a", "w1", now, 3)))
			require.Equal(t, ids[3:], leasedIDs(b.lease("a", "w2", now, 3)))
			require.Empty(t, b.lease("a", "w3", now, 3))
		}},

		{"MarksDelivering", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			leased := b.lease("a", "w", now, 10)
			require.Len(t, leased, 1)
			require.Equal(t, fanout.StateDelivering, leased[0].Delivery.State)
			require.Equal(t, 1, leased[0].Delivery.Attempts)

			d := b.delivery(id, "a")
			require.Equal(t, fanout.StateDelivering, d.State)
			require.Equal(t, 1, d.Attempts)
			requireTime(t, now, d.UpdatedAt)
		}},

		{"LeasedUntilExpiry", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			require.Len(t, b.lease("a", "w1", now, 10), 1)
			require.Empty(t, b.lease("a", "w2", now, 10))
			require.Empty(t, b.lease("a", "w2", now.Add(leaseFor-time.Second), 10), "the lease has not expired")

			again := b.lease("a", "w2", now.Add(leaseFor+time.Second), 10)
			require.Equal(t, []string{id}, leasedIDs(again), "an expired lease is taken by another owner")
			require.Equal(t, 2, again[0].Delivery.Attempts)
		}},

		{"ZeroLimit", func(t *testing.T, b *bundle) {
			b.send("r", b.t0, "a")
			require.Empty(t, b.lease("a", "w", b.at(time.Minute), 0))
		}},

		{"ConcurrentLeasersNeverShare", func(t *testing.T, b *bundle) {
			const total, workers, limit = 400, 4, 7
			for batch := range total / 100 {
				var params []fanout.AcceptParams
				for i := range 100 {
					params = append(params, fanout.AcceptParams{
						Message: b.msg("r", b.at(time.Duration(batch*100+i)*time.Millisecond)),
						Targets: []string{"a"},
					})
				}
				b.accept(params...)
			}
			now := b.at(time.Hour)
			got := make([][]int64, workers)
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					// Bounded: a store that leased rows twice would never
					// run out.
					for range total {
						leased, err := b.store.Lease(b.ctx, fanout.LeaseParams{
							Target: "a", Owner: fmt.Sprintf("w%d", w), Limit: limit, Now: now, LeaseFor: time.Hour,
						})
						if err != nil {
							errs[w] = err
							return
						}
						if len(leased) == 0 {
							return
						}
						for _, ld := range leased {
							got[w] = append(got[w], ld.Delivery.ID)
						}
					}
				})
			}
			wg.Wait()
			seen := map[int64]int{}
			for w := range workers {
				require.NoError(t, errs[w])
				for _, id := range got[w] {
					seen[id]++
				}
			}
			require.Len(t, seen, total, "every delivery leased")
			for id, n := range seen {
				require.Equal(t, 1, n, "delivery %d leased %d times", id, n)
			}
		}},
	}
}

func completeTests() []test {
	return []test{
		{"Succeeded", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			ld := b.lease("a", "w", now, 1)[0]
			a := attempt(ld, now, 201, fanout.ClassNone, "")
			done := now.Add(time.Second)
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: ld.Delivery.ID, Owner: "w", Attempt: a, State: fanout.StateSucceeded, Now: done,
			}}))

			md := b.get(id)
			d := md.Deliveries[0]
			require.Equal(t, fanout.StateSucceeded, d.State)
			require.Equal(t, 1, d.Attempts)
			require.Equal(t, 201, d.LastStatus)
			require.Empty(t, d.LastError)
			require.Equal(t, fanout.ClassNone, d.LastClass)
			requireTime(t, done, d.UpdatedAt)

			require.Len(t, md.Attempts, 1)
			got := md.Attempts[0]
			require.NotZero(t, got.ID)
			require.Equal(t, ld.Delivery.ID, got.DeliveryID)
			require.Equal(t, id, got.MessageID)
			require.Equal(t, "a", got.Target)
			require.Equal(t, 1, got.Number)
			requireTime(t, now, got.StartedAt)
			require.Equal(t, a.Duration, got.Duration)
			require.Equal(t, a.RequestMethod, got.RequestMethod)
			require.Equal(t, a.RequestURL, got.RequestURL)
			require.Equal(t, a.RequestHeader, got.RequestHeader)
			require.Equal(t, 201, got.Status)
			require.Equal(t, a.ResponseHeader, got.ResponseHeader)
			require.Equal(t, a.ResponseBody, got.ResponseBody)
			require.Equal(t, fanout.ClassNone, got.Class)
			require.Empty(t, got.Error)

			require.Empty(t, b.lease("a", "w", b.at(1000*time.Hour), 10), "a succeeded delivery is never leased again")
		}},

		// What a target answers is not the store's to refuse: an error
		// text or URL with bytes that are not UTF-8, or a NUL (a malformed
		// response quoted in a transport error), is recorded, so the
		// delivery does not stay leased and fail its completion forever.
		// An engine that keeps only text may replace those bytes.
		{"AnyErrorTextIsRecorded", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			ld := b.lease("a", "w", now, 1)[0]
			a := attempt(ld, now, 0, fanout.ClassOther, "malformed MIME header line: \xff\xfe\x00bad")
			a.RequestURL += "?q=\xff\x00"
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: ld.Delivery.ID, Owner: "w", Attempt: a, State: fanout.StateDead, Now: now,
			}}))
			md := b.get(id)
			require.Equal(t, fanout.StateDead, md.Deliveries[0].State)
			require.Contains(t, md.Deliveries[0].LastError, "malformed MIME header line")
			require.Contains(t, md.Deliveries[0].LastError, "bad")
			require.Len(t, md.Attempts, 1)
			require.Contains(t, md.Attempts[0].Error, "bad")
			require.True(t, strings.HasPrefix(md.Attempts[0].RequestURL, "http://a.test/in?q="), md.Attempts[0].RequestURL)
		}},

		// A failed probe of a half-open circuit is recorded but spends
		// none of the budget: the next lease has the same Attempts and the
		// next attempt number.
		{"UncountedKeepsTheBudget", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			ld := b.lease("a", "w", now, 1)[0]
			require.Equal(t, 1, ld.Delivery.Attempts)
			for i := range 3 {
				a := attempt(ld, now, 0, fanout.ClassConnect, "connection refused")
				require.Equal(t, i+1, a.Number)
				require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
					DeliveryID: ld.Delivery.ID, Owner: "w", Attempt: a, State: fanout.StateRetrying,
					NextAttemptAt: now, Uncounted: true, Now: now,
				}}))
				d := b.delivery(id, "a")
				require.Equal(t, fanout.StateRetrying, d.State)
				require.Equal(t, 0, d.Attempts, "no attempt spent")
				require.Equal(t, i+1, d.AttemptsBefore)
				require.Equal(t, fanout.ClassConnect, d.LastClass)
				now = now.Add(time.Second)
				again := b.lease("a", "w", now, 1)
				require.Len(t, again, 1)
				ld = again[0]
				require.Equal(t, 1, ld.Delivery.Attempts, "the budget is whole again")
				require.Equal(t, i+2, ld.Delivery.AttemptNumber())
			}
			a := attempt(ld, now, 200, fanout.ClassNone, "")
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: ld.Delivery.ID, Owner: "w", Attempt: a, State: fanout.StateSucceeded, Now: now,
			}}))
			md := b.get(id)
			require.Equal(t, 1, md.Deliveries[0].Attempts)
			require.Len(t, md.Attempts, 4, "every probe is recorded")
			var numbers []int
			for _, at := range md.Attempts {
				numbers = append(numbers, at.Number)
			}
			require.ElementsMatch(t, []int{1, 2, 3, 4}, numbers)
		}},

		{"RetryingHonoursNextAttempt", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			next := now.Add(5 * time.Minute)
			b.settle("a", now, map[string]outcome{id: {fanout.StateRetrying, next}})

			d := b.delivery(id, "a")
			require.Equal(t, fanout.StateRetrying, d.State)
			require.Equal(t, 1, d.Attempts)
			requireTime(t, next, d.NextAttemptAt)
			require.Equal(t, 503, d.LastStatus)
			require.Equal(t, "503 Service Unavailable", d.LastError)
			require.Equal(t, fanout.ClassStatus, d.LastClass)

			require.Empty(t, b.lease("a", "w", next.Add(-time.Second), 10), "not due before its next attempt")
			again := b.lease("a", "w", next, 10)
			require.Equal(t, []string{id}, leasedIDs(again))
			require.Equal(t, 2, again[0].Delivery.Attempts)
		}},

		{"Dead", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			ld := b.lease("a", "w", now, 1)[0]
			a := attempt(ld, now, 0, fanout.ClassConnect, "dial tcp: connection refused")
			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: ld.Delivery.ID, Owner: "w", Attempt: a, State: fanout.StateDead, Now: now,
			}}))

			d := b.delivery(id, "a")
			require.Equal(t, fanout.StateDead, d.State)
			require.Equal(t, 0, d.LastStatus)
			require.Equal(t, "dial tcp: connection refused", d.LastError)
			require.Equal(t, fanout.ClassConnect, d.LastClass)
			require.Empty(t, b.lease("a", "w", b.at(1000*time.Hour), 10), "a dead delivery is never leased again")
		}},

		{"AttemptsOldestFirst", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			first := b.at(time.Minute)
			b.settle("a", first, map[string]outcome{id: {fanout.StateRetrying, first.Add(time.Minute)}})
			second := first.Add(time.Minute)
			b.settle("a", second, map[string]outcome{id: {fanout.StateSucceeded, time.Time{}}})

			md := b.get(id)
			require.Equal(t, fanout.StateSucceeded, md.Deliveries[0].State)
			require.Equal(t, 2, md.Deliveries[0].Attempts)
			require.Len(t, md.Attempts, 2)
			require.Equal(t, 1, md.Attempts[0].Number)
			requireTime(t, first, md.Attempts[0].StartedAt)
			require.Equal(t, 503, md.Attempts[0].Status)
			require.Equal(t, 2, md.Attempts[1].Number)
			requireTime(t, second, md.Attempts[1].StartedAt)
			require.Equal(t, 200, md.Attempts[1].Status)
		}},

		{"Batch", func(t *testing.T, b *bundle) {
			ids := []string{b.send("r", b.t0, "a"), b.send("r", b.t0, "a"), b.send("r", b.t0, "a")}
			now := b.at(time.Minute)
			b.settle("a", now, map[string]outcome{
				ids[0]: {fanout.StateSucceeded, time.Time{}},
				ids[1]: {fanout.StateRetrying, now.Add(time.Hour)},
				ids[2]: {fanout.StateDead, time.Time{}},
			})
			require.Equal(t, fanout.StateSucceeded, b.delivery(ids[0], "a").State)
			require.Equal(t, fanout.StateRetrying, b.delivery(ids[1], "a").State)
			require.Equal(t, fanout.StateDead, b.delivery(ids[2], "a").State)
			for _, id := range ids {
				require.Len(t, b.get(id).Attempts, 1)
			}
		}},

		{"LostLeaseLeavesDeliveryAlone", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			slow := b.lease("a", "slow", now, 1)[0]
			later := now.Add(leaseFor + time.Second)
			fast := b.lease("a", "fast", later, 1)[0]
			require.Equal(t, slow.Delivery.ID, fast.Delivery.ID)

			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: slow.Delivery.ID, Owner: "slow", State: fanout.StateSucceeded, Now: later,
				Attempt: attempt(slow, now, 200, fanout.ClassNone, ""),
			}}))
			md := b.get(id)
			require.Equal(t, fanout.StateDelivering, md.Deliveries[0].State, "the new owner keeps it")
			require.Equal(t, 2, md.Deliveries[0].Attempts)
			require.Len(t, md.Attempts, 1, "the lost attempt is still recorded")

			require.NoError(t, b.store.Complete(b.ctx, []fanout.CompleteParams{{
				DeliveryID: fast.Delivery.ID, Owner: "fast", State: fanout.StateDead, Now: later,
				Attempt: attempt(fast, later, 400, fanout.ClassStatus, "400 Bad Request"),
			}}))
			md = b.get(id)
			require.Equal(t, fanout.StateDead, md.Deliveries[0].State)
			require.Len(t, md.Attempts, 2)
		}},

		{"RejectsOtherStates", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			ld := b.lease("a", "w", now, 1)[0]
			for _, state := range []fanout.DeliveryState{fanout.StatePending, fanout.StateDelivering, "bogus"} {
				err := b.store.Complete(b.ctx, []fanout.CompleteParams{{
					DeliveryID: ld.Delivery.ID, Owner: "w", State: state, Now: now,
					Attempt: attempt(ld, now, 200, fanout.ClassNone, ""),
				}})
				require.Error(t, err, "state %q", state)
			}
			md := b.get(id)
			require.Equal(t, fanout.StateDelivering, md.Deliveries[0].State)
			require.Empty(t, md.Attempts)
		}},
	}
}

func releaseTests() []test {
	return []test{
		{"All", func(t *testing.T, b *bundle) {
			ids := []string{b.send("r", b.t0, "a"), b.send("r", b.at(time.Second), "a"), b.send("r", b.at(2*time.Second), "a")}
			other := b.send("r", b.t0, "b")
			now := b.at(time.Minute)
			require.Len(t, b.lease("a", "w1", now, 10), 3)
			require.Len(t, b.lease("b", "w2", now, 10), 1)

			n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "w1", Now: now})
			require.NoError(t, err)
			require.Equal(t, 3, n)
			for _, id := range ids {
				d := b.delivery(id, "a")
				require.Equal(t, fanout.StatePending, d.State)
				require.Zero(t, d.Attempts, "a released lease gives its attempt back")
			}
			require.Equal(t, fanout.StateDelivering, b.delivery(other, "b").State, "another owner's lease is kept")

			again := b.lease("a", "w3", now, 10)
			require.ElementsMatch(t, ids, leasedIDs(again), "due again at once")
			require.Equal(t, 1, again[0].Delivery.Attempts)
		}},

		{"ByIDs", func(t *testing.T, b *bundle) {
			b.send("r", b.t0, "a")
			b.send("r", b.at(time.Second), "a")
			now := b.at(time.Minute)
			leased := b.lease("a", "w", now, 10)
			require.Len(t, leased, 2)

			n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "w", IDs: []int64{leased[1].Delivery.ID}, Now: now})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			again := b.lease("a", "w", now, 10)
			require.Len(t, again, 1)
			require.Equal(t, leased[1].Delivery.ID, again[0].Delivery.ID)
		}},

		{"OtherOwner", func(t *testing.T, b *bundle) {
			b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			leased := b.lease("a", "w", now, 10)
			n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "nobody", Now: now})
			require.NoError(t, err)
			require.Zero(t, n)
			n, err = b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "nobody", IDs: []int64{leased[0].Delivery.ID}, Now: now})
			require.NoError(t, err)
			require.Zero(t, n)
			require.Empty(t, b.lease("a", "w2", now, 10))
		}},

		{"RetryingKeepsEarlierAttempts", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			b.settle("a", now, map[string]outcome{id: {fanout.StateRetrying, now.Add(time.Minute)}})
			later := now.Add(2 * time.Minute)
			require.Len(t, b.lease("a", "w", later, 10), 1)
			n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: "w", Now: later})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			d := b.delivery(id, "a")
			require.Equal(t, 1, d.Attempts)
			require.NotEqual(t, fanout.StateDelivering, d.State)
			require.Len(t, b.lease("a", "w", later, 10), 1)
		}},
	}
}

func nextDueTests() []test {
	nextDue := func(b *bundle, target string) (time.Time, bool) {
		b.t.Helper()
		at, ok, err := b.store.NextDue(b.ctx, target)
		require.NoError(b.t, err)
		return at, ok
	}
	return []test{
		{"Nothing", func(t *testing.T, b *bundle) {
			_, ok := nextDue(b, "a")
			require.False(t, ok)
			b.send("r", b.t0, "b")
			_, ok = nextDue(b, "a")
			require.False(t, ok, "another target's work does not count")
		}},

		{"Pending", func(t *testing.T, b *bundle) {
			b.send("r", b.at(time.Minute), "a")
			b.send("r", b.at(30*time.Second), "a")
			at, ok := nextDue(b, "a")
			require.True(t, ok)
			requireTime(t, b.at(30*time.Second), at)
		}},

		{"RetryingInFuture", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			next := b.at(time.Hour)
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateRetrying, next}})
			at, ok := nextDue(b, "a")
			require.True(t, ok)
			requireTime(t, next, at)
		}},

		{"LeaseExpiry", func(t *testing.T, b *bundle) {
			b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			require.Len(t, b.lease("a", "w", now, 10), 1)
			at, ok := nextDue(b, "a")
			require.True(t, ok)
			requireTime(t, now.Add(leaseFor), at, "a leased delivery is due again when its lease expires")
		}},

		{"Finished", func(t *testing.T, b *bundle) {
			ok1 := b.send("r", b.t0, "a")
			dead := b.send("r", b.t0, "a")
			b.settle("a", b.at(time.Minute), map[string]outcome{
				ok1:  {fanout.StateSucceeded, time.Time{}},
				dead: {fanout.StateDead, time.Time{}},
			})
			_, ok := nextDue(b, "a")
			require.False(t, ok)
		}},
	}
}
