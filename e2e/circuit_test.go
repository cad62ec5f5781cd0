package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flakyTarget answers 503 while down, 200 once up, and counts what each
// message got.
type flakyTarget struct {
	down atomic.Bool

	mu        sync.Mutex
	failed    map[string]int // 503s answered, by message id
	delivered map[string]bool
}

func (f *flakyTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("Fanout-Message-Id")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down.Load() {
		f.failed[id]++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	f.delivered[id] = true
}

// metric reads one sample of the admin listener's /metrics (0 when absent).
func metric(t *testing.T, admin, token, sample string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// TestCircuitKeepsDeliveriesThroughAnOutage: the real binary, an async
// route to a target whose circuit breaker opens after 3 failures. The
// target stays down while the circuit opens five times (its probes
// failing), far longer than the retry budget lasts without a breaker:
// with max_attempts 10 and a 50-100ms backoff, every delivery would be
// dead within about a second. While the circuit is open no delivery is
// attempted, so when the target returns every message arrives and none is
// dead. (A probe is an attempt of the delivery that makes it: the
// deliveries that probe do spend attempts, at most one per open_for.)
func TestCircuitKeepsDeliveriesThroughAnOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := &flakyTarget{failed: map[string]int{}, delivered: map[string]bool{}}
	target.down.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: target, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	listen, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {dsn: %q}
targets:
  t:
    url: "http://%s/"
    retry: {initial: 50ms, max: 100ms, max_attempts: 10}
    circuit_breaker: {consecutive_failures: 3, open_for: 300ms}
routes:
  - {name: ingest, match: {path: /ingest}, mode: async, targets: [t]}
`, listen, admin, filepath.Join(dir, "fanout.db"), ln.Addr()))
	startFanout(t, cfgPath, listen, admin)

	const n = 20
	ids := map[string]bool{}
	for range n {
		status, _, body, err := post(context.Background(), "http://"+listen+"/ingest", `{"x":1}`, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, string(body))
		var got struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &got))
		ids[got.ID] = true
	}
	opened := `fanout_circuit_state_changes_total{state="open",target="t"}`
	waitFor(t, 60*time.Second, "the circuit to open five times (its probes failing)", func() bool {
		return metric(t, admin, "t0ken", opened) >= 5
	})
	target.down.Store(false)
	waitFor(t, 60*time.Second, "every message delivered once the target is back", func() bool {
		target.mu.Lock()
		defer target.mu.Unlock()
		for id := range ids {
			if !target.delivered[id] {
				return false
			}
		}
		return true
	})
	require.Zero(t, metric(t, admin, "t0ken", `fanout_dead_total{route="ingest",target="t"}`), "no delivery dead")
	target.mu.Lock()
	defer target.mu.Unlock()
	total, most := 0, 0
	for _, f := range target.failed {
		total += f
		most = max(most, f)
	}
	require.Less(t, total, n*3, "an outage costs the attempts that opened the circuit and the probes, not every retry of every delivery")
	t.Logf("%d messages through an outage in which the circuit opened %v times: %d failed attempts in all, at most %d for one message",
		n, metric(t, admin, "t0ken", opened), total, most)
}
