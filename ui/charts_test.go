package ui_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOverviewCharts checks the charts over time: one panel per route and
// target, each chart an SVG with a text alternative, the figures in a
// table, every window served, and the fragment the script swaps in.
func TestOverviewCharts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Two hours of traffic on signup, a failure every fourth request; crm
	// answers with growing latency and has a backlog.
	for i := range 8 {
		b.stats.RecordRequest("signup", "async", i%4 != 0, "status", time.Duration(i+1)*time.Millisecond)
		cls := ""
		if i%4 == 0 {
			cls = "timeout"
		}
		b.stats.RecordAttempt("signup", "crm", cls, time.Duration(10*(i+1))*time.Millisecond)
		b.stats.RecordBacklog("crm", 5+i, time.Duration(i)*time.Second)
		b.advance(15 * time.Minute)
	}
	br := b.browser()
	br.signIn(adminToken)

	p := br.get("/ui/?window=24h")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `data-series="routes.signup"`)
	require.Contains(t, p.body, `data-series="routes.orders"`)
	require.Contains(t, p.body, `data-series="targets.crm"`)
	require.Contains(t, p.body, `data-series="targets.analytics"`)
	require.Contains(t, p.body, "Window 24h in steps of 15m")
	// Every chart is an image with a label that says its figures.
	labels := regexp.MustCompile(`role="img" aria-label="([^"]+)" data-chart-title`).FindAllStringSubmatch(p.body, -1)
	require.Len(t, labels, 2*4+2*6, "4 charts per route, 6 per target")
	joined := ""
	for _, l := range labels {
		joined += l[1] + "\n"
	}
	require.Contains(t, joined, "Requests per second of signup over the last 24h (15m steps")
	require.Contains(t, joined, "Failures by class of signup over the last 24h")
	require.Contains(t, joined, "status latest")
	require.Contains(t, joined, "Backlog of crm over the last 24h")
	require.Contains(t, joined, "waiting latest 12, highest 12")
	require.Contains(t, joined, "Oldest waiting message of crm")
	require.Contains(t, joined, "timeout latest")
	require.Contains(t, joined, "Requests per second of orders over the last 24h (15m steps, ")
	require.Contains(t, joined, "no data", "success ratio of a route without traffic")
	// The table alternative: one row per step with traffic, newest first.
	signup := section(t, p.body, `data-series="routes.signup"`)
	require.Equal(t, 8, strings.Count(signup, `<tr><th scope="row">`))
	require.Contains(t, signup, "status 1")
	crm := section(t, p.body, `data-series="targets.crm"`)
	require.Contains(t, crm, "<th scope=\"col\" class=\"num\">Backlog</th>")
	require.Contains(t, crm, `<td class="num">12</td>`)
	require.Contains(t, crm, "timeout 1")
	require.Contains(t, crm, "<polyline")

	for _, w := range []string{"5m", "15m", "1h"} {
		p := br.get("/ui/?window=" + w)
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.body, "Window "+w+" in steps of")
	}

	// The fragment: the charts section alone, for the script.
	f := br.get("/ui/charts?window=1h")
	require.Equal(t, http.StatusOK, f.status)
	require.True(t, strings.HasPrefix(strings.TrimSpace(f.body), `<div id="charts" data-charts-url="/ui/charts?window=1h"`), f.body[:min(200, len(f.body))])
	require.NotContains(t, f.body, "<html")
	require.Contains(t, f.body, "Window 1h in steps of 1m")
	require.Equal(t, "text/html; charset=utf-8", f.header.Get("Content-Type"))
	require.Contains(t, f.header.Get("Content-Security-Policy"), "script-src 'self'")

	// Signed out: the fragment sends to sign-in.
	anon := b.browser()
	require.Equal(t, http.StatusSeeOther, anon.get("/ui/charts?window=1h").status)
}

// section returns the figure of body that starts at marker.
func section(t *testing.T, body, marker string) string {
	t.Helper()
	i := strings.Index(body, marker)
	require.GreaterOrEqual(t, i, 0, marker)
	end := strings.Index(body[i:], "</figure>")
	require.GreaterOrEqual(t, end, 0)
	return body[i : i+end]
}
