package balance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/config"
)

func servers(ws ...int) []*config.Server {
	out := make([]*config.Server, len(ws))
	for i, w := range ws {
		out[i] = &config.Server{URL: "http://s" + string(rune('a'+i)) + ".test/", Weight: w}
	}
	return out
}

func setup(t *testing.T, tc *config.Target, opts balance.Options) (*balance.Set, *balance.Target) {
	t.Helper()
	tc.Name = "t"
	s := balance.New(opts)
	t.Cleanup(s.Close)
	s.Update(map[string]*config.Target{"t": tc})
	bt := s.Get("t")
	require.NotNil(t, bt)
	return s, bt
}

// attempt leases one attempt and ends it with o, returning its server.
func attempt(t *testing.T, bt *balance.Target, retry bool, o balance.Outcome) string {
	t.Helper()
	l, err := bt.Acquire(context.Background(), retry)
	require.NoError(t, err)
	u := l.Server().URL().String()
	l.Done(o)
	return u
}

func TestRoundRobinHonoursWeights(t *testing.T) {
	t.Parallel()
	_, bt := setup(t, &config.Target{Servers: servers(5, 1, 1)}, balance.Options{})
	counts := map[string]int{}
	order := ""
	for i := range 7000 {
		u := attempt(t, bt, false, balance.Success)
		counts[u]++
		if i < 7 {
			order += u[7:9]
		}
	}
	require.Equal(t, 5000, counts["http://sa.test/"])
	require.Equal(t, 1000, counts["http://sb.test/"])
	require.Equal(t, 1000, counts["http://sc.test/"])
	require.NotContains(t, order, "sasasasasa", "smooth: the heavy server's turns are spread out")
}

func TestLeastRequestsAvoidsTheBusyServer(t *testing.T) {
	t.Parallel()
	_, bt := setup(t, &config.Target{Servers: servers(1, 1), Balance: config.BalanceLeastRequests}, balance.Options{})
	// Hold 3 attempts on whichever server gets them first, then every new
	// attempt goes to the other one.
	var held []balance.Lease
	l, err := bt.Acquire(context.Background(), false)
	require.NoError(t, err)
	busy := l.Server()
	held = append(held, l)
	for range 20 {
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		if l.Server() == busy {
			held = append(held, l)
			continue
		}
		l.Done(balance.Success)
	}
	require.Len(t, held, 1, "the busy server got no attempt while the other had fewer")
	held[0].Done(balance.Success)
}

func TestP2CSpreadsAcrossServers(t *testing.T) {
	t.Parallel()
	_, bt := setup(t, &config.Target{Servers: servers(1, 1, 1), Balance: config.BalanceP2C}, balance.Options{})
	counts := map[string]int{}
	for range 3000 {
		counts[attempt(t, bt, false, balance.Success)]++
	}
	require.Len(t, counts, 3)
	for u, n := range counts {
		require.InDelta(t, 1000, n, 300, u)
	}
}

func TestEjectionGrowsAndNeverTakesTheLastServer(t *testing.T) {
	t.Parallel()
	clk := newClock()
	tc := &config.Target{Servers: servers(1, 1), Outlier: &config.Outlier{ConsecutiveFailures: 3, EjectionTime: config.Duration(10 * time.Second), MaxEjectionTime: config.Duration(25 * time.Second)}}
	_, bt := setup(t, tc, balance.Options{Now: clk.Now})
	bad := "http://sa.test/"
	// Fail sa three times in a row: it is ejected.
	fails := 0
	for fails < 3 {
		u := attempt(t, bt, false, balance.Success)
		if u == bad {
			continue
		}
		// sb succeeds; now make sa fail.
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		if l.Server().URL().String() == bad {
			l.Done(balance.Failure)
			fails++
		} else {
			l.Done(balance.Success)
		}
	}
	st := bt.Status()
	require.True(t, st.Servers[0].Ejected)
	require.False(t, st.Servers[0].Up)
	for range 50 {
		require.Equal(t, "http://sb.test/", attempt(t, bt, false, balance.Success))
	}
	// The last available server is never ejected.
	for range 10 {
		require.Equal(t, "http://sb.test/", attempt(t, bt, false, balance.Failure))
	}
	require.True(t, bt.Status().Servers[1].Up)
	for range 2 {
		attempt(t, bt, false, balance.Success)
	}

	// After 10s sa is back; one more failure ejects it for 20s.
	clk.Add(10 * time.Second)
	for {
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		if l.Server().URL().String() == bad {
			l.Done(balance.Failure)
			break
		}
		l.Done(balance.Success)
	}
	st = bt.Status()
	require.True(t, st.Servers[0].Ejected)
	require.Equal(t, clk.Now().Add(20*time.Second), st.Servers[0].EjectedUntil)
	clk.Add(20 * time.Second)
	for {
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		if l.Server().URL().String() == bad {
			l.Done(balance.Failure)
			break
		}
		l.Done(balance.Success)
	}
	require.Equal(t, clk.Now().Add(25*time.Second), bt.Status().Servers[0].EjectedUntil, "capped by max_ejection_time")
}

