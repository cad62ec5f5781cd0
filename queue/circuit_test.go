package queue

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// An outage of a target with a circuit breaker: the deliveries are not
// attempted while the circuit is open (only the breaker's probes are),
// so they keep their attempt budget, and all arrive once it is back.
func TestOpenCircuitDefersDeliveriesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var down atomic.Bool
	down.Store(true)
	var failed atomic.Int64 // attempts answered 503
	probes := make(chan struct{}, 1024)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if down.Load() {
			failed.Add(1)
			select {
			case probes <- struct{}{}:
			default:
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// Without the breaker, the outage would kill them (3 attempts).
	d := runBreakerDispatcher(t, st, tg.srv.URL+"/in", 50*time.Millisecond)

	const n = 20
	ids := acceptN(t, st, n, "crm")
	d.Notify("crm")
	// The outage lasts until the target has answered 2 failures (which
	// open the circuit) and then 4 probes, each one cool-down apart.
	for range 6 {
		select {
		case <-probes:
		case <-time.After(waitFor):
			t.Fatal("the target saw no probe")
		}
	}
	down.Store(false)
	waitState(t, st, ids, "crm", fanout.StateSucceeded)

	spent := 0
	for _, id := range ids {
		spent += len(attemptsOf(t, st, id, "crm"))
	}
	fails := int(failed.Load())
	require.Equal(t, n+fails, spent, "every attempt recorded is one the target answered: none was burned by the open circuit")
	require.Less(t, fails, 2*n, "a closed-circuit outage of this length would have spent more")
	t.Logf("outage: %d deliveries, %d failed attempts (2 to open + probes), %d attempts in all", n, fails, spent)
}

// The circuit's probes spend no attempts either: one delivery, alone, is
// every probe of an outage much longer than its budget of 3 attempts,
// and it still arrives, every probe recorded with numbers that count on.
func TestFailedProbesSpendNoAttempts(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var down atomic.Bool
	down.Store(true)
	var failed atomic.Int64
	answered := make(chan struct{}, 1024)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if down.Load() {
			failed.Add(1)
			answered <- struct{}{}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	d := runBreakerDispatcher(t, st, tg.srv.URL+"/in", 20*time.Millisecond)

	ids := acceptN(t, st, 1, "crm")
	d.Notify("crm")
	// 2 failures open the circuit; then 8 probes fail, each of which
	// would be over the budget if it counted.
	for range 10 {
		select {
		case <-answered:
		case <-time.After(waitFor):
			t.Fatal("the target saw no probe")
		}
	}
	down.Store(false)
	waitState(t, st, ids, "crm", fanout.StateSucceeded)

	md, err := st.GetMessage(context.Background(), ids[0])
	require.NoError(t, err)
	del := md.Deliveries[0]
	fails := int(failed.Load())
	require.GreaterOrEqual(t, fails, 10)
	require.Equal(t, 3, del.Attempts, "the budget spent: the 2 failures that opened the circuit and the success")
	require.Equal(t, fails-2, del.AttemptsBefore, "the failed probes are kept out of the budget")
	attempts := attemptsOf(t, st, ids[0], "crm")
	require.Len(t, attempts, fails+1, "every attempt the target answered is recorded")
	numbers := make([]int, 0, len(attempts))
	for _, a := range attempts {
		numbers = append(numbers, a.Number)
	}
	want := make([]int, 0, len(attempts))
	for i := range len(attempts) {
		want = append(want, i+1)
	}
	require.ElementsMatch(t, want, numbers, "attempt numbers count on across probes")
}

// runBreakerDispatcher runs a dispatcher for target crm at url, with 3
// attempts a few milliseconds apart and a breaker that opens on 2
// failures in a row for openFor, one probe at a time. It stops with the
// test.
func runBreakerDispatcher(t *testing.T, st fanout.Store, url string, openFor time.Duration) *Dispatcher {
	t.Helper()
	tc := newTargetConfig(t, "crm", url)
	tc.Retry.MaxAttempts = 3
	tc.Retry.Initial, tc.Retry.Max = config.Duration(time.Millisecond), config.Duration(5*time.Millisecond)
	tc.CircuitBreaker = &config.CircuitBreaker{
		Window: config.Duration(time.Minute), MinRequests: 1000, FailureRatio: 1,
		ConsecutiveFailures: 2, OpenFor: config.Duration(openFor), Probes: 1,
	}
	cfg := newConfig(tc)
	client := upstream.New(upstream.Options{Logger: testLogger(t)})
	t.Cleanup(client.Close)
	client.SetTargets(cfg.Targets)
	d := NewDispatcher(st, client, DispatcherOptions{Logger: testLogger(t)})
	d.SetConfig(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return d
}
