package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/admin"
)

// A whole server with a target of two servers and a breaker: the traffic
// is balanced, /v1/targets and /metrics show the live state, and a target
// whose circuit opened answers circuit_open.
func TestTargetsLiveState(t *testing.T) {
	t.Parallel()
	a, b := &target{status: 200}, &target{status: 200}
	down := &target{status: 503}
	as, bs, ds := httptest.NewServer(a), httptest.NewServer(b), httptest.NewServer(down)
	t.Cleanup(as.Close)
	t.Cleanup(bs.Close)
	t.Cleanup(ds.Close)
	srv := start(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: s3cret}
store: {dsn: %q}
targets:
  api:
    servers: [{url: %q}, {url: %q}]
  down:
    url: %q
    retry: {sync_max_attempts: 1}
    circuit_breaker: {consecutive_failures: 2, open_for: 1h}
routes:
  - {name: r, match: {path: /r}, mode: all, targets: [api]}
  - {name: d, match: {path: /d}, mode: all, targets: [down]}
`, filepath.Join(t.TempDir(), "fanout.db"), as.URL, bs.URL, ds.URL))
	data, adminURL := "http://"+srv.DataAddr(), "http://"+srv.AdminAddr()
	post := func(path string) (int, string) {
		resp, err := http.Post(data+path, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	for range 10 {
		code, _ := post("/r")
		require.Equal(t, http.StatusOK, code)
	}
	require.Len(t, a.seen(), 5)
	require.Len(t, b.seen(), 5)
	for range 2 {
		post("/d")
	}
	code, body := post("/d")
	require.Equal(t, http.StatusBadGateway, code)
	require.Contains(t, body, `"class":"circuit_open"`)
	require.Len(t, down.seen(), 2)

	code, raw := get(t, adminURL+"/v1/targets", "s3cret")
	require.Equal(t, http.StatusOK, code)
	var tr admin.TargetsResponse
	require.NoError(t, json.Unmarshal([]byte(raw), &tr))
	require.Len(t, tr.Targets, 2)
	api, dn := tr.Targets[0], tr.Targets[1]
	require.Equal(t, "round_robin", api.Balance)
	require.Len(t, api.Servers, 2)
	for _, s := range api.Servers {
		require.True(t, s.Up)
		require.Equal(t, uint64(5), s.Attempts)
	}
	require.NotNil(t, dn.Circuit)
	require.Equal(t, "open", dn.Circuit.State)
	require.NotNil(t, dn.Circuit.OpenUntil)

	code, metrics := get(t, adminURL+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, fmt.Sprintf(`fanout_target_server_up{server=%q,target="api"} 1`, as.URL))
	require.Contains(t, metrics, `fanout_circuit_state{target="down"} 2`)
	require.Contains(t, metrics, `fanout_circuit_state_changes_total{state="open",target="down"} 1`)
	require.Contains(t, metrics, `fanout_attempts_total{outcome="circuit_open",route="d",target="down"} 1`)
}
