package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func TestPurgerDeletesSucceededAfterRetention(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	done := acceptN(t, st, 3, "a")
	waiting := acceptN(t, st, 1, "a")
	// Deliver the first three.
	leased, err := st.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "me", Limit: 3, Now: time.Now(), LeaseFor: time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 3)
	params := make([]fanout.CompleteParams, len(leased))
	for i, l := range leased {
		params[i] = fanout.CompleteParams{
			DeliveryID: l.Delivery.ID, Owner: "me", State: fanout.StateSucceeded, Now: time.Now(),
			Attempt: fanout.Attempt{Number: 1, StartedAt: time.Now(), Status: 200},
		}
	}
	require.NoError(t, st.Complete(ctx, params))

	// Long retention: nothing goes.
	p := NewPurger(st, PurgerOptions{Logger: testLogger(t)})
	n, err := p.PurgeOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	// Retention over: Run purges at once, then every Interval.
	p = NewPurger(st, PurgerOptions{
		Logger:      testLogger(t),
		Interval:    time.Hour,
		Retention:   func() time.Duration { return time.Nanosecond },
		DedupWindow: func() time.Duration { return 0 }, // default
	})
	rctx, rcancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- p.Run(rctx) }()
	require.EventuallyWithT(t, func(c *assertCollect) {
		for _, id := range done {
			_, err := st.GetMessage(ctx, id)
			require.ErrorIs(c, err, fanout.ErrNotFound)
		}
	}, waitFor, 10*time.Millisecond)
	rcancel()
	require.NoError(t, <-ran)

	_, err = st.GetMessage(ctx, waiting[0])
	require.NoError(t, err, "undelivered messages are kept")
}
