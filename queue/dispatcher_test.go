package queue

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

func TestDeliversToEveryTargetWithOutboundHeaders(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	crm, analytics := newTarget(t, nil), newTarget(t, nil)
	crmCfg := newTargetConfig(t, "crm", crm.srv.URL+"/contacts")
	crmCfg.Headers = map[string]string{"Authorization": "Bearer s3cret"}
	cfg := newConfig(crmCfg, newTargetConfig(t, "analytics", analytics.srv.URL+"/events"))

	var mu sync.Mutex
	outcomes := map[string]int{}
	d := startDispatcher(t, st, cfg, DispatcherOptions{Hooks: Hooks{
		OnAttempt: func(route, target string, res upstream.Result, state fanout.DeliveryState) {
			mu.Lock()
			outcomes[route+"/"+target+"/"+string(state)]++
			mu.Unlock()
		},
	}})

	// Accept through the Committer, which wakes the workers.
	b := startCommitterFor(t, st, d.Dispatcher)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	const n = 20
	msgs := make(map[string]fanout.AcceptParams, n)
	ids := make([]string, 0, n)
	for range n {
		p := newMessage("signup", "crm", "analytics")
		p.Message.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		res, err := b.Accept(ctx, p)
		require.NoError(t, err)
		msgs[res.MessageID] = p
		ids = append(ids, res.MessageID)
	}
	waitState(t, st, ids, "crm", fanout.StateSucceeded)
	waitState(t, st, ids, "analytics", fanout.StateSucceeded)

	for name, tg := range map[string]*target{"crm": crm, "analytics": analytics} {
		require.Equal(t, n, tg.distinct(), name)
		for _, r := range tg.requests() {
			id := r.Header.Get("Fanout-Message-Id")
			p, ok := msgs[id]
			require.True(t, ok, "unknown message %q", id)
			require.Equal(t, id, r.Header.Get("Idempotency-Key"))
			require.Equal(t, "1", r.Header.Get("Fanout-Attempt"))
			require.Equal(t, name, r.Header.Get("Fanout-Target"))
			require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", r.Header.Get("Traceparent"))
			require.Equal(t, "c-42", r.Header.Get("X-Customer-Id"))
			require.Equal(t, p.Message.Body, r.Body)
		}
	}
	require.Equal(t, "Bearer s3cret", crm.requests()[0].Header.Get("Authorization"))

	// Each attempt is recorded, secrets redacted.
	a := attemptsOf(t, st, ids[0], "crm")
	require.Len(t, a, 1)
	require.Equal(t, 200, a[0].Status)
	require.Equal(t, 1, a[0].Number)
	require.Equal(t, fanout.ClassNone, a[0].Class)
	require.Equal(t, crm.srv.URL+"/contacts", a[0].RequestURL)
	require.Equal(t, http.MethodPost, a[0].RequestMethod)
	require.Equal(t, upstream.Redacted, a[0].RequestHeader.Get("Authorization"))
	require.Equal(t, ids[0], a[0].RequestHeader.Get("Idempotency-Key"))
	require.Equal(t, `{"ok":true}`, string(a[0].ResponseBody))
	require.Equal(t, "application/json", a[0].ResponseHeader.Get("Content-Type"))
	require.False(t, a[0].StartedAt.IsZero())

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"signup/crm/succeeded": n, "signup/analytics/succeeded": n}, outcomes)
}

