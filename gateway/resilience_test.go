package gateway_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// backend is one server of a multi-server target: it counts the data
// requests and the health checks it gets.
type backend struct {
	srv     *httptest.Server
	hits    atomic.Int64  // data requests
	checks  atomic.Int64  // GET /health
	sick    atomic.Bool   // /health answers 503
	failing atomic.Bool   // data requests answer 500
	hold    chan struct{} // non-nil: data requests wait for it to close
	delay   time.Duration // a slow server: each data request takes this long
	started chan struct{} // a data request arrived (with hold)
}

// newBackend starts a backend, on ln when not nil.
func newBackend(t *testing.T, ln net.Listener) *backend {
	t.Helper()
	b := &backend{started: make(chan struct{}, 1024)}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.checks.Add(1)
			if b.sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.hits.Add(1)
		if b.delay > 0 {
			<-time.After(b.delay) // a slow server, not a synchronisation
		}
		if b.hold != nil {
			b.started <- struct{}{}
			<-b.hold
		}
		if b.failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	if ln != nil {
		require.NoError(t, b.srv.Listener.Close())
		b.srv.Listener = ln
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// parse reads a config from YAML text.
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// resilientConfig is a route /r of mode all to target api, whose settings
// are the YAML lines of api (indented by 4).
func resilientConfig(t *testing.T, api string) *config.Config {
	t.Helper()
	return parse(t, `
targets:
  api:
    timeout: 2s
    retry: {initial: 1ms, max: 2ms, sync_max_attempts: 3}
`+api+`
routes:
  - name: r
    match: {path: /r}
    mode: all
    deadline: 5s
    targets: [api]
`)
}

func serverList(bs ...*backend) string {
	var sb strings.Builder
	sb.WriteString("    servers:\n")
	for _, b := range bs {
		fmt.Fprintf(&sb, "      - url: %s/in\n", b.srv.URL)
	}
	return sb.String()
}

// load sends n requests to /r from c concurrent clients and returns how
// many did not answer 200.
func load(t *testing.T, b *bundle, n, c int) int {
	t.Helper()
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/r", strings.NewReader(`{}`))
				if err != nil {
					panic(err)
				}
				resp, err := b.http.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// setupResilient serves cfg with a client that knows its targets.
func setupResilient(t *testing.T, cfg *config.Config) *bundle {
	t.Helper()
	b := setup(t, cfg)
	b.client.SetTargets(cfg.Targets)
	t.Cleanup(b.client.Close)
	return b
}

func serverStatus(b *bundle, url string) balance.ServerStatus {
	for _, ts := range b.client.TargetStatus() {
		for _, s := range ts.Servers {
			if s.URL == url {
				return s
			}
		}
	}
	return balance.ServerStatus{}
}

// A target of 3 servers under a bounded load, one killed mid-load: no
// client sees a failure (the retries go to the others), the dead server is
// taken out, and a server back on its address gets no traffic until it
// passes its health check.
func TestKilledServerIsTakenOutWithoutClientFailures(t *testing.T) {
	t.Parallel()
	a, b2, c := newBackend(t, nil), newBackend(t, nil), newBackend(t, nil)
	addr := c.srv.Listener.Addr().String()
	cfg := resilientConfig(t, serverList(a, b2, c)+`
    outlier: {consecutive_failures: 2, ejection_time: 1h, max_ejection_time: 1h}
    health_check: {path: /health, interval: 500ms, timeout: 500ms}
`)
	// The timeout is generous: a check that times out on a busy machine
	// takes a healthy server out, and with all three out the balancer
	// would use any of them, the sick one too.
	gw := setupResilient(t, cfg)
	require.Zero(t, load(t, gw, 150, 8))
	require.Positive(t, c.hits.Load())

	// Kill c in the middle of a load.
	var failed atomic.Int64
	var wg sync.WaitGroup
	total := func() int64 { return a.hits.Load() + b2.hits.Load() + c.hits.Load() }
	base := total()
	wg.Go(func() { failed.Add(int64(load(t, gw, 300, 8))) })
	for total()-base < 100 {
		<-time.After(time.Millisecond) // a poll interval, not a synchronisation
	}
	c.srv.CloseClientConnections()
	c.srv.Close()
	wg.Wait()
	require.Zero(t, failed.Load(), "no client-visible failure")
	cURL := c.srv.URL + "/in"
	eventually(t, func() bool { return !serverStatus(gw, cURL).Up }, "the killed server is out")

	// Back on its address, failing its health check: no traffic.
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	c2 := newBackend(t, ln)
	c2.sick.Store(true)
	eventually(t, func() bool { return c2.checks.Load() >= 2 }, "health checks reach the new server")
	require.Zero(t, load(t, gw, 100, 4))
	require.Zero(t, c2.hits.Load(), "no traffic before it is healthy")

	// Healthy again: it takes its share.
	c2.sick.Store(false)
	eventually(t, func() bool { return serverStatus(gw, cURL).Up }, "the server is back")
	require.Zero(t, load(t, gw, 90, 4))
	require.Positive(t, c2.hits.Load())
}

// A flapping server is ejected again and again, for longer each time; the
// clients see no failure.
func TestFlappingServerIsEjectedForLongerEachTime(t *testing.T) {
	t.Parallel()
	a, flap := newBackend(t, nil), newBackend(t, nil)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	cfg := resilientConfig(t, serverList(a, flap)+`
    outlier: {consecutive_failures: 3, ejection_time: 10s, max_ejection_time: 1m}
`)
	client := upstream.New(upstream.Options{Balance: balance.Options{Now: clock}})
	t.Cleanup(client.Close)
	client.SetTargets(cfg.Targets)
	gw := setup(t, cfg, setupOpts{client: client})
	flapURL := flap.srv.URL + "/in"

	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		flap.failing.Store(true)
		eventually(t, func() bool {
			require.Zero(t, load(t, gw, 4, 1))
			return serverStatus(gw, flapURL).Ejected
		}, "ejected")
		st := serverStatus(gw, flapURL)
		require.Equal(t, clock().Add(want), st.EjectedUntil, "ejection %d", i+1)
		before := flap.hits.Load()
		require.Zero(t, load(t, gw, 50, 2))
		require.Equal(t, before, flap.hits.Load(), "no traffic while ejected")
		advance(want)
	}
	// It recovers: a success ends the growth.
	flap.failing.Store(false)
	require.Zero(t, load(t, gw, 50, 2))
	require.False(t, serverStatus(gw, flapURL).Ejected)
	require.Zero(t, serverStatus(gw, flapURL).ConsecutiveFailures)
}

func TestLeastRequestsSendsLessToASlowServer(t *testing.T) {
	t.Parallel()
	fast, slow := newBackend(t, nil), newBackend(t, nil)
	slow.delay = 20 * time.Millisecond
	cfg := resilientConfig(t, serverList(fast, slow)+"    balance: least_requests\n")
	gw := setupResilient(t, cfg)
	require.Zero(t, load(t, gw, 200, 4))
	// A request on the slow server stays in flight longer: the next ones
	// go to the other.
	// (Round robin would give each 100.)
	require.Less(t, slow.hits.Load(), int64(70), "slow %d, fast %d", slow.hits.Load(), fast.hits.Load())
}

func TestWeightsAreHonoured(t *testing.T) {
	t.Parallel()
	a, b2, c := newBackend(t, nil), newBackend(t, nil), newBackend(t, nil)
	cfg := resilientConfig(t, fmt.Sprintf(`    servers:
      - {url: %s/in, weight: 3}
      - {url: %s/in, weight: 2}
      - {url: %s/in}
`, a.srv.URL, b2.srv.URL, c.srv.URL))
	gw := setupResilient(t, cfg)
	require.Zero(t, load(t, gw, 3000, 8))
	for _, x := range []struct {
		b    *backend
		want float64
	}{{a, 1500}, {b2, 1000}, {c, 500}} {
		require.InDelta(t, x.want, float64(x.b.hits.Load()), x.want*0.05)
	}
}

func TestOpenCircuitFailsSyncLegsAtOnce(t *testing.T) {
	t.Parallel()
	down := newBackend(t, nil)
	down.failing.Store(true)
	cfg := resilientConfig(t, fmt.Sprintf(`    url: %s/in
    circuit_breaker: {consecutive_failures: 3, open_for: 1h}
`, down.srv.URL))
	gw := setupResilient(t, cfg)
	resp := gw.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status, "%s", resp.Body)
	require.Equal(t, int64(3), down.hits.Load(), "three attempts fail: the circuit opens")
	for range 5 {
		resp = gw.post(t, "/r", `{}`)
		require.Equal(t, http.StatusBadGateway, resp.Status)
		require.Equal(t, "circuit_open", resp.result(t, "api")["error"].(map[string]any)["class"], "%s", resp.Body)
	}
	require.Equal(t, int64(3), down.hits.Load(), "no attempt reaches the target while open")
	require.Equal(t, "open", gw.client.TargetStatus()[0].Circuit)
}

func TestRateLimitedSyncLegs(t *testing.T) {
	t.Parallel()
	api := newBackend(t, nil)
	cfg := resilientConfig(t, fmt.Sprintf(`    url: %s/in
    rate_limit: {rps: 0.1, burst: 3}
`, api.srv.URL))
	gw := setupResilient(t, cfg)
	ok, limited := 0, 0
	for range 10 {
		resp := gw.post(t, "/r", `{}`)
		if resp.Status == http.StatusOK {
			ok++
			continue
		}
		require.Equal(t, "rate_limited", resp.result(t, "api")["error"].(map[string]any)["class"], "%s", resp.Body)
		limited++
	}
	// The burst goes at once; the next token, 10s later, cannot fit the
	// route's 5s deadline: those legs fail at once instead of waiting.
	require.GreaterOrEqual(t, ok, 3)
	require.LessOrEqual(t, ok, 4)
	require.Equal(t, int64(ok), api.hits.Load())
	require.Equal(t, 10-ok, limited)
}

// A reload that removes the server a request is in flight on, and adds
// another, lets that request finish.
func TestReloadAddsAndRemovesServersKeepingRequestsInFlight(t *testing.T) {
	t.Parallel()
	a, b2, c := newBackend(t, nil), newBackend(t, nil), newBackend(t, nil)
	a.hold = make(chan struct{})
	cfg := resilientConfig(t, fmt.Sprintf("    servers: [{url: %s/in}]\n", a.srv.URL))
	gw := setupResilient(t, cfg)
	got := make(chan *response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/r", strings.NewReader(`{}`))
		resp, err := gw.http.Do(req)
		if err != nil {
			got <- &response{Status: -1}
			return
		}
		_ = resp.Body.Close()
		got <- &response{Status: resp.StatusCode}
	}()
	<-a.started

	cfg2 := resilientConfig(t, serverList(b2, c))
	require.NoError(t, gw.gw.Load(cfg2))
	gw.client.SetTargets(cfg2.Targets)
	require.Zero(t, load(t, gw, 20, 2))
	require.Equal(t, int64(10), b2.hits.Load())
	require.Equal(t, int64(10), c.hits.Load())
	require.Equal(t, int64(1), a.hits.Load(), "the removed server gets nothing new")

	close(a.hold)
	require.Equal(t, http.StatusOK, (<-got).Status, "the request in flight on the removed server finished")
}
