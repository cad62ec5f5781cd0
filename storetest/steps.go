package storetest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// stepsMessage accepts a message of an async steps route: auth (to
// authapi), then data and audit (both to userdata) after auth, then
// notify (to hook) after data and audit. It returns the message id.
func (b *bundle) stepsMessage(at time.Time) string {
	b.t.Helper()
	m := b.msg("signup", at)
	res := b.accept(fanout.AcceptParams{Message: m, Steps: []fanout.AcceptStep{
		{Name: "auth", Target: "authapi"},
		{Name: "data", Target: "userdata", After: []string{"auth"}},
		{Name: "audit", Target: "userdata", After: []string{"auth"}},
		{Name: "notify", Target: "hook", After: []string{"data", "audit"}},
	}})
	require.Equal(b.t, m.ID, res[0].MessageID)
	return m.ID
}

// steps returns the state of each step of a message, by step name.
func (b *bundle) steps(id string) map[string]fanout.DeliveryState {
	b.t.Helper()
	out := map[string]fanout.DeliveryState{}
	for _, d := range b.get(id).Deliveries {
		require.NotEmpty(b.t, d.Step, "delivery %d of a steps message has no step", d.ID)
		out[d.Step] = d.State
	}
	return out
}

// step returns the delivery of one step of a message.
func (b *bundle) step(id, name string) fanout.Delivery {
	b.t.Helper()
	for _, d := range b.get(id).Deliveries {
		if d.Step == name {
			return d
		}
	}
	require.Failf(b.t, "no step", "message %s has no step %s", id, name)
	return fanout.Delivery{}
}

// completeStep leases the due deliveries of target at now, requires them
// to be the given steps of message id, and completes them in state; a
// succeeded step keeps response.
func (b *bundle) completeStep(id, target string, now time.Time, state fanout.DeliveryState, response fanout.StepResponse, steps ...string) []fanout.LeasedDelivery {
	b.t.Helper()
	leased := b.lease(target, "w", now, 100)
	var names []string
	var done []fanout.CompleteParams
	for _, ld := range leased {
		require.Equal(b.t, id, ld.Delivery.MessageID)
		names = append(names, ld.Delivery.Step)
		status, class := http.StatusOK, fanout.ClassNone
		if state != fanout.StateSucceeded {
			status, class = http.StatusBadRequest, fanout.ClassStatus
		}
		cp := fanout.CompleteParams{
			DeliveryID: ld.Delivery.ID, Owner: "w", State: state, Now: now,
			Attempt: attempt(ld, now, status, class, ""),
			Step:    &fanout.StepCompletion{MessageID: id, Response: response},
		}
		if state == fanout.StateRetrying {
			cp.NextAttemptAt = now.Add(time.Minute)
		}
		done = append(done, cp)
	}
	slices.Sort(names)
	want := slices.Clone(steps)
	slices.Sort(want)
	require.Equal(b.t, want, names, "steps leased from %s", target)
	require.NoError(b.t, b.store.Complete(b.ctx, done))
	return leased
}

var tokenResponse = fanout.StepResponse{
	Status: http.StatusCreated,
	Header: http.Header{"Content-Type": {"application/json"}},
	Body:   []byte(`{"token":"t-123"}`),
}

