package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

func TestSignInAndSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser()

	p := br.get("/ui/")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/ui/login", p.location)

	p = br.post("/ui/login", url.Values{"token": {"not-a-token"}})
	require.Equal(t, http.StatusUnauthorized, p.status)
	require.Contains(t, p.body, "This token is not accepted")
	require.Empty(t, p.header.Values("Set-Cookie"))

	p = br.post("/ui/login", url.Values{"token": {adminToken}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/ui/", p.location)
	cookie := p.header.Get("Set-Cookie")
	require.Contains(t, cookie, "fanout_ui_session=")
	require.Contains(t, cookie, "HttpOnly")
	require.Contains(t, cookie, "SameSite=Strict")
	require.Contains(t, cookie, "Path=/ui/")
	require.NotContains(t, cookie, adminToken)
	require.NotContains(t, p.location, adminToken)

	p = br.get("/ui/")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `data-route="signup"`)
	require.Contains(t, p.body, `data-route="orders"`)
	require.Contains(t, p.body, `data-target="crm"`)
	require.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Contains(t, p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.NotContains(t, p.header.Get("Content-Security-Policy"), "unsafe-inline")
	require.Equal(t, "DENY", p.header.Get("X-Frame-Options"))
	require.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"))
	require.NotContains(t, p.body, "<script>", "no inline script")
	require.NotContains(t, p.body, adminToken)

	// The assets are embedded.
	for _, a := range []string{"/ui/assets/app.js", "/ui/assets/app.css"} {
		p = br.get(a)
		require.Equal(t, http.StatusOK, p.status, a)
		require.NotEmpty(t, p.body)
	}

	// Signing out ends the session on the server: the old cookie is no
	// longer accepted.
	jarCookies := br.client.Jar.Cookies(mustURL(t, b.srv.URL+"/ui/"))
	p = br.action("/ui/logout", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	replay := b.browser()
	replay.client.Jar.SetCookies(mustURL(t, b.srv.URL+"/ui/"), jarCookies)
	p = replay.get("/ui/")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/ui/login", p.location)

	require.NotContains(t, b.logs.String(), adminToken, "a token in the logs")
	require.Contains(t, b.logs.String(), "ui sign-in")
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestActionsNeedCSRFTokenAndSameOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.seed("orders", "", *b.now.Load())
	require.Equal(t, 1, b.kill("crm"))
	br := b.browser()
	br.signIn(adminToken)
	p := br.get("/ui/messages/" + id)
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.NotEmpty(t, br.csrf)

	// No token, a wrong token, a cross-site request with the right token:
	// all refused, nothing replayed.
	p = br.post("/ui/messages/"+id+"/replay", url.Values{})
	require.Equal(t, http.StatusForbidden, p.status)
	p = br.post("/ui/messages/"+id+"/replay", url.Values{"csrf": {br.csrf + "x"}})
	require.Equal(t, http.StatusForbidden, p.status)
	p = br.post("/ui/messages/"+id+"/replay", url.Values{"csrf": {br.csrf}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, p.status)
	require.Contains(t, p.body, "another site")
	require.Equal(t, fanout.StateDead, b.state(id, "crm"))

	// Another session's CSRF token does not work either.
	other := b.browser()
	other.signIn(adminToken)
	other.get("/ui/messages/" + id)
	p = br.post("/ui/messages/"+id+"/replay", url.Values{"csrf": {other.csrf}})
	require.Equal(t, http.StatusForbidden, p.status)
	require.Equal(t, fanout.StateDead, b.state(id, "crm"))

	p = br.action("/ui/messages/"+id+"/replay", url.Values{"target": {"crm"}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, fanout.StatePending, b.state(id, "crm"))
	p = br.get(p.location)
	require.Contains(t, p.body, "Replayed the delivery of message "+id+" to crm: 1 delivery due again.")
	require.Contains(t, p.body, `aria-live="polite"`)
	// The result is shown once.
	p = br.get("/ui/messages/" + id)
	require.NotContains(t, p.body, "due again.")

	// A cross-site sign-in is refused too.
	p = b.browser().post("/ui/login", url.Values{"token": {adminToken}}, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, p.status)
}

func TestSessionExpiresAndFollowsTokenRevocation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser()
	br.signIn(adminToken)
	b.advance(9 * time.Minute)
	require.Equal(t, http.StatusOK, br.get("/ui/messages").status)
	b.advance(9 * time.Minute) // idle timeout is 10m since the last request
	require.Equal(t, http.StatusOK, br.get("/ui/messages").status)
	b.advance(11 * time.Minute)
	p := br.get("/ui/messages")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.True(t, strings.HasPrefix(p.location, "/ui/login"), p.location)

	// A tenant's token removed from the config (hot reload) ends its
	// session at the next page, with a message saying why.
	tb := b.browser()
	p = tb.signIn(acmeToken)
	require.Equal(t, http.StatusOK, p.status)
	cfg := testConfig()
	cfg.Tenants["acme"] = &config.Tenant{AdminTokenSHA256: hashOf("rotated")}
	b.cfg.Store(cfg)
	p = tb.get("/ui/messages")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/ui/login?next=%2Fui%2Fmessages&reason=revoked", p.location)
	p = tb.get(p.location)
	require.Contains(t, p.body, "no longer accepts the token of your session")
	require.Equal(t, http.StatusSeeOther, tb.get("/ui/messages").status, "the session is gone")
}

func TestTenantTokenSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := *b.now.Load()
	acme := b.seed("orders", "acme", now)
	beta := b.seed("orders", "beta", now.Add(time.Millisecond))
	require.Equal(t, 2, b.kill("crm"))

	br := b.browser()
	p := br.signIn(acmeToken)
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, "Tenant <strong>acme</strong>")
	require.Contains(t, p.body, acme)
	require.NotContains(t, p.body, beta)
	// The operator's pages are not the tenant's.
	p = br.get("/ui/")
	require.Equal(t, "/ui/messages", p.location)
	require.Equal(t, http.StatusForbidden, br.get("/ui/stats.json").status)
	require.Equal(t, http.StatusForbidden, br.get("/ui/routes/orders/backfill").status)
	// Another tenant's message does not exist for it, and cannot be
	// replayed or deleted.
	require.Equal(t, http.StatusNotFound, br.get("/ui/messages/"+beta).status)
	p = br.action("/ui/messages/"+beta+"/replay", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Contains(t, br.get(p.location).body, "no message")
	require.Equal(t, fanout.StateDead, b.state(beta, "crm"))
	br.get("/ui/messages")
	p = br.action("/ui/messages/"+beta+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	_, err := b.store.GetMessage(context.Background(), beta)
	require.NoError(t, err, "beta's message survived")
	// A bulk replay is limited to its own tenant.
	p = br.get("/ui/dead/replay?target=crm")
	require.Contains(t, p.body, "<strong>1</strong> dead delivery")
	p = br.action("/ui/dead/replay", url.Values{"target": {"crm"}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Contains(t, br.get(p.location).body, "Replayed 1 dead delivery to crm.")
	require.Equal(t, fanout.StatePending, b.state(acme, "crm"))
	require.Equal(t, fanout.StateDead, b.state(beta, "crm"))
}

func TestMessagesFilterAndCursorPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := b.now.Load().Add(-time.Hour)
	var want []string
	for i := range 120 {
		want = append(want, b.seed("orders", "", start.Add(time.Duration(i)*time.Second)))
	}
	b.seed("signup", "", start)
	br := b.browser()
	br.signIn(adminToken)
	var seen []string
	next := "/ui/messages?route=orders"
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 5)
		p := br.get(next)
		require.Equal(t, http.StatusOK, p.status, b.logs.String())
		require.NotContains(t, p.body, "signup:")
		for _, m := range idRe.FindAllStringSubmatch(p.body, -1) {
			seen = append(seen, m[1])
		}
		next = ""
		if m := nextRe.FindStringSubmatch(p.body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	require.Len(t, seen, 120)
	for i, id := range seen {
		require.Equal(t, want[len(want)-1-i], id, "newest first, no repeat")
	}

	b.kill("crm")
	p := br.get("/ui/messages?state=dead&route=signup")
	require.Len(t, idRe.FindAllString(p.body, -1), 1)
	p = br.get("/ui/messages?since=yesterday")
	require.Equal(t, http.StatusBadRequest, p.status)
	require.Contains(t, p.body, "since: want an RFC 3339 time")
	p = br.get("/ui/messages?id=" + want[3])
	require.Equal(t, "/ui/messages/"+want[3], p.location)
}

func TestMessagePageDeleteAndBulkReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := *b.now.Load()
	var ids []string
	for i := range 3 {
		ids = append(ids, b.seed("signup", "", now.Add(time.Duration(i)*time.Millisecond)))
	}
	require.Equal(t, 3, b.kill("crm"))
	br := b.browser()
	br.signIn(adminToken)

	p := br.get("/ui/messages/" + ids[0])
	require.Equal(t, http.StatusOK, p.status)
	require.Contains(t, p.body, "{\n  &#34;n&#34;: 1\n}", "pretty JSON body")
	require.Contains(t, p.body, "down for maintenance")
	require.Contains(t, p.body, "1 attempt · last status 503 · status</p>")
	require.Contains(t, p.body, "status 503")
	require.Contains(t, p.body, `data-target="crm" data-state="dead"`)

	p = br.get("/ui/dead")
	require.Contains(t, p.body, `<a href="/ui/dead?target=crm">crm</a></th><td class="num">3</td>`)
	p = br.get("/ui/dead?target=crm&route=signup")
	require.Contains(t, p.body, `href="/ui/dead/replay?route=signup&amp;target=crm"`)
	p = br.get("/ui/dead/replay?target=crm&route=signup")
	require.Contains(t, p.body, "<strong>3</strong> dead deliveries to <strong>crm</strong>")
	p = br.action("/ui/dead/replay", url.Values{"target": {"crm"}, "route": {"signup"}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Contains(t, br.get(p.location).body, "Replayed 3 dead deliveries to crm.")
	for _, id := range ids {
		require.Equal(t, fanout.StatePending, b.state(id, "crm"))
	}

	p = br.get("/ui/messages/" + ids[1] + "/delete")
	require.Contains(t, p.body, "cannot be undone")
	p = br.action("/ui/messages/"+ids[1]+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Contains(t, br.get(p.location).body, "Deleted message "+ids[1])
	_, err := b.store.GetMessage(context.Background(), ids[1])
	require.ErrorIs(t, err, fanout.ErrNotFound)
}

func TestBackfillAndStatsJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := *b.now.Load()
	id := b.seed("orders", "", now.Add(-time.Minute))
	cfg := testConfig()
	cfg.Route("orders").Targets = append(cfg.Route("orders").Targets, config.RouteTarget{Name: "analytics"})
	b.cfg.Store(cfg)
	br := b.browser()
	br.signIn(adminToken)
	p := br.get("/ui/routes/orders/backfill")
	require.Equal(t, http.StatusOK, p.status, p.body)
	p = br.action("/ui/routes/orders/backfill", url.Values{"target": {"analytics"}, "since": {"1h"}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Contains(t, br.get(p.location).body, "Queued 1 delivery of route orders to analytics.")
	require.Equal(t, fanout.StatePending, b.state(id, "analytics"))
	p = br.action("/ui/routes/orders/backfill", url.Values{"target": {"analytics"}, "since": {"soon"}})
	require.Contains(t, br.get(p.location).body, "Backfill refused: since:")

	p = br.get("/ui/stats.json?window=1h")
	require.Equal(t, http.StatusOK, p.status)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(p.body), &rep))
	require.Equal(t, "1h", rep["window"])
	require.Equal(t, http.StatusNotFound, br.get("/ui/nope").status)
}