// startCommitterFor runs a Committer whose commits wake d.
func startCommitterFor(t testing.TB, st fanout.Store, d *Dispatcher) *Committer {
	c := NewCommitter(st, CommitterOptions{
		Logger: testLogger(t),
		OnCommit: func(targets map[string]struct{}) {
			for tg := range targets {
				d.Notify(tg)
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return c
}

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	flaky := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	startDispatcher(t, st, newConfig(newTargetConfig(t, "flaky", flaky.srv.URL)), DispatcherOptions{})
	ids := acceptN(t, st, 5, "flaky")
	waitState(t, st, ids, "flaky", fanout.StateSucceeded)

	for _, id := range ids {
		reqs := flaky.requestsFor(id)
		require.Len(t, reqs, 3)
		for i, r := range reqs {
			require.Equal(t, id, r.Header.Get("Idempotency-Key"), "stable across retries")
			require.Equal(t, strconv.Itoa(i+1), r.Header.Get("Fanout-Attempt"))
		}
		d := deliveryOf(t, st, id, "flaky")
		require.Equal(t, 3, d.Attempts)
		require.Equal(t, 201, d.LastStatus)
		a := attemptsOf(t, st, id, "flaky")
		require.Len(t, a, 3)
		require.Equal(t, []int{503, 503, 201}, []int{a[0].Status, a[1].Status, a[2].Status})
		require.Equal(t, fanout.ClassStatus, a[0].Class)
		require.Contains(t, a[0].Error, "503")
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	busy := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	tc := newTargetConfig(t, "busy", busy.srv.URL)
	tc.Retry.Initial, tc.Retry.Max = config.Duration(time.Millisecond), config.Duration(5*time.Millisecond)
	startDispatcher(t, st, newConfig(tc), DispatcherOptions{})
	ids := acceptN(t, st, 1, "busy")
	waitState(t, st, ids, "busy", fanout.StateSucceeded)

	reqs := busy.requestsFor(ids[0])
	require.Len(t, reqs, 2)
	// The backoff alone would be at most 1ms; Retry-After asked for 1s
	// (the store keeps milliseconds, hence the small margin).
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 990*time.Millisecond)
}

func TestNonRetryableStatusIsDeadAtOnce(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	bigBody := strings.Repeat("x", 4096)
	bad := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "secret"})
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, bigBody)
	})
	logs := &logRecorder{}
	startDispatcher(t, st, newConfig(newTargetConfig(t, "bad", bad.srv.URL)), DispatcherOptions{
		Logger: slog.New(logs),
	})
	ids := acceptN(t, st, 3, "bad")
	waitState(t, st, ids, "bad", fanout.StateDead)

	for _, id := range ids {
		require.Len(t, bad.requestsFor(id), 1)
		d := deliveryOf(t, st, id, "bad")
		require.Equal(t, 1, d.Attempts)
		require.Equal(t, 400, d.LastStatus)
		require.Equal(t, fanout.ClassStatus, d.LastClass)
		require.Contains(t, d.LastError, "non-retryable status 400")
		a := attemptsOf(t, st, id, "bad")
		require.Len(t, a, 1)
		require.Len(t, a[0].ResponseBody, DefaultMaxResponseBody, "the attempt keeps the first KiB")
		require.Equal(t, []string{upstream.Redacted}, a[0].ResponseHeader["Set-Cookie"])
	}

	// One warning per failed attempt, with the facts and no header value.
	recs := logs.find("delivery attempt failed")
	require.Len(t, recs, 3)
	for _, r := range recs {
		require.Equal(t, slog.LevelWarn, r.level)
		require.Equal(t, "r", r.attrs[keyRoute])
		require.Equal(t, "bad", r.attrs[keyTarget])
		require.Contains(t, ids, r.attrs[keyMessageID])
		require.Equal(t, "1", r.attrs[keyAttempt])
		require.Equal(t, "status", r.attrs[keyClass])
		require.Equal(t, "400", r.attrs[keyStatus])
		require.Equal(t, "dead", r.attrs[keyState])
		require.NotContains(t, r.text, "secret")
	}
}

func TestMaxAttemptsThenDead(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	down := newTarget(t, statusHandler(http.StatusInternalServerError))
	tc := newTargetConfig(t, "down", down.srv.URL)
	tc.Retry.MaxAttempts = 3
	startDispatcher(t, st, newConfig(tc), DispatcherOptions{})
	ids := acceptN(t, st, 2, "down")
	waitState(t, st, ids, "down", fanout.StateDead)

	for _, id := range ids {
		require.Len(t, down.requestsFor(id), 3)
		d := deliveryOf(t, st, id, "down")
		require.Equal(t, 3, d.Attempts)
		require.Equal(t, 500, d.LastStatus)
		require.Contains(t, d.LastError, "max attempts reached")
		require.Len(t, attemptsOf(t, st, id, "down"), 3)
	}
}

func TestMaxAgeThenDead(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	down := newTarget(t, statusHandler(http.StatusBadGateway))
	tc := newTargetConfig(t, "down", down.srv.URL)
	tc.Retry.MaxAttempts = 1000
	tc.Retry.MaxAge = config.Duration(time.Second)
	startDispatcher(t, st, newConfig(tc), DispatcherOptions{})
	ids := acceptN(t, st, 1, "down")
	waitState(t, st, ids, "down", fanout.StateDead)

	d := deliveryOf(t, st, ids[0], "down")
	require.Contains(t, d.LastError, "max age exceeded")
	require.GreaterOrEqual(t, d.Attempts, 1)
	require.Less(t, d.Attempts, 1000, "given up long before max attempts")
	require.Len(t, down.requestsFor(ids[0]), d.Attempts)
}

