package gateway_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// sfDate matches an RFC 9651 sf-date ("@" and an sf-integer: at most 15
// digits, optionally negative), the syntax RFC 9745 gives Deprecation.
var sfDate = regexp.MustCompile(`^@(-?[0-9]{1,15})$`)

// deprecation parses r's Deprecation header as an sf-date.
func deprecation(t *testing.T, r *response) time.Time {
	t.Helper()
	vals := r.Header.Values("Deprecation")
	require.Len(t, vals, 1, "one Deprecation header")
	m := sfDate.FindStringSubmatch(vals[0])
	require.NotNil(t, m, "Deprecation %q is not an RFC 9651 sf-date", vals[0])
	secs, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return time.Unix(secs, 0)
}

// sunset parses r's Sunset header as an HTTP-date (RFC 8594).
func sunset(t *testing.T, r *response) time.Time {
	t.Helper()
	vals := r.Header.Values("Sunset")
	require.Len(t, vals, 1, "one Sunset header")
	require.True(t, strings.HasSuffix(vals[0], " GMT"), "IMF-fixdate: %q", vals[0])
	ts, err := http.ParseTime(vals[0])
	require.NoError(t, err)
	return ts
}

func lifecycle(state config.LifecycleState, deprecatedAt, sunsetAt, link string) config.Lifecycle {
	l := config.Lifecycle{State: state, DeprecatedAt: deprecatedAt, Sunset: sunsetAt, Link: link}
	l.DeprecatedTime, _ = time.Parse(time.RFC3339, deprecatedAt)
	l.SunsetTime, _ = time.Parse(time.RFC3339, sunsetAt)
	return l
}

func TestDraftRouteAnswersAsUnknown(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	draft := route("draft", "all", "/draft", "crm")
	draft.Lifecycle = lifecycle(config.StateDraft, "", "", "")
	live := route("live", "all", "/live", "crm")
	b := setup(t, newConfig([]*target{crm}, draft, live))

	unknown := b.post(t, "/nowhere", `{}`)
	require.Equal(t, http.StatusNotFound, unknown.Status)
	got := b.post(t, "/draft", `{}`)
	require.Equal(t, http.StatusNotFound, got.Status)
	require.Equal(t, "not_found", got.errorCode(t))
	require.Equal(t, string(unknown.Body), string(got.Body), "the same body as an unknown route")
	require.Empty(t, got.Header.Values("Deprecation"))

	// Another method on the draft's path: 404 too, not 405 (the path is
	// unknown, as it is for /nowhere).
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/draft", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, b.do(t, req).Status)

	require.Equal(t, http.StatusOK, b.post(t, "/live", `{}`).Status)
	require.EqualValues(t, 1, crm.hits.Load(), "only the live route reached the target")
}

type deprecatedCall struct{ route, tenant string }

