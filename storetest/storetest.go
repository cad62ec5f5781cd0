package storetest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// Run runs the contract tests of fanout.Store as subtests of t, grouped by
// method. Each test runs in parallel with the others on its own database:
// newDatabase must create a new, empty database each time it is called and
// return a function that opens a store on it; every store that function
// returns must be closed when the test ends (t.Cleanup; Close is
// idempotent). A test opens its first store at once, and may close it and
// open another on the same database to play a process that restarts.
// Run migrates every store it opens.
func Run(t *testing.T, newDatabase func(t *testing.T) func() fanout.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Migrate", migrateTests()},
		{"Accept", acceptTests()},
		{"Idempotency", idempotencyTests()},
		{"Lease", leaseTests()},
		{"Complete", completeTests()},
		{"ReleaseLeases", releaseTests()},
		{"Reclaim", reclaimTests()},
		{"NextDue", nextDueTests()},
		{"GetMessage", getMessageTests()},
		{"ListMessages", listMessagesTests()},
		{"Replay", replayTests()},
		{"Backfill", backfillTests()},
		{"DeleteMessage", deleteMessageTests()},
		{"Purge", purgeTests()},
		{"Backlog", backlogTests()},
		{"Steps", stepsTests()},
		{"Access", accessTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, setup(t, newDatabase))
				})
			}
		})
	}
}

// test is one contract test.
type test struct {
	name string
	run  func(t *testing.T, b *bundle)
}

// bundle is what every test starts from: a migrated empty store and a
// fixed clock.
type bundle struct {
	t     *testing.T
	ctx   context.Context
	store fanout.Store
	open  func() fanout.Store // another store on the same database
	// t0 is the start of the test's clock, millisecond aligned, in UTC.
	t0 time.Time
}