func TestTargetDownThenBackGetsEverything(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	addr := freeAddr(t) // nothing listens: connection refused
	tc := newTargetConfig(t, "flappy", "http://"+addr+"/in")
	tc.Retry.MaxAttempts = 1000
	tc.Retry.Max = config.Duration(100 * time.Millisecond)
	d := startDispatcher(t, st, newConfig(tc), DispatcherOptions{})
	b := startCommitterFor(t, st, d.Dispatcher)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		res, err := b.Accept(ctx, newMessage("r", "flappy"))
		require.NoError(t, err)
		ids[i] = res.MessageID
	}

	// Every delivery fails at least twice while the target is down.
	require.EventuallyWithT(t, func(c *assertCollect) {
		for _, id := range ids {
			m, err := st.GetMessage(ctx, id)
			require.NoError(c, err)
			require.GreaterOrEqual(c, m.Deliveries[0].Attempts, 2)
			require.Equal(c, fanout.ClassConnect, m.Deliveries[0].LastClass)
		}
	}, waitFor, 10*time.Millisecond)

	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	up := newTargetOn(t, ln, nil)
	waitState(t, st, ids, "flappy", fanout.StateSucceeded)
	require.Equal(t, n, up.distinct())
}

func TestSlowTargetDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	release := make(chan struct{})
	slow := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		select { // a target that answers after 5s
		case <-time.After(5 * time.Second):
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	fast := newTarget(t, nil)
	slowCfg := newTargetConfig(t, "slow", slow.srv.URL)
	slowCfg.Timeout = config.Duration(20 * time.Second)
	slowCfg.MaxInFlight = 4
	d := startDispatcher(t, st, newConfig(slowCfg, newTargetConfig(t, "fast", fast.srv.URL)), DispatcherOptions{
		ShutdownGrace: 50 * time.Millisecond,
	})
	b := startCommitterFor(t, st, d.Dispatcher)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// Messages keep coming while the slow target holds its slots.
	const n = 300
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range n / 10 {
				_, err := b.Accept(ctx, newMessage("r", "slow", "fast"))
				if !assertNoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return fast.distinct() == n }, waitFor, 5*time.Millisecond,
		"the fast target gets every message")
	require.Less(t, slow.count.Load(), int64(n/10),
		"the slow target has answered far fewer (a round of 4 per 5s)")
	require.LessOrEqual(t, slow.maxInflight.Load(), int64(slowCfg.MaxInFlight))
}

func TestMaxInFlightIsRespected(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		select { // a target that takes 20ms per request
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
		}
	})
	tc := newTargetConfig(t, "narrow", tg.srv.URL)
	tc.MaxInFlight = 3
	startDispatcher(t, st, newConfig(tc), DispatcherOptions{})
	ids := acceptN(t, st, 40, "narrow")
	waitState(t, st, ids, "narrow", fanout.StateSucceeded)
	require.LessOrEqual(t, tg.maxInflight.Load(), int64(3))
	require.GreaterOrEqual(t, tg.maxInflight.Load(), int64(2), "the worker does use the slots")
}

func TestExpiredLeaseOfDeadOwnerIsDeliveredAgain(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, nil)
	ids := acceptN(t, st, 1, "a")

	// A process leased the delivery and died, after the file's leases were
	// taken back at start (as by another dispatcher of this process): only
	// the lease's expiry can free it now.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := st.Reclaim(ctx, fanout.ReclaimParams{Owner: "earlier"})
	require.NoError(t, err)
	leased, err := st.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "dead-process", Limit: 10, Now: time.Now(), LeaseFor: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, leased, 1)

	// IdlePoll is long: the worker must wake when the lease expires.
	startDispatcher(t, st, newConfig(newTargetConfig(t, "a", tg.srv.URL)), DispatcherOptions{IdlePoll: time.Minute})
	waitState(t, st, ids, "a", fanout.StateSucceeded)
	reqs := tg.requestsFor(ids[0])
	require.Len(t, reqs, 1)
	require.Equal(t, "2", reqs[0].Header.Get("Fanout-Attempt"), "the dead owner's attempt counts")
}

