package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

// withPortalRoutes adds routes a tenant may call or ask for: partner
// (approval), feed (auto), vip (beta only) and soon (a draft).
func withPortalRoutes(b *bundle) {
	cfg := testConfig()
	add := func(name string, access config.SubscriptionMode, tenants []string, state config.LifecycleState) {
		cfg.Routes = append(cfg.Routes, &config.Route{Name: name, Match: config.Match{Method: http.MethodPost, Path: "/" + name},
			Mode: config.ModeAsync, Targets: []config.RouteTarget{{Name: "crm"}}, Auth: config.AuthAPIKey, Tenants: tenants,
			Access: config.Access{Subscription: access}, Lifecycle: config.Lifecycle{State: state}})
	}
	add("partner", config.SubscriptionApproval, nil, "")
	add("feed", config.SubscriptionAuto, nil, "")
	add("vip", config.SubscriptionApproval, []string{"beta"}, "")
	add("soon", config.SubscriptionApproval, nil, config.StateDraft)
	b.cfg.Store(cfg)
}

var (
	keyRe    = regexp.MustCompile(`id="newkey-value"[^>]* value="(fo_[^"]+)"`)
	keyRowRe = regexp.MustCompile(`data-key="(key_[0-9A-Z]+)"`)
)

// row returns the table row of the page that carries attr.
func row(t *testing.T, body, attr string) string {
	t.Helper()
	i := strings.Index(body, attr)
	require.GreaterOrEqual(t, i, 0, "no row with %s", attr)
	end := strings.Index(body[i:], "</tr>")
	require.Greater(t, end, 0)
	return body[i : i+end]
}