func TestDeprecatedRouteHeaders(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	linked := newTarget(t, "linked", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Link", `</page/2>; rel="next"`)
		w.Header().Set("Deprecation", "@1") // the target's own: replaced
		w.WriteHeader(http.StatusCreated)
	})
	const link = "https://example.com/docs/v2"
	sync := route("sync", "all", "/sync", "crm")
	sync.Lifecycle = lifecycle(config.StateDeprecated, "2026-06-01T00:00:00Z", "2027-01-31T12:00:00+01:00", link)
	queued := route("queued", "async", "/queued", "crm")
	queued.Lifecycle = lifecycle(config.StateDeprecated, "", "", "") // deprecated now, no sunset or link
	keyedRoute := route("keyed", "all", "/keyed", "crm")
	keyedRoute.Auth = config.AuthAPIKey
	keyedRoute.Lifecycle = lifecycle(config.StateDeprecated, "2026-06-01T00:00:00Z", "", link)
	mirror := route("mirrored", "mirror", "/mirrored", "linked")
	mirror.Primary = "linked"
	mirror.Lifecycle = lifecycle(config.StateDeprecated, "2026-06-01T00:00:00Z", "", link)
	published := route("current", "all", "/current", "crm")
	k := withTenants(newConfig([]*target{crm, linked}, sync, queued, keyedRoute, mirror, published))

	calls := make(chan deprecatedCall, 16)
	b := setup(t, k.cfg, setupOpts{hooks: setupHooks(calls)})
	counted := func(route, tenant string) {
		t.Helper()
		select {
		case c := <-calls:
			require.Equal(t, deprecatedCall{route, tenant}, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("request to %s not counted", route)
		}
	}
	wantLink := "<" + link + `>; rel="deprecation"`
	deprecatedAt := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	// A sync success: all three headers.
	r := b.post(t, "/sync", `{}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.True(t, deprecation(t, r).Equal(deprecatedAt))
	require.True(t, sunset(t, r).Equal(time.Date(2027, 1, 31, 11, 0, 0, 0, time.UTC)))
	require.Equal(t, []string{wantLink}, r.Header.Values("Link"))
	counted("sync", "")

	// An async 202 with neither sunset nor link: Deprecation only, and the
	// same value on the next request (the time the node loaded it).
	r = b.post(t, "/queued", `{}`)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	since := deprecation(t, r)
	require.Empty(t, r.Header.Values("Sunset"))
	require.Empty(t, r.Header.Values("Link"))
	counted("queued", "")
	r = b.post(t, "/queued", `{}`)
	require.True(t, deprecation(t, r).Equal(since))
	counted("queued", "")

	// An error answer (401 before the body is read) carries them too,
	// and a caller with a key is counted under its tenant.
	r = b.post(t, "/keyed", `{}`)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Equal(t, "unauthorized", r.errorCode(t))
	require.True(t, deprecation(t, r).Equal(deprecatedAt))
	require.Equal(t, []string{wantLink}, r.Header.Values("Link"))
	counted("keyed", "")
	r = b.send(t, "/keyed", `{}`, map[string]string{"X-Api-Key": k.acme})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.True(t, deprecation(t, r).Equal(deprecatedAt))
	counted("keyed", "acme")

	// A proxied target answer: the target's Link is kept beside ours, its
	// Deprecation replaced.
	r = b.post(t, "/mirrored", `{}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.True(t, deprecation(t, r).Equal(deprecatedAt))
	require.ElementsMatch(t, []string{`</page/2>; rel="next"`, wantLink}, r.Header.Values("Link"))
	counted("mirrored", "")

	// A published route: none of them, and not counted.
	r = b.post(t, "/current", `{}`)
	require.Equal(t, http.StatusOK, r.Status)
	for _, h := range []string{"Deprecation", "Sunset", "Link"} {
		require.Empty(t, r.Header.Values(h), h)
	}
	require.Empty(t, calls)
}

func setupHooks(calls chan<- deprecatedCall) gateway.Hooks {
	return gateway.Hooks{OnDeprecated: func(route, tenant string) { calls <- deprecatedCall{route, tenant} }}
}

func TestRetiredRoute(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	gone := route("gone", "all", "/gone", "crm")
	gone.Lifecycle = lifecycle(config.StateRetired, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z", "https://example.com/v2")
	bare := route("bare", "async", "/bare", "crm")
	bare.Lifecycle = lifecycle(config.StateRetired, "", "", "")
	b := setup(t, newConfig([]*target{crm}, gone, bare))

	r := b.post(t, "/gone", `{}`)
	require.Equal(t, http.StatusGone, r.Status)
	require.Equal(t, "route_retired", r.errorCode(t))
	details := r.json(t)["error"].(map[string]any)["details"].(map[string]any)
	require.Equal(t, "https://example.com/v2", details["link"])
	require.True(t, deprecation(t, r).Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))

	r = b.post(t, "/bare", `{}`)
	require.Equal(t, http.StatusGone, r.Status)
	require.Equal(t, "route_retired", r.errorCode(t))
	require.NotContains(t, r.json(t)["error"], "details", "no link, no details")
	require.Zero(t, crm.hits.Load(), "a retired route calls no target")
	require.Empty(t, b.enq.calls(), "nor queues anything")
}

func TestLifecycleReload(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	mk := func(l config.Lifecycle) *config.Config {
		rt := route("orders", "all", "/orders", "crm")
		rt.Lifecycle = l
		return newConfig([]*target{crm}, rt)
	}
	// The clock moves a day at each config load: the default deprecation
	// time is the load that first deprecated the route.
	var loads atomic.Int64
	day0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return day0.AddDate(0, 0, int(loads.Add(1))) }
	b := setup(t, mk(lifecycle(config.StateDraft, "", "", "")), setupOpts{now: now})
	require.Equal(t, http.StatusNotFound, b.post(t, "/orders", `{}`).Status)

	require.NoError(t, b.gw.Load(mk(lifecycle("", "", "", ""))))
	r := b.post(t, "/orders", `{}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.Header.Values("Deprecation"))

	require.NoError(t, b.gw.Load(mk(lifecycle(config.StateDeprecated, "", "", ""))))
	r = b.post(t, "/orders", `{}`)
	require.Equal(t, http.StatusOK, r.Status)
	since := deprecation(t, r)
	require.True(t, since.Equal(day0.AddDate(0, 0, 3)), "dated by the third load: %v", since)

	// Reloaded still deprecated, now with a link: the default
	// deprecation time stays the one first loaded.
	require.NoError(t, b.gw.Load(mk(lifecycle(config.StateDeprecated, "", "", "https://example.com/v2"))))
	r = b.post(t, "/orders", `{}`)
	require.True(t, deprecation(t, r).Equal(since), "the Deprecation time does not move on reload")
	require.Equal(t, `<https://example.com/v2>; rel="deprecation"`, r.Header.Get("Link"))

	require.NoError(t, b.gw.Load(mk(lifecycle(config.StateRetired, "", "", "https://example.com/v2"))))
	r = b.post(t, "/orders", `{}`)
	require.Equal(t, http.StatusGone, r.Status)
	require.Equal(t, "route_retired", r.errorCode(t))
	require.EqualValues(t, 3, crm.hits.Load(), "the retired route no longer reaches the target")
}
