package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/server"
)

// TestRouteLifecycleReload runs a whole server from a config file: a
// deprecated route answers with the deprecation headers and is counted in
// fanout_deprecated_requests_total, a reload to retired answers 410
// route_retired, and the admin API shows the new state.
func TestRouteLifecycleReload(t *testing.T) {
	t.Parallel()
	tg := &target{status: 200}
	tgSrv := httptest.NewServer(tg)
	t.Cleanup(tgSrv.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "fanout.yaml")
	write := func(lifecycle string) {
		t.Helper()
		yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: s3cret}
store: {dsn: %q}
targets:
  crm: {url: %q}
routes:
  - {name: orders, match: {path: /orders}, mode: all, targets: [crm], lifecycle: %s}
`, filepath.Join(dir, "fanout.db"), tgSrv.URL, lifecycle)
		require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	}
	write(`{state: deprecated, deprecated_at: "2026-06-01T00:00:00Z", sunset: "2027-01-31T00:00:00Z", link: "https://example.com/v2"}`)
	cfg, err := config.Load(file)
	require.NoError(t, err)
	srv, err := server.Start(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	post := func() *http.Response {
		t.Helper()
		resp, err := http.Post(srv.DataURL()+"/orders", "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}

	resp := post()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "@1780272000", resp.Header.Get("Deprecation"))
	sunset, err := http.ParseTime(resp.Header.Get("Sunset"))
	require.NoError(t, err)
	require.True(t, sunset.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)))
	require.Equal(t, `<https://example.com/v2>; rel="deprecation"`, resp.Header.Get("Link"))
	adminURL := "http://" + srv.AdminAddr()
	require.Eventually(t, func() bool { // counted after the answer is sent
		_, metrics := get(t, adminURL+"/metrics", "")
		return strings.Contains(metrics, `fanout_deprecated_requests_total{route="orders",tenant=""} 1`)
	}, 10*time.Second, 10*time.Millisecond)

	write(`{state: retired, link: "https://example.com/v2"}`)
	require.NoError(t, srv.Reload())
	resp = post()
	require.Equal(t, http.StatusGone, resp.StatusCode)
	var body struct {
		Error struct {
			Code    string
			Details map[string]any
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "route_retired", body.Error.Code)
	require.Equal(t, "https://example.com/v2", body.Error.Details["link"])

	code, routes := get(t, adminURL+"/v1/routes", "s3cret")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, routes, `"lifecycle":{"state":"retired","link":"https://example.com/v2"}`)
}