func TestRetryPrefersAServerWithoutFailures(t *testing.T) {
	t.Parallel()
	_, bt := setup(t, &config.Target{Servers: servers(1, 1, 1)}, balance.Options{})
	var failed string
	for failed == "" {
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		failed = l.Server().URL().String()
		l.Done(balance.Failure)
	}
	for range 30 {
		require.NotEqual(t, failed, attempt(t, bt, true, balance.Success))
	}
}

func TestBackupOnlyWhenNoPrimaryIsUp(t *testing.T) {
	t.Parallel()
	clk := newClock()
	ss := servers(1, 1)
	ss[1].Backup = true
	tc := &config.Target{Servers: ss, Outlier: &config.Outlier{ConsecutiveFailures: 1, EjectionTime: config.Duration(time.Second), MaxEjectionTime: config.Duration(time.Second)}}
	_, bt := setup(t, tc, balance.Options{Now: clk.Now})
	for range 10 {
		require.Equal(t, "http://sa.test/", attempt(t, bt, false, balance.Success))
	}
	require.Equal(t, "http://sa.test/", attempt(t, bt, false, balance.Failure))
	for range 10 {
		require.Equal(t, "http://sb.test/", attempt(t, bt, false, balance.Success))
	}
	clk.Add(time.Second)
	require.Equal(t, "http://sa.test/", attempt(t, bt, false, balance.Success))
}

func breakerTarget(t *testing.T, clk *clock, cb config.CircuitBreaker) (*balance.Target, *[]string) {
	t.Helper()
	var changes []string
	_, bt := setup(t, &config.Target{URL: "http://a.test/", CircuitBreaker: &cb}, balance.Options{
		Now:       clk.Now,
		OnCircuit: func(_ string, from, to balance.State) { changes = append(changes, from.String()+">"+to.String()) },
	})
	return bt, &changes
}

func TestBreakerOpensOnConsecutiveFailuresAndProbes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	bt, changes := breakerTarget(t, clk, config.CircuitBreaker{Window: config.Duration(10 * time.Second), MinRequests: 100, FailureRatio: 1, ConsecutiveFailures: 3, OpenFor: config.Duration(5 * time.Second), Probes: 1})
	for range 3 {
		attempt(t, bt, false, balance.Failure)
	}
	_, err := bt.Acquire(context.Background(), false)
	require.ErrorIs(t, err, fanout.ErrCircuitOpen)
	until, ok := bt.Deferred()
	require.True(t, ok)
	require.Equal(t, clk.Now().Add(5*time.Second), until)

	clk.Add(5 * time.Second)
	_, ok = bt.Deferred()
	require.False(t, ok, "a probe may go")
	probe, err := bt.Acquire(context.Background(), false)
	require.NoError(t, err)
	_, err = bt.Acquire(context.Background(), false)
	require.ErrorIs(t, err, fanout.ErrCircuitOpen, "one probe at a time")
	probe.Done(balance.Failure)
	_, err = bt.Acquire(context.Background(), false)
	require.ErrorIs(t, err, fanout.ErrCircuitOpen, "a failed probe opens it again")

	clk.Add(5 * time.Second)
	attempt(t, bt, false, balance.Success)
	attempt(t, bt, false, balance.Success)
	require.Equal(t, "closed", bt.Status().Circuit)
	require.Equal(t, []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}, *changes)
}

