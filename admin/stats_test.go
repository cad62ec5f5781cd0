package admin_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/stats"
)

func TestStats(t *testing.T) {
	t.Parallel()

	t.Run("off without stats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res, body := b.do(http.MethodGet, "/v1/stats", testToken, "")
		b.requireError(res, body, http.StatusNotFound, "not_found")
	})

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		st := stats.New(stats.Options{})
		b := setup(t, setupOpts{token: testToken, stats: st})
		st.RecordRequest("signup", "async", true, "", 3*time.Millisecond)
		st.RecordRequest("signup", "async", false, "status", 5*time.Millisecond)
		st.RecordAttempt("signup", "crm", "", 2*time.Millisecond)
		st.RecordAttempt("signup", "crm", "timeout", 2*time.Second)
		b.accept("signup", "", time.Minute, []string{"crm"})

		res, _ := b.do(http.MethodGet, "/v1/stats", "", "")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)

		res, body := b.do(http.MethodGet, "/v1/stats?window=10m", testToken, "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var rep stats.Report
		require.NoError(t, json.Unmarshal(body, &rep))
		require.Equal(t, 2, rep.Routes["signup"].Requests)
		require.Equal(t, 1, rep.Routes["signup"].Failures["status"])
		require.Equal(t, 2, rep.Targets["crm"].Attempts)
		require.Equal(t, 1, rep.Targets["crm"].Failures["timeout"])
		require.Equal(t, 1, rep.Targets["crm"].Backlog)

		res, body = b.do(http.MethodGet, "/v1/stats?window=nope", testToken, "")
		b.requireError(res, body, http.StatusBadRequest, "bad_request")

		res, _ = b.do(http.MethodGet, "/v1/stats/series", "", "")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		res, body = b.do(http.MethodGet, "/v1/stats/series?window=24h", testToken, "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var series stats.SeriesReport
		require.NoError(t, json.Unmarshal(body, &series))
		require.Equal(t, "15m", series.Step)
		pts := series.Routes["signup"].Points
		require.Equal(t, 2, pts[len(pts)-1].Count)
		res, body = b.do(http.MethodGet, "/v1/stats/series?window=25h", testToken, "")
		b.requireError(res, body, http.StatusBadRequest, "bad_request")
	})
}
