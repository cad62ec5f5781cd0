package stats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/stats"
)

// backlogFunc adapts a function to stats.BacklogSource.
type backlogFunc func(ctx context.Context) ([]fanout.TargetBacklog, error)

func (f backlogFunc) Backlog(ctx context.Context) ([]fanout.TargetBacklog, error) { return f(ctx) }

type handlerBundle struct {
	stats *stats.Stats
	clock *clock
	srv   *httptest.Server
}

// setupHandler serves a Stats with the backlog source that backlog makes
// (none when backlog is nil) from the Stats' clock.
func setupHandler(t *testing.T, backlog func(c *clock) stats.BacklogSource) *handlerBundle {
	t.Helper()
	s, c := setup(t)
	var src stats.BacklogSource
	if backlog != nil {
		src = backlog(c)
	}
	srv := httptest.NewServer(stats.Handler(s, src))
	t.Cleanup(srv.Close)
	return &handlerBundle{stats: s, clock: c, srv: srv}
}

func (b *handlerBundle) get(t *testing.T, method, query string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+"/v1/stats"+query, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func TestHandler(t *testing.T) {
	t.Parallel()
	b := setupHandler(t, func(c *clock) stats.BacklogSource {
		return backlogFunc(func(context.Context) ([]fanout.TargetBacklog, error) {
			return []fanout.TargetBacklog{{
				Target: "crm", Waiting: 4, Dead: 2, OldestWaiting: c.Now().Add(-30 * time.Second),
			}}, nil
		})
	})
	b.stats.RecordRequest("signup", "async", true, "", 2*time.Millisecond)
	b.stats.RecordAttempt("signup", "crm", "", 20*time.Millisecond)
	b.stats.RecordAttempt("signup", "crm", "timeout", 2*time.Second)

	resp, body := b.get(t, http.MethodGet, "?window=1m")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	var rep stats.Report
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, "1m", rep.Window)
	require.Equal(t, 1, rep.Routes["signup"].Requests)
	crm := rep.Targets["crm"]
	require.Equal(t, 2, crm.Attempts)
	require.Equal(t, map[string]int{"timeout": 1}, crm.Failures)
	require.Equal(t, 4, crm.Backlog)
	require.Equal(t, 2, crm.Dead)
	require.InDelta(t, 30.0, crm.OldestPendingSeconds, 1e-9)
	require.NotNil(t, crm.LatencyMS)
	require.InDelta(t, 2000, crm.LatencyMS.P99, 2000*0.02)

	// The JSON names are the API: check them on the raw document.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	target := raw["targets"].(map[string]any)["crm"].(map[string]any)
	for _, k := range []string{"attempts", "successes", "failures", "success_rate", "latency_ms", "backlog", "oldest_pending_seconds", "dead"} {
		require.Contains(t, target, k)
	}
	require.Contains(t, target["latency_ms"], "p95")
	route := raw["routes"].(map[string]any)["signup"].(map[string]any)
	for _, k := range []string{"mode", "requests", "successes", "failures", "success_rate", "latency_ms"} {
		require.Contains(t, route, k)
	}

	// No window: the default.
	_, body = b.get(t, http.MethodGet, "")
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, "5m", rep.Window)
}

func TestHandlerWithoutBacklog(t *testing.T) {
	t.Parallel()
	b := setupHandler(t, nil)
	resp, body := b.get(t, http.MethodGet, "?window=30s")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"window":"30s","routes":{},"targets":{}}`, string(body))
}

func TestHandlerBadWindow(t *testing.T) {
	t.Parallel()
	b := setupHandler(t, nil)
	for _, w := range []string{"5", "five minutes", "-1m", "0s", "25h", "1441m"} {
		resp, body := b.get(t, http.MethodGet, "?window="+url.QueryEscape(w))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, w)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var e errorBody
		require.NoError(t, json.Unmarshal(body, &e), string(body))
		require.Equal(t, "bad_request", e.Error.Code)
		require.Equal(t, w, e.Error.Details["window"])
	}
}

func TestHandlerBacklogError(t *testing.T) {
	t.Parallel()
	for err, status := range map[error]int{
		fmt.Errorf("sqlite: %w", fanout.ErrStoreUnavailable): http.StatusServiceUnavailable,
		errors.New("boom /internal/path"):                    http.StatusInternalServerError,
	} {
		b := setupHandler(t, func(*clock) stats.BacklogSource {
			return backlogFunc(func(context.Context) ([]fanout.TargetBacklog, error) {
				return nil, err
			})
		})
		resp, body := b.get(t, http.MethodGet, "")
		require.Equal(t, status, resp.StatusCode)
		require.NotContains(t, string(body), "/internal/path")
		var e errorBody
		require.NoError(t, json.Unmarshal(body, &e))
		require.NotEmpty(t, e.Error.Code)
	}
}

func TestHandlerMethods(t *testing.T) {
	t.Parallel()
	b := setupHandler(t, nil)
	resp, body := b.get(t, http.MethodHead, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)

	resp, _ = b.get(t, http.MethodPost, "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	d, err := stats.ParseWindow("")
	require.NoError(t, err)
	require.Equal(t, stats.DefaultWindow, d)
	d, err = stats.ParseWindow("1h")
	require.NoError(t, err)
	require.Equal(t, time.Hour, d)
	d, err = stats.ParseWindow("24h")
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, d)
	_, err = stats.ParseWindow("24h1s")
	require.Error(t, err)
}

func TestSeriesHandler(t *testing.T) {
	t.Parallel()
	c := newClock(time.Date(2026, 11, 23, 10, 0, 0, 1, time.UTC))
	s := stats.New(c.options())
	s.RecordRequest("orders", "async", true, "", 2*time.Millisecond)
	s.RecordAttempt("orders", "crm", "status", time.Millisecond)
	s.RecordBacklog("crm", 4, 3*time.Second)
	srv := httptest.NewServer(stats.SeriesHandler(s))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/v1/stats/series?window=24h")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var rep stats.SeriesReport
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	require.Equal(t, "24h", rep.Window)
	require.Equal(t, "15m", rep.Step)
	require.Equal(t, 900.0, rep.StepSeconds)
	pts := rep.Routes["orders"].Points
	require.Len(t, pts, 97)
	require.Equal(t, 1, pts[96].Count)
	crm := rep.Targets["crm"].Points[96]
	require.Equal(t, 1, crm.Failures["status"])
	require.Equal(t, 4, *crm.Backlog)

	for _, w := range []string{"25h", "x"} {
		resp, err := http.Get(srv.URL + "/v1/stats/series?window=" + w)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, w)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/stats/series", nil)
	resp2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp2.StatusCode)
}