func TestBreakerOpensOnFailureRatioOverTheWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	bt, _ := breakerTarget(t, clk, config.CircuitBreaker{Window: config.Duration(10 * time.Second), MinRequests: 10, FailureRatio: 0.5, OpenFor: config.Duration(time.Second), Probes: 1})
	// Alternate: never consecutive, half of them failures, but only 9.
	for i := range 9 {
		o := balance.Success
		if i%2 == 0 {
			o = balance.Failure
		}
		attempt(t, bt, false, o)
	}
	require.Equal(t, "closed", bt.Status().Circuit, "fewer than min_requests")
	// Outcomes older than the window no longer count.
	clk.Add(11 * time.Second)
	for range 9 {
		attempt(t, bt, false, balance.Success)
	}
	attempt(t, bt, false, balance.Failure)
	require.Equal(t, "closed", bt.Status().Circuit, "1 failure in 10")
	for range 8 {
		attempt(t, bt, false, balance.Failure)
	}
	require.Equal(t, "open", bt.Status().Circuit, "9 failures in 18")
}

func TestRateLimitBoundsAttemptsPerSecond(t *testing.T) {
	t.Parallel()
	clk := newClock()
	_, bt := setup(t, &config.Target{URL: "http://a.test/", RateLimit: &config.RateLimit{RPS: 50, Burst: 5}}, balance.Options{Now: clk.Now})
	ok, limited := 0, 0
	for range 10 { // ten seconds of the injected clock, 200 tries a second
		for range 200 {
			clk.Add(5 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			l, err := bt.Acquire(ctx, false)
			cancel()
			if err != nil {
				require.True(t, errors.Is(err, fanout.ErrRateLimited), err)
				limited++
				continue
			}
			l.Done(balance.Success)
			ok++
		}
	}
	require.LessOrEqual(t, ok, 50*10+5)
	require.GreaterOrEqual(t, ok, 50*9)
	require.Equal(t, 2000-ok, limited)
}

func TestSharedInFlightWaitsForASlot(t *testing.T) {
	t.Parallel()
	tc := &config.Target{URL: "http://a.test/", MaxInFlight: 2}
	tc.SetSharedInFlight()
	_, bt := setup(t, tc, balance.Options{})
	a, err := bt.Acquire(context.Background(), false)
	require.NoError(t, err)
	b, err := bt.Acquire(context.Background(), false)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = bt.Acquire(ctx, false)
	require.ErrorIs(t, err, context.Canceled)
	got := make(chan balance.Lease, 1)
	go func() {
		l, err := bt.Acquire(context.Background(), false)
		if err != nil {
			panic(err)
		}
		got <- l
	}()
	a.Done(balance.Success)
	l := <-got
	l.Done(balance.Success)
	b.Done(balance.Success)
	require.Equal(t, int64(0), bt.Status().InFlight)
}

func TestUpdateKeepsServerState(t *testing.T) {
	t.Parallel()
	clk := newClock()
	tc := &config.Target{Servers: servers(1, 1), Outlier: &config.Outlier{ConsecutiveFailures: 1, EjectionTime: config.Duration(time.Minute), MaxEjectionTime: config.Duration(time.Minute)}}
	s, bt := setup(t, tc, balance.Options{Now: clk.Now})
	for bt.Status().Servers[0].Ejected == false {
		l, err := bt.Acquire(context.Background(), false)
		require.NoError(t, err)
		if l.Server().URL().String() == "http://sa.test/" {
			l.Done(balance.Failure)
		} else {
			l.Done(balance.Success)
		}
	}
	inflight, err := bt.Acquire(context.Background(), false)
	require.NoError(t, err)
	// Add a third server, keep the first two.
	tc2 := &config.Target{Name: "t", Servers: servers(1, 1, 1), Outlier: tc.Outlier}
	s.Update(map[string]*config.Target{"t": tc2})
	require.Same(t, bt, s.Get("t"))
	st := bt.Status()
	require.Len(t, st.Servers, 3)
	require.True(t, st.Servers[0].Ejected, "kept across the reload")
	require.Equal(t, int64(1), st.InFlight)
	inflight.Done(balance.Success)
	// Remove the target: it is gone, its lease-holders unaffected.
	s.Update(map[string]*config.Target{})
	require.Nil(t, s.Get("t"))
}
