package queue

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/sqlite"
	"github.com/fanouthq/fanout/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// assertCollect collects the failures of one EventuallyWithT round.
type assertCollect = assert.CollectT

// waitFor is how long a test waits for something that should happen soon.
const waitFor = 30 * time.Second

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openStore opens a migrated SQLite store on a file of t's temp dir.
func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(ctx))
	return st
}

// newClient returns a real upstream client whose idle connections are
// closed at cleanup (goleak would see them otherwise).
func newClient(t testing.TB) *upstream.Client {
	c := upstream.New(upstream.Options{Logger: testLogger(t)})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// request is one request a test target received.
type request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// target is a real HTTP server standing in for a downstream API. It
// records every request and answers with respond (200 {"ok":true} when
// nil).
type target struct {
	srv *httptest.Server
	// respond writes the answer to the n-th request (1-based) of the
	// message whose id is id.
	respond func(w http.ResponseWriter, r *http.Request, id string, n int)

	mu     sync.Mutex
	reqs   []request
	perMsg map[string]int

	count       atomic.Int64 // requests answered
	inflight    atomic.Int64
	maxInflight atomic.Int64
}

// newTarget starts a target on a free loopback port.
func newTarget(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, id string, n int)) *target {
	tg := &target{respond: respond, perMsg: make(map[string]int)}
	tg.srv = httptest.NewServer(http.HandlerFunc(tg.serve))
	t.Cleanup(tg.srv.Close)
	return tg
}

// newTargetOn starts a target listening on ln.
func newTargetOn(t testing.TB, ln net.Listener, respond func(w http.ResponseWriter, r *http.Request, id string, n int)) *target {
	tg := &target{respond: respond, perMsg: make(map[string]int)}
	tg.srv = httptest.NewUnstartedServer(http.HandlerFunc(tg.serve))
	require.NoError(t, tg.srv.Listener.Close())
	tg.srv.Listener = ln
	tg.srv.Start()
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) serve(w http.ResponseWriter, r *http.Request) {
	n := tg.inflight.Add(1)
	defer tg.inflight.Add(-1)
	for {
		m := tg.maxInflight.Load()
		if n <= m || tg.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Fanout-Message-Id")
	tg.mu.Lock()
	tg.reqs = append(tg.reqs, request{Header: r.Header.Clone(), Body: body, At: time.Now()})
	tg.perMsg[id]++
	nth := tg.perMsg[id]
	tg.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body)) // read again by respond
	if tg.respond == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	} else {
		tg.respond(w, r, id, nth)
	}
	tg.count.Add(1)
}

// requests returns a copy of what the target received.
func (tg *target) requests() []request {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]request(nil), tg.reqs...)
}

// requestsFor returns the requests of one message, in arrival order.
func (tg *target) requestsFor(id string) []request {
	var out []request
	for _, r := range tg.requests() {
		if r.Header.Get("Fanout-Message-Id") == id {
			out = append(out, r)
		}
	}
	return out
}

// distinct returns how many distinct messages reached the target.
func (tg *target) distinct() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.perMsg)
}

// newTargetConfig returns a target with small test policies.
func newTargetConfig(t testing.TB, name, rawURL string) *config.Target {
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return &config.Target{
		Name:      name,
		URL:       rawURL,
		ParsedURL: u,
		Timeout:   config.Duration(5 * time.Second),
		Retry: config.Retry{
			Initial:     config.Duration(10 * time.Millisecond),
			Max:         config.Duration(50 * time.Millisecond),
			MaxAttempts: 10,
			MaxAge:      config.Duration(time.Hour),
		},
		MaxInFlight: 16,
	}
}

// newConfig returns a config with the targets and the defaults a parsed
// config would have.
func newConfig(targets ...*config.Target) *config.Config {
	cfg := &config.Config{
		Delivery: config.Delivery{
			Retention:    config.Duration(7 * 24 * time.Hour),
			DedupWindow:  config.Duration(24 * time.Hour),
			LeaseTimeout: config.Duration(30 * time.Second),
		},
		Targets: make(map[string]*config.Target),
	}
	for _, tg := range targets {
		cfg.Targets[tg.Name] = tg
	}
	return cfg
}

// newMessage returns an accept of one message to targets.
func newMessage(route string, targets ...string) fanout.AcceptParams {
	id := fanout.NewMessageID()
	return fanout.AcceptParams{
		Message: fanout.Message{
			ID:     id,
			Route:  route,
			Method: http.MethodPost,
			Path:   "/in",
			Header: http.Header{
				"Content-Type":  {"application/json"},
				"X-Customer-Id": {"c-42"},
			},
			Body:       []byte(`{"n":"` + id + `"}`),
			ReceivedAt: time.Now(),
		},
		Targets:     targets,
		DedupWindow: 24 * time.Hour,
	}
}

// acceptN stores n messages to targets directly and returns their ids.
func acceptN(t testing.TB, st fanout.Store, n int, targets ...string) []string {
	t.Helper()
	params := make([]fanout.AcceptParams, n)
	for i := range params {
		params[i] = newMessage("r", targets...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := st.Accept(ctx, params)
	require.NoError(t, err)
	ids := make([]string, n)
	for i, r := range res {
		ids[i] = r.MessageID
	}
	return ids
}

// running is a Dispatcher running on its own goroutine.
type running struct {
	*Dispatcher
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startDispatcher runs a dispatcher with cfg until stop or cleanup.
func startDispatcher(t testing.TB, st fanout.Store, cfg *config.Config, opts DispatcherOptions) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	d := NewDispatcher(st, newClient(t), opts)
	if cfg != nil {
		d.SetConfig(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Dispatcher: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Error("dispatcher did not stop")
		}
	})
}

// deliveryOf returns the delivery of message id to target.
func deliveryOf(t testing.TB, st fanout.Store, id, target string) fanout.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := st.GetMessage(ctx, id)
	require.NoError(t, err)
	for _, d := range m.Deliveries {
		if d.Target == target {
			return d
		}
	}
	t.Fatalf("message %s has no delivery to %s", id, target)
	return fanout.Delivery{}
}

// attemptsOf returns the attempts of message id to target, oldest first.
func attemptsOf(t testing.TB, st fanout.Store, id, target string) []fanout.Attempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := st.GetMessage(ctx, id)
	require.NoError(t, err)
	var out []fanout.Attempt
	for _, a := range m.Attempts {
		if a.Target == target {
			out = append(out, a)
		}
	}
	return out
}

// waitState polls until every delivery of ids to target is in state.
func waitState(t testing.TB, st fanout.Store, ids []string, target string, state fanout.DeliveryState) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		for _, id := range ids {
			m, err := st.GetMessage(ctx, id)
			require.NoError(c, err)
			var got fanout.DeliveryState
			for _, d := range m.Deliveries {
				if d.Target == target {
					got = d.State
				}
			}
			require.Equal(c, state, got, "delivery of %s to %s", id, target)
		}
	}, waitFor, 10*time.Millisecond)
}

// countState returns how many deliveries to target are in state.
func countState(t testing.TB, st fanout.Store, target string, state fanout.DeliveryState) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	n, cursor := 0, ""
	for {
		page, next, err := st.ListMessages(ctx, fanout.ListMessagesParams{Target: target, State: state, Cursor: cursor, Limit: 1000})
		require.NoError(t, err)
		n += len(page)
		if next == "" {
			return n
		}
		cursor = next
	}
}

// statusHandler answers status to every request.
func statusHandler(status int, header ...string) func(w http.ResponseWriter, r *http.Request, id string, n int) {
	return func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strconv.Itoa(status))
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