// setup returns a bundle around a new migrated store.
func setup(t *testing.T, newDatabase func(t *testing.T) func() fanout.Store) *bundle {
	t.Helper()
	open := newDatabase(t)
	s := open()
	require.NoError(t, s.Migrate(t.Context()))
	return &bundle{
		t:     t,
		ctx:   t.Context(),
		store: s,
		open:  open,
		t0:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// restart plays a process that dies and starts again: the store is closed
// with nothing given back (Close releases no lease) and a new one opened
// on the same database.
func (b *bundle) restart() {
	b.t.Helper()
	require.NoError(b.t, b.store.Close())
	b.store = b.open()
	require.NoError(b.t, b.store.Migrate(b.ctx))
}

// at is t0 plus d.
func (b *bundle) at(d time.Duration) time.Time { return b.t0.Add(d) }

// leaseFor is the lease the helpers take.
const leaseFor = time.Minute

// msg returns a message of route received at, with a new id.
func (b *bundle) msg(route string, at time.Time) fanout.Message {
	return fanout.Message{
		ID:         fanout.NewMessageID(),
		Route:      route,
		Method:     http.MethodPost,
		Path:       "/in",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"n":1}`),
		ReceivedAt: at,
	}
}

// accept calls Accept and requires it to succeed with one result per
// param.
func (b *bundle) accept(params ...fanout.AcceptParams) []fanout.AcceptResult {
	b.t.Helper()
	res, err := b.store.Accept(b.ctx, params)
	require.NoError(b.t, err)
	require.Len(b.t, res, len(params))
	return res
}

// send accepts one message of route received at for targets and returns
// its id.
func (b *bundle) send(route string, at time.Time, targets ...string) string {
	b.t.Helper()
	m := b.msg(route, at)
	res := b.accept(fanout.AcceptParams{Message: m, Targets: targets})
	require.Equal(b.t, m.ID, res[0].MessageID)
	require.False(b.t, res[0].Replayed)
	return m.ID
}

// lease leases up to limit deliveries of target for leaseFor.
func (b *bundle) lease(target, owner string, now time.Time, limit int) []fanout.LeasedDelivery {
	b.t.Helper()
	got, err := b.store.Lease(b.ctx, fanout.LeaseParams{
		Target: target, Owner: owner, Limit: limit, Now: now, LeaseFor: leaseFor,
	})
	require.NoError(b.t, err)
	return got
}

// attempt returns an attempt of a leased delivery started at now.
func attempt(ld fanout.LeasedDelivery, now time.Time, status int, class fanout.ErrorClass, errText string) fanout.Attempt {
	return fanout.Attempt{
		DeliveryID:     ld.Delivery.ID,
		MessageID:      ld.Delivery.MessageID,
		Target:         ld.Delivery.Target,
		Number:         ld.Delivery.AttemptNumber(),
		StartedAt:      now,
		Duration:       12345 * time.Microsecond,
		RequestMethod:  http.MethodPost,
		RequestURL:     "http://" + ld.Delivery.Target + ".test/in",
		RequestHeader:  http.Header{"Idempotency-Key": {ld.Delivery.MessageID}, "Authorization": {"[redacted]"}},
		Status:         status,
		ResponseHeader: http.Header{"Content-Type": {"text/plain"}},
		ResponseBody:   []byte("response " + ld.Delivery.Target),
		Class:          class,
		Error:          errText,
	}
}

// outcome is how settle ends a delivery.
type outcome struct {
	state fanout.DeliveryState
	next  time.Time // retrying: due again then
}

// settle leases every due delivery of target at now and completes those of
// the messages in want with their outcome; it releases the others.
func (b *bundle) settle(target string, now time.Time, want map[string]outcome) {
	b.t.Helper()
	const owner = "settle"
	leased := b.lease(target, owner, now, 1000)
	var done []fanout.CompleteParams
	var release []int64
	for _, ld := range leased {
		o, ok := want[ld.Delivery.MessageID]
		if !ok {
			release = append(release, ld.Delivery.ID)
			continue
		}
		cp := fanout.CompleteParams{DeliveryID: ld.Delivery.ID, Owner: owner, State: o.state, NextAttemptAt: o.next, Now: now}
		switch o.state {
		case fanout.StateSucceeded:
			cp.Attempt = attempt(ld, now, http.StatusOK, fanout.ClassNone, "")
		case fanout.StateRetrying:
			cp.Attempt = attempt(ld, now, http.StatusServiceUnavailable, fanout.ClassStatus, "503 Service Unavailable")
		default:
			cp.Attempt = attempt(ld, now, http.StatusBadRequest, fanout.ClassStatus, "400 Bad Request")
		}
		done = append(done, cp)
	}
	require.Len(b.t, done, len(want), "settle %s: not every message had a due delivery", target)
	require.NoError(b.t, b.store.Complete(b.ctx, done))
	if len(release) > 0 {
		n, err := b.store.ReleaseLeases(b.ctx, fanout.ReleaseParams{Owner: owner, IDs: release, Now: now})
		require.NoError(b.t, err)
		require.Equal(b.t, len(release), n)
	}
}

// get returns a message that must exist.
func (b *bundle) get(id string) fanout.MessageDetail {
	b.t.Helper()
	md, err := b.store.GetMessage(b.ctx, id)
	require.NoError(b.t, err)
	return md
}

// delivery returns the delivery of message id to target.
func (b *bundle) delivery(id, target string) fanout.Delivery {
	b.t.Helper()
	for _, d := range b.get(id).Deliveries {
		if d.Target == target {
			return d
		}
	}
	require.Failf(b.t, "no delivery", "message %s has no delivery to %s", id, target)
	return fanout.Delivery{}
}

// leasedIDs returns the message ids of leased deliveries, in order.
func leasedIDs(leased []fanout.LeasedDelivery) []string {
	ids := make([]string, len(leased))
	for i, ld := range leased {
		ids[i] = ld.Delivery.MessageID
	}
	return ids
}

// requireTime requires got to be want to the millisecond, in UTC.
func requireTime(t *testing.T, want, got time.Time, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, time.UTC, got.Location(), msgAndArgs...)
	require.WithinDuration(t, want, got, time.Millisecond, msgAndArgs...)
}

// requireNotFound requires err to wrap fanout.ErrNotFound.
func requireNotFound(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, fanout.ErrNotFound)
}

func migrateTests() []test {
	return []test{
		{"Idempotent", func(t *testing.T, b *bundle) {
			// setup migrated once already.
			require.NoError(t, b.store.Migrate(b.ctx))
			require.NoError(t, b.store.Migrate(b.ctx))
			id := b.send("r", b.t0, "a")
			require.NoError(t, b.store.Migrate(b.ctx))
			b.get(id)
		}},
	}
}
