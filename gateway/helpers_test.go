package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seen is what a test target received.
type seen struct {
	Method, URI string
	Header      http.Header
	Body        string
}

// target is one downstream test server.
type target struct {
	name string
	srv  *httptest.Server
	cfg  *config.Target
	reqs chan seen // every request, buffered
	hits atomic.Int32
}

// handlerFunc answers a target request; n is the 1-based count of requests
// the target has seen.
type handlerFunc func(w http.ResponseWriter, r *http.Request, n int)

// echo answers 200 with {"target":name,"n":n}.
func echo(name string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"target":"`+name+`"}`)
	}
}

// status answers code with a small text body.
func status(code int) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

// newTarget starts a target server running h (echo when nil).
func newTarget(t *testing.T, name string, h handlerFunc) *target {
	t.Helper()
	if h == nil {
		h = echo(name)
	}
	tg := &target{name: name, reqs: make(chan seen, 1024)}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(tg.hits.Add(1))
		select {
		case tg.reqs <- seen{Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body)}:
		default:
		}
		h(w, r, n)
	}))
	t.Cleanup(tg.srv.Close)
	u, err := url.Parse(tg.srv.URL + "/in")
	require.NoError(t, err)
	tg.cfg = &config.Target{
		Name: name, URL: u.String(), ParsedURL: u,
		Timeout: config.Duration(5 * time.Second),
		Retry: config.Retry{
			Initial: config.Duration(time.Millisecond), Max: config.Duration(5 * time.Millisecond),
			SyncMaxAttempts: 3,
		},
	}
	return tg
}

// next returns the next request the target saw, failing after a while.
func (tg *target) next(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-tg.reqs:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("target %s saw no request", tg.name)
		return seen{}
	}
}

// route builds a route with the defaults config.Load would fill in.
func route(name string, mode config.Mode, path string, targets ...string) *config.Route {
	r := &config.Route{
		Name: name, Mode: mode,
		Match:           config.Match{Method: http.MethodPost, Path: path},
		Deadline:        config.Duration(5 * time.Second),
		MaxBody:         config.Size(1 << 20),
		MaxResponseBody: config.Size(64 << 10),
	}
	for _, tn := range targets {
		r.Targets = append(r.Targets, config.RouteTarget{Name: tn})
	}
	return r
}

func newConfig(targets []*target, routes ...*config.Route) *config.Config {
	cfg := &config.Config{
		Targets:  map[string]*config.Target{},
		Routes:   routes,
		Delivery: config.Delivery{DedupWindow: config.Duration(24 * time.Hour)},
	}
	for _, tg := range targets {
		cfg.Targets[tg.name] = tg.cfg
	}
	return cfg
}

// logSink collects log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// lines returns the JSON log lines with msg.
func (s *logSink) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// fakeEnqueuer records what the gateway hands to the durable queue. The
// store is not what these tests are about.
type fakeEnqueuer struct {
	mu     sync.Mutex
	params []fanout.AcceptParams
	got    chan fanout.AcceptParams
	err    error
	keys   map[string]string // idempotency key → first message id
}

func newFakeEnqueuer() *fakeEnqueuer {
	return &fakeEnqueuer{got: make(chan fanout.AcceptParams, 1024), keys: map[string]string{}}
}

func (f *fakeEnqueuer) Accept(ctx context.Context, p fanout.AcceptParams) (fanout.AcceptResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return fanout.AcceptResult{}, f.err
	}
	f.params = append(f.params, p)
	f.got <- p
	if k := p.Message.IdempotencyKey; k != "" && p.DedupWindow > 0 {
		if id, ok := f.keys[k]; ok {
			return fanout.AcceptResult{MessageID: id, Replayed: true}, nil
		}
		f.keys[k] = p.Message.ID
	}
	return fanout.AcceptResult{MessageID: p.Message.ID}, nil
}

func (f *fakeEnqueuer) calls() []fanout.AcceptParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fanout.AcceptParams(nil), f.params...)
}

var _ gateway.Enqueuer = (*fakeEnqueuer)(nil)

// bundle is one gateway under test, served over HTTP.
type bundle struct {
	gw     *gateway.Gateway
	srv    *httptest.Server
	http   *http.Client
	logs   *logSink
	enq    *fakeEnqueuer
	client *upstream.Client
}

type setupOpts struct {
	noEnqueuer         bool
	hooks              gateway.Hooks
	noRouteBodyTimeout time.Duration
	// enqueuer replaces the fakeEnqueuer when set.
	enqueuer     gateway.Enqueuer
	storeTimeout time.Duration
	// client replaces the bundle's upstream client when set.
	client *upstream.Client
	now    func() time.Time
	// access is the self-service keys and subscriptions.
	access gateway.Access
}

func setup(t *testing.T, cfg *config.Config, so ...setupOpts) *bundle {
	t.Helper()
	b := &bundle{logs: &logSink{}, enq: newFakeEnqueuer()}
	logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.client = upstream.New(upstream.Options{Logger: logger})
	if len(so) > 0 && so[0].client != nil {
		b.client = so[0].client
	}
	opts := gateway.Options{
		Logger:    logger,
		Client:    b.client,
		Enqueuer:  b.enq,
		StatusURL: func(id string) string { return "http://admin.test/v1/messages/" + id },
	}
	if len(so) > 0 {
		if so[0].noEnqueuer {
			opts.Enqueuer = nil
		}
		opts.Hooks = so[0].hooks
		opts.NoRouteBodyTimeout = so[0].noRouteBodyTimeout
		if so[0].enqueuer != nil {
			opts.Enqueuer = so[0].enqueuer
		}
		opts.StoreTimeout = so[0].storeTimeout
		opts.Now = so[0].now
		opts.Access = so[0].access
	}
	gw, err := gateway.New(cfg, opts)
	require.NoError(t, err)
	b.gw = gw
	b.srv = httptest.NewServer(gw)
	b.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(func() {
		b.http.CloseIdleConnections()
		b.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, gw.Close(ctx))
		b.client.CloseIdleConnections()
		if t.Failed() {
			t.Log(b.logs.String())
		}
	})
	return b
}

// response is a gateway answer, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// result returns the envelope's result for target name.
func (r *response) result(t *testing.T, name string) map[string]any {
	t.Helper()
	res, ok := r.json(t)["results"].(map[string]any)[name].(map[string]any)
	require.True(t, ok, "no result for %s in %s", name, r.Body)
	return res
}

// errorCode returns the code of an error answer, checking its shape.
func (r *response) errorCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	require.Len(t, m, 1, "one top-level key: %s", r.Body)
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "error shape: %s", r.Body)
	require.NotEmpty(t, e["message"])
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	return e["code"].(string)
}

func (b *bundle) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func (b *bundle) post(t *testing.T, path, body string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return b.do(t, req)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + msg)
		}
		<-time.After(2 * time.Millisecond) // a poll interval, not a synchronisation
	}
}
