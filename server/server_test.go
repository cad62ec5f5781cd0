package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The http.DefaultTransport's idle connections of test clients.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// target records the traceparent of every request it gets.
type target struct {
	mu          sync.Mutex
	traceparent []string
	status      int
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	tg.mu.Lock()
	tg.traceparent = append(tg.traceparent, r.Header.Get("traceparent"))
	status := tg.status
	tg.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func (tg *target) seen() []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.traceparent...)
}

func start(t *testing.T, yaml string) *server.Server {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	srv, err := server.Start(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return srv
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestObservability sends real traffic through a whole server and checks
// that the trace id reaches the targets, that /metrics counts it, and that
// /v1/stats reports it.
func TestObservability(t *testing.T) {
	t.Parallel()
	ok, failing := &target{status: 200}, &target{status: 503}
	okSrv, failSrv := httptest.NewServer(ok), httptest.NewServer(failing)
	t.Cleanup(okSrv.Close)
	t.Cleanup(failSrv.Close)

	srv := start(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: s3cret}
store: {dsn: %q}
targets:
  ok: {url: %q}
  failing: {url: %q, retry: {sync_max_attempts: 1, initial: 10ms, max: 20ms, max_attempts: 1}}
routes:
  - {name: sync, match: {path: /sync}, mode: settled, targets: [ok, failing]}
  - {name: queued, match: {path: /queued}, mode: async, targets: [ok, failing]}
`, filepath.Join(t.TempDir(), "fanout.db"), okSrv.URL, failSrv.URL))
	data, adminURL := "http://"+srv.DataAddr(), "http://"+srv.AdminAddr()

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, path := range []string{"/sync", "/queued"} {
		req, err := http.NewRequest(http.MethodPost, data+path, strings.NewReader(`{"a":1}`))
		require.NoError(t, err)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, path)
	}

	// The async delivery to "failing" has max_attempts 1: it goes dead.
	require.Eventually(t, func() bool { return len(ok.seen()) == 2 && len(failing.seen()) == 2 }, 10*time.Second, 10*time.Millisecond)
	for _, tp := range append(ok.seen(), failing.seen()...) {
		require.Contains(t, tp, traceID, "the inbound trace id reaches every target, sync and async")
	}

	want := []string{
		`fanout_requests_total{code="200",mode="settled",route="sync"} 1`,
		`fanout_requests_total{code="202",mode="async",route="queued"} 1`,
		`fanout_attempts_total{outcome="success",route="sync",target="ok"} 1`,
		`fanout_attempts_total{outcome="status",route="sync",target="failing"} 1`,
		`fanout_attempts_total{outcome="success",route="queued",target="ok"} 1`,
		`fanout_attempts_total{outcome="status",route="queued",target="failing"} 1`,
		`fanout_dead_total{target="failing"} 1`,
		`fanout_request_duration_seconds_count{mode="settled",route="sync"} 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	}
	var metrics string
	require.Eventually(t, func() bool {
		var code int
		code, metrics = get(t, adminURL+"/metrics", "")
		if code != http.StatusOK {
			return false
		}
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "metrics after traffic")

	// The hooks that count attempts run when an attempt ends; the dead
	// count comes from the store, once the completer has committed the
	// outcome: poll until it has, with a generous deadline.
	type report struct {
		Routes  map[string]struct{ Requests, Successes int }
		Targets map[string]struct {
			Attempts, Successes, Dead int
			Failures                  map[string]int
		}
	}
	var rep report
	require.Eventually(t, func() bool {
		code, body := get(t, adminURL+"/v1/stats?window=5m", "s3cret")
		rep = report{}
		return code == http.StatusOK && json.Unmarshal([]byte(body), &rep) == nil && rep.Targets["failing"].Dead == 1
	}, 10*time.Second, 20*time.Millisecond, "the dead delivery reaches the stats")
	require.Equal(t, 1, rep.Routes["sync"].Requests)
	require.Equal(t, 1, rep.Routes["queued"].Successes)
	require.Equal(t, 2, rep.Targets["ok"].Successes)
	require.Equal(t, 2, rep.Targets["failing"].Failures["status"])
	require.Equal(t, 1, rep.Targets["failing"].Dead)
}