// TestStartTakesBackLeasesOfADeadProcess: a process leased deliveries for
// ten minutes and was killed; the next dispatcher on the file sends them at
// start, and their attempt numbers count the dead process's attempt.
func TestStartTakesBackLeasesOfADeadProcess(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, nil)
	ids := acceptN(t, st, 3, "a")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	leased, err := st.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "killed", Limit: 2, Now: time.Now(), LeaseFor: 10 * time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 2)

	startDispatcher(t, st, newConfig(newTargetConfig(t, "a", tg.srv.URL)), DispatcherOptions{IdlePoll: time.Minute})
	waitState(t, st, ids, "a", fanout.StateSucceeded)
	wasLeased := map[string]bool{leased[0].Message.ID: true, leased[1].Message.ID: true}
	for _, id := range ids {
		reqs := tg.requestsFor(id)
		require.Len(t, reqs, 1)
		want := "1"
		if wasLeased[id] {
			want = "2"
		}
		require.Equal(t, want, reqs[0].Header.Get("Fanout-Attempt"), "message %s", id)
	}
}

func TestShutdownFinishesInFlightAndReleasesTheRest(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	gate := make(chan struct{})
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		<-gate
	})
	tc := newTargetConfig(t, "a", tg.srv.URL)
	tc.MaxInFlight = 2
	ids := acceptN(t, st, 10, "a")
	d := startDispatcher(t, st, newConfig(tc), DispatcherOptions{ShutdownGrace: time.Minute})
	require.Eventually(t, func() bool { return tg.inflight.Load() == 2 }, waitFor, time.Millisecond)

	d.cancel()
	select {
	case <-d.done:
		t.Fatal("Run returned while attempts were in flight")
	default:
	}
	close(gate)
	d.stop(t)

	require.Equal(t, 2, countState(t, st, "a", fanout.StateSucceeded))
	require.Equal(t, 8, countState(t, st, "a", fanout.StatePending))
	require.Zero(t, countState(t, st, "a", fanout.StateDelivering))
	require.Equal(t, 2, len(tg.requests()))
	for _, id := range ids {
		if d := deliveryOf(t, st, id, "a"); d.State == fanout.StatePending {
			require.Zero(t, d.Attempts)
		}
	}
}

func TestShutdownGraceCancelsAttemptsAndReleasesLeases(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		<-r.Context().Done() // never answers
	})
	tc := newTargetConfig(t, "a", tg.srv.URL)
	tc.MaxInFlight = 4
	ids := acceptN(t, st, 6, "a")
	var mu sync.Mutex
	var states []fanout.DeliveryState
	d := startDispatcher(t, st, newConfig(tc), DispatcherOptions{
		ShutdownGrace: 100 * time.Millisecond,
		Hooks: Hooks{OnAttempt: func(_, _ string, _ upstream.Result, s fanout.DeliveryState) {
			mu.Lock()
			states = append(states, s)
			mu.Unlock()
		}},
	})
	require.Eventually(t, func() bool { return tg.inflight.Load() == 4 }, waitFor, time.Millisecond)
	d.stop(t)

	require.Zero(t, countState(t, st, "a", fanout.StateDelivering))
	for _, id := range ids {
		d := deliveryOf(t, st, id, "a")
		require.Equal(t, fanout.StatePending, d.State)
		require.Zero(t, d.Attempts, "a cancelled attempt does not use the budget")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []fanout.DeliveryState{"pending", "pending", "pending", "pending"}, states)
}

func TestSetConfigStartsAndStopsWorkers(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	a, b := newTarget(t, nil), newTarget(t, nil)
	aCfg, bCfg := newTargetConfig(t, "a", a.srv.URL), newTargetConfig(t, "b", b.srv.URL)
	d := startDispatcher(t, st, newConfig(aCfg), DispatcherOptions{IdlePoll: time.Minute})

	ids := acceptN(t, st, 20, "a", "b")
	d.Notify("a")
	d.Notify("b") // unknown yet: ignored
	waitState(t, st, ids, "a", fanout.StateSucceeded)
	require.Zero(t, b.distinct())

	// Adding b starts a worker that delivers its backlog.
	d.SetConfig(newConfig(aCfg, bCfg))
	waitState(t, st, ids, "b", fanout.StateSucceeded)
	require.Equal(t, 20, b.distinct())

	// Removing a stops its worker; b keeps going.
	d.SetConfig(newConfig(bCfg))
	d.mu.RLock()
	_, hasA := d.workers["a"]
	_, hasB := d.workers["b"]
	d.mu.RUnlock()
	require.False(t, hasA)
	require.True(t, hasB)
	more := acceptN(t, st, 5, "b")
	d.Notify("b")
	waitState(t, st, more, "b", fanout.StateSucceeded)

	// A new policy applies to the running worker.
	bSlow := *bCfg
	bSlow.MaxInFlight = 1
	d.SetConfig(newConfig(&bSlow))
	d.mu.RLock()
	require.Equal(t, 1, d.workers["b"].target.Load().MaxInFlight)
	d.mu.RUnlock()
}