func TestPortalTenantRequestsAndAdminDecides(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withPortalRoutes(b)

	tenant := b.browser()
	tenant.signIn(acmeToken)
	p := tenant.get("/ui/access")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, "Developer portal")
	require.Contains(t, p.body, `href="/ui/access" aria-current="page">Portal<`)
	require.Contains(t, p.body, `data-route="partner"`)
	require.Contains(t, p.body, `data-route="soon"`, "drafts are listed as upcoming")
	require.Contains(t, row(t, p.body, `data-route="soon"`), ">draft<")
	require.NotContains(t, p.body, `data-route="vip"`, "a route of another tenant is not offered")
	require.Contains(t, row(t, p.body, `data-route="partner"`), `data-testid="request-partner"`)
	require.NotContains(t, row(t, p.body, `data-route="signup"`), "Request access", "an open route needs no request")

	// Ask for partner (approval) and feed (auto).
	p = tenant.action("/ui/access/subscriptions", url.Values{"route": {"partner"}, "note": {"our shop"}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	p = tenant.get(p.location)
	require.Contains(t, p.body, "Access to partner requested")
	require.Contains(t, row(t, p.body, `data-route="partner"`), "sub-pending")
	require.NotContains(t, row(t, p.body, `data-route="partner"`), "Request access", "asked once")
	tenant.action("/ui/access/subscriptions", url.Values{"route": {"feed"}})
	p = tenant.get("/ui/access")
	require.Contains(t, row(t, p.body, `data-route="feed"`), "sub-active")

	// The tenant cannot decide: the admin API refuses its token.
	subs, err := b.store.ListSubscriptions(context.Background(), fanout.ListSubscriptionsParams{})
	require.NoError(t, err)
	require.Len(t, subs, 2)
	var partnerID string
	for _, s := range subs {
		if s.Route == "partner" {
			partnerID = s.ID
		}
	}
	p = tenant.action("/ui/access/subscriptions/"+partnerID+"/approve", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	p = tenant.get(p.location)
	require.Contains(t, p.body, "Refused:")
	require.Contains(t, p.body, "decisions need the admin token")

	// The operator sees the pending request and approves it.
	op := b.browser()
	op.signIn(adminToken)
	p = op.get("/ui/access?state=pending")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `href="/ui/access" aria-current="page">Access<`)
	r := row(t, p.body, `data-subscription="`+partnerID+`"`)
	require.Contains(t, r, "our shop")
	require.Contains(t, r, `data-testid="approve"`)
	require.Contains(t, r, `data-testid="reject"`)
	p = op.action("/ui/access/subscriptions/"+partnerID+"/approve", url.Values{"reason": {"welcome"}, "state": {"pending"}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	require.Equal(t, "/ui/access?state=pending", p.location)
	p = op.get(p.location)
	require.Contains(t, p.body, "Subscription of acme to partner is now active.")
	require.NotContains(t, p.body, `data-subscription="`+partnerID+`"`, "no longer pending")

	// A wrong move is shown, not a failure page.
	p = op.action("/ui/access/subscriptions/"+partnerID+"/reject", nil)
	p = op.get(p.location)
	require.Contains(t, p.body, "cannot become rejected")

	// The tenant sees it active, with the reason; the audit log has it all.
	p = tenant.get("/ui/access")
	require.Contains(t, row(t, p.body, `data-route="partner"`), "sub-active")
	require.Contains(t, row(t, p.body, `data-route="partner"`), "welcome")
	audit := p.body[strings.Index(p.body, `data-testid="audit"`):]
	require.Contains(t, audit, "subscription.approve")
	require.Contains(t, audit, "tenant:acme")

	// Undo: revoke.
	p = op.action("/ui/access/subscriptions/"+partnerID+"/revoke", url.Values{"reason": {"unpaid"}})
	p = op.get(p.location)
	require.Contains(t, p.body, "is now revoked")
	p = tenant.get("/ui/access")
	require.Contains(t, row(t, p.body, `data-route="partner"`), "sub-revoked")
	require.Contains(t, row(t, p.body, `data-route="partner"`), "Request access", "asked again after a revocation")
}

func TestPortalKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withPortalRoutes(b)
	tenant := b.browser()
	tenant.signIn(acmeToken)
	tenant.get("/ui/access")

	p := tenant.action("/ui/access/keys", url.Values{"name": {"ci"}, "expires": {b.now.Load().AddDate(0, 1, 0).Format("2006-01-02")}})
	require.Equal(t, http.StatusCreated, p.status, p.body)
	m := keyRe.FindStringSubmatch(p.body)
	require.NotNil(t, m, "the new key is shown")
	key := m[1]
	require.True(t, strings.HasPrefix(key, auth.KeyPrefix))
	require.Contains(t, p.body, "shown this once")
	require.Equal(t, "no-store", p.header.Get("Cache-Control"))
	stored, err := b.store.ListKeys(context.Background(), "acme")
	require.NoError(t, err)
	require.Len(t, stored, 1)
	require.Equal(t, auth.HashKey(key), stored[0].SHA256)
	require.False(t, stored[0].ExpiresAt.IsZero())

	// Never again.
	p = tenant.get("/ui/access")
	require.NotContains(t, p.body, key)
	require.Contains(t, p.body, key[:10]+"…", "the prefix tells it apart")
	keyID := keyRowRe.FindStringSubmatch(p.body)[1]

	// Another tenant neither sees it nor revokes it.
	other := b.browser()
	other.signIn(betaToken)
	p = other.get("/ui/access")
	require.NotContains(t, p.body, keyID)
	p = other.action("/ui/access/keys/"+keyID+"/revoke", nil)
	p = other.get(p.location)
	require.Contains(t, p.body, "Revoke refused")

	// A bad name is refused with the API's message.
	p = tenant.action("/ui/access/keys", url.Values{"name": {"has space"}})
	p = tenant.get(p.location)
	require.Contains(t, p.body, "Key refused")

	p = tenant.action("/ui/access/keys/"+keyID+"/revoke", nil)
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	p = tenant.get(p.location)
	require.Contains(t, p.body, "revoked: it is refused from its next request")
	require.Contains(t, row(t, p.body, `data-key="`+keyID+`"`), "sub-revoked")
	require.NotContains(t, row(t, p.body, `data-key="`+keyID+`"`), `data-testid="revoke-key"`)

	// Cross-site posts are refused, as for every action.
	p = tenant.post("/ui/access/keys", url.Values{"name": {"evil"}, "csrf": {tenant.csrf}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, p.status)
	p = tenant.post("/ui/access/keys", url.Values{"name": {"nocsrf"}})
	require.Equal(t, http.StatusForbidden, p.status)
	stored, err = b.store.ListKeys(context.Background(), "acme")
	require.NoError(t, err)
	require.Len(t, stored, 1)
}