func stepsTests() []test {
	return []test{
		{"AcceptBlocksDependents", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			require.Equal(t, map[string]fanout.DeliveryState{
				"auth": fanout.StatePending, "data": fanout.StateBlocked,
				"audit": fanout.StateBlocked, "notify": fanout.StateBlocked,
			}, b.steps(id))
			d := b.step(id, "notify")
			require.Equal(t, "hook", d.Target)
			require.Equal(t, []string{"data", "audit"}, d.After)
			require.Empty(t, b.step(id, "auth").After)

			// Blocked steps are not due: nothing to lease, nothing next.
			require.Empty(t, b.lease("userdata", "w", b.at(time.Hour), 10))
			_, ok, err := b.store.NextDue(b.ctx, "userdata")
			require.NoError(t, err)
			require.False(t, ok)
		}},
		{"SuccessUnblocksWithResponses", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			leased := b.completeStep(id, "authapi", b.at(time.Second), fanout.StateSucceeded, tokenResponse, "auth")
			require.Empty(t, leased[0].Steps, "a first step has no earlier responses")
			require.Equal(t, map[string]fanout.DeliveryState{
				"auth": fanout.StateSucceeded, "data": fanout.StatePending,
				"audit": fanout.StatePending, "notify": fanout.StateBlocked,
			}, b.steps(id))
			d := b.step(id, "data")
			requireTime(t, b.at(time.Second), d.NextAttemptAt)
			require.Zero(t, d.Attempts)

			// Both steps to userdata are leased, each with auth's response.
			leased = b.lease("userdata", "w", b.at(2*time.Second), 10)
			require.Len(t, leased, 2)
			for _, ld := range leased {
				got, ok := ld.Steps["auth"]
				require.True(t, ok, "step %s leased without auth's response", ld.Delivery.Step)
				require.Equal(t, tokenResponse.Status, got.Status)
				require.Equal(t, tokenResponse.Body, got.Body)
				require.Equal(t, "application/json", got.Header.Get("Content-Type"))
			}
			// Only data succeeds: notify waits for audit too.
			var done []fanout.CompleteParams
			for _, ld := range leased {
				state := fanout.StateSucceeded
				if ld.Delivery.Step == "audit" {
					state = fanout.StateRetrying
				}
				done = append(done, fanout.CompleteParams{
					DeliveryID: ld.Delivery.ID, Owner: "w", State: state, Now: b.at(2 * time.Second),
					NextAttemptAt: b.at(time.Minute), Attempt: attempt(ld, b.at(2*time.Second), http.StatusOK, fanout.ClassNone, ""),
					Step: &fanout.StepCompletion{MessageID: id, Response: fanout.StepResponse{Status: 200, Body: []byte(ld.Delivery.Step)}},
				})
			}
			require.NoError(t, b.store.Complete(b.ctx, done))
			require.Equal(t, fanout.StateBlocked, b.steps(id)["notify"])

			b.completeStep(id, "userdata", b.at(2*time.Minute), fanout.StateSucceeded, fanout.StepResponse{Status: 204}, "audit")
			require.Equal(t, fanout.StatePending, b.steps(id)["notify"])
			leased = b.lease("hook", "w", b.at(3*time.Minute), 10)
			require.Len(t, leased, 1)
			require.Equal(t, []byte("data"), leased[0].Steps["data"].Body)
			require.Equal(t, 204, leased[0].Steps["audit"].Status)
			require.Nil(t, leased[0].Steps["audit"].Body)
			require.Len(t, leased[0].Steps, 3)
		}},
		{"DeadSkipsEveryLaterStep", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			b.completeStep(id, "authapi", b.at(time.Second), fanout.StateRetrying, fanout.StepResponse{}, "auth")
			require.Equal(t, fanout.StateBlocked, b.steps(id)["data"], "a retrying step blocks what follows")
			b.completeStep(id, "authapi", b.at(2*time.Minute), fanout.StateDead, fanout.StepResponse{}, "auth")
			require.Equal(t, map[string]fanout.DeliveryState{
				"auth": fanout.StateDead, "data": fanout.StateSkipped,
				"audit": fanout.StateSkipped, "notify": fanout.StateSkipped,
			}, b.steps(id))
			d := b.step(id, "data")
			require.Equal(t, fanout.ClassSkipped, d.LastClass)
			require.Contains(t, d.LastError, "auth")
			require.Contains(t, b.step(id, "notify").LastError, "step ")
			require.Empty(t, b.lease("userdata", "w", b.at(time.Hour), 10))

			// A skipped step is not waiting: the message is failed, not
			// pending, and purge keeps it.
			n, err := b.store.Purge(b.ctx, fanout.PurgeParams{SucceededBefore: b.at(48 * time.Hour), KeysBefore: b.t0})
			require.NoError(t, err)
			require.Zero(t, n)
		}},
		{"ReplayDeadRunsTheRestAgain", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			b.completeStep(id, "authapi", b.at(time.Second), fanout.StateDead, fanout.StepResponse{}, "auth")
			n, err := b.store.Replay(b.ctx, fanout.ReplayParams{Route: "signup", Now: b.at(time.Hour)})
			require.NoError(t, err)
			require.Equal(t, 1, n, "only the dead step is replayed")
			require.Equal(t, map[string]fanout.DeliveryState{
				"auth": fanout.StatePending, "data": fanout.StateBlocked,
				"audit": fanout.StateBlocked, "notify": fanout.StateBlocked,
			}, b.steps(id))
			leased := b.completeStep(id, "authapi", b.at(2*time.Hour), fanout.StateSucceeded, tokenResponse, "auth")
			require.Equal(t, 2, leased[0].Delivery.AttemptNumber(), "the replayed step's attempt number counts on")
			require.Equal(t, fanout.StatePending, b.steps(id)["data"])
			require.Len(t, b.lease("userdata", "w", b.at(3*time.Hour), 10), 2)
		}},
		{"ReplayMessageStartsOver", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			b.completeStep(id, "authapi", b.at(time.Second), fanout.StateSucceeded, tokenResponse, "auth")
			b.completeStep(id, "userdata", b.at(2*time.Second), fanout.StateSucceeded, fanout.StepResponse{Status: 200}, "data", "audit")
			b.completeStep(id, "hook", b.at(3*time.Second), fanout.StateSucceeded, fanout.StepResponse{Status: 200}, "notify")
			n, err := b.store.Replay(b.ctx, fanout.ReplayParams{MessageID: id, Now: b.at(time.Hour)})
			require.NoError(t, err)
			require.Equal(t, 4, n)
			require.Equal(t, map[string]fanout.DeliveryState{
				"auth": fanout.StatePending, "data": fanout.StateBlocked,
				"audit": fanout.StateBlocked, "notify": fanout.StateBlocked,
			}, b.steps(id))
			// Replaying one later step alone waits for what it runs after.
			n, err = b.store.Replay(b.ctx, fanout.ReplayParams{MessageID: id, Target: "hook", Now: b.at(2 * time.Hour)})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Equal(t, fanout.StateBlocked, b.steps(id)["notify"])
		}},
		{"ConcurrentJoin", func(t *testing.T, b *bundle) {
			// Two workers (two nodes on PostgreSQL) complete the two
			// steps a join waits for at the same moment: whichever
			// commits last must see both and unblock the join.
			const n = 30
			ids := make([]string, n)
			for i := range ids {
				m := b.msg("join", b.t0)
				b.accept(fanout.AcceptParams{Message: m, Steps: []fanout.AcceptStep{
					{Name: "left", Target: "l"}, {Name: "right", Target: "r"},
					{Name: "join", Target: "j", After: []string{"left", "right"}},
				}})
				ids[i] = m.ID
			}
			now := b.at(time.Second)
			left, right := b.lease("l", "w1", now, n), b.lease("r", "w2", now, n)
			require.Len(t, left, n)
			require.Len(t, right, n)
			complete := func(owner string, ld fanout.LeasedDelivery) error {
				return b.store.Complete(b.ctx, []fanout.CompleteParams{{
					DeliveryID: ld.Delivery.ID, Owner: owner, State: fanout.StateSucceeded, Now: now,
					Attempt: attempt(ld, now, http.StatusOK, fanout.ClassNone, ""),
					Step:    &fanout.StepCompletion{MessageID: ld.Delivery.MessageID, Response: fanout.StepResponse{Status: 200}},
				}})
			}
			errs := make(chan error, 2*n)
			for i := range n {
				go func() { errs <- complete("w1", left[i]) }()
				go func() { errs <- complete("w2", right[i]) }()
			}
			for range 2 * n {
				require.NoError(t, <-errs)
			}
			for _, id := range ids {
				require.Equal(t, fanout.StatePending, b.steps(id)["join"], "message %s", id)
			}
		}},
		{"ListByStepState", func(t *testing.T, b *bundle) {
			id := b.stepsMessage(b.t0)
			b.send("other", b.t0, "userdata")
			ids, _ := b.list(fanout.ListMessagesParams{State: fanout.StateBlocked})
			require.Equal(t, []string{id}, ids)
		}},
		{"PlainDeliveriesHaveNoSteps", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			leased := b.lease("a", "w", b.at(time.Second), 10)
			require.Len(t, leased, 1)
			require.Nil(t, leased[0].Steps)
			require.Empty(t, leased[0].Delivery.Step)
			require.Empty(t, b.delivery(id, "a").After)
		}},
		{"Invalid", func(t *testing.T, b *bundle) {
			for name, p := range map[string]fanout.AcceptParams{
				"targets and steps": {Message: b.msg("r", b.t0), Targets: []string{"a"}, Steps: []fanout.AcceptStep{{Name: "s", Target: "a"}}},
				"unknown after":     {Message: b.msg("r", b.t0), Steps: []fanout.AcceptStep{{Name: "s", Target: "a", After: []string{"x"}}}},
				"duplicate name":    {Message: b.msg("r", b.t0), Steps: []fanout.AcceptStep{{Name: "s", Target: "a"}, {Name: "s", Target: "b"}}},
			} {
				_, err := b.store.Accept(b.ctx, []fanout.AcceptParams{p})
				require.Error(t, err, name)
			}
			n, _ := b.list(fanout.ListMessagesParams{})
			require.Empty(t, n, "nothing is stored")
		}},
	}
}