func TestNotifyWakesASleepingWorker(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, nil)
	d := startDispatcher(t, st, newConfig(newTargetConfig(t, "a", tg.srv.URL)), DispatcherOptions{IdlePoll: time.Minute})

	first := acceptN(t, st, 1, "a")
	d.Notify("a")
	waitState(t, st, first, "a", fanout.StateSucceeded)

	// The worker now sleeps for up to IdlePoll (a minute); Notify wakes it.
	second := acceptN(t, st, 1, "a")
	start := time.Now()
	d.Notify("a")
	waitState(t, st, second, "a", fanout.StateSucceeded)
	t.Logf("delivered %v after Notify", time.Since(start))
}

func TestRunTwiceAndUnknownTargets(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	d := startDispatcher(t, st, nil, DispatcherOptions{})
	d.Notify("nobody") // no config yet: nothing to wake
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.Eventually(t, func() bool {
		d.mu.RLock()
		defer d.mu.RUnlock()
		return d.state == stateRunning
	}, waitFor, time.Millisecond)
	require.Error(t, d.Run(ctx))
	require.NotEmpty(t, d.Owner())
}

// logRecorder is a slog.Handler keeping records for assertions.
type logRecorder struct {
	mu     sync.Mutex // of the root
	recs   []logRecord
	attrs  []slog.Attr
	parent *logRecorder
}

func (l *logRecorder) root() *logRecorder {
	for l.parent != nil {
		l = l.parent
	}
	return l
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
	text  string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, nil)
	r2 := r.Clone()
	r2.AddAttrs(l.attrs...)
	_ = h.Handle(context.Background(), r2)
	rec.text = buf.String()
	r2.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	root := l.root()
	root.mu.Lock()
	root.recs = append(root.recs, rec)
	root.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(append([]slog.Attr(nil), l.attrs...), as...), parent: l.root()}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

func (l *logRecorder) find(msg string) []logRecord {
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	var out []logRecord
	for _, r := range root.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestReplayRaisesFanoutAttempt: a replayed delivery arrives with a higher
// Fanout-Attempt than any before it (docs/delivery.md), with a fresh retry
// budget.
func TestReplayRaisesFanoutAttempt(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	startDispatcher(t, st, newConfig(newTargetConfig(t, "t", tg.srv.URL)), DispatcherOptions{IdlePoll: 50 * time.Millisecond})
	ids := acceptN(t, st, 1, "t")
	waitState(t, st, ids, "t", fanout.StateSucceeded)

	for range 2 {
		before := len(attemptsOf(t, st, ids[0], "t")) // counted before the replay can run
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		n, err := st.Replay(ctx, fanout.ReplayParams{MessageID: ids[0], Now: time.Now()})
		cancel()
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Eventually(t, func() bool { return len(attemptsOf(t, st, ids[0], "t")) == before+1 }, waitFor, 5*time.Millisecond)
		waitState(t, st, ids, "t", fanout.StateSucceeded)
	}

	var got []string
	for _, r := range tg.requestsFor(ids[0]) {
		got = append(got, r.Header.Get("Fanout-Attempt"))
	}
	require.Equal(t, []string{"1", "2", "3", "4"}, got, "a retry, then two replays")
	var numbers []int
	for _, a := range attemptsOf(t, st, ids[0], "t") {
		numbers = append(numbers, a.Number)
	}
	require.Equal(t, []int{1, 2, 3, 4}, numbers)
	d := deliveryOf(t, st, ids[0], "t")
	require.Equal(t, 1, d.Attempts, "the last replay's budget")
	require.Equal(t, 4, d.AttemptNumber())
}
