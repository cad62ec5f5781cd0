package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

// withAccessRoutes gives the bundle's config tenant tokens (acme, beta)
// and three routes that need a subscription: orders (approval), feed
// (auto) and vip (approval, tenant beta only).
func withAccessRoutes(b *bundle) (acme, beta string) {
	acme, beta = withTenantTokens(b)
	cfg := b.cfg.Load()
	for _, r := range []struct {
		name    string
		mode    config.SubscriptionMode
		tenants []string
	}{{"orders", config.SubscriptionApproval, nil}, {"feed", config.SubscriptionAuto, nil}, {"vip", config.SubscriptionApproval, []string{"beta"}}} {
		cfg.Routes = append(cfg.Routes, &config.Route{
			Name: r.name, Match: config.Match{Method: http.MethodPost, Path: "/" + r.name},
			Mode: config.ModeAsync, Targets: []config.RouteTarget{{Name: "crm"}},
			Auth: config.AuthAPIKey, Tenants: r.tenants, Access: config.Access{Subscription: r.mode},
		})
	}
	cfg.Tenants["acme"].Keys = []config.APIKey{{Name: "config-key", SHA256: auth.HashKey("k")}}
	b.cfg.Store(cfg)
	return acme, beta
}

func TestSubscriptionApproval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acmeToken, betaToken := withAccessRoutes(b)
	ctx := context.Background()
	acme := admin.NewClient(b.srv.URL, acmeToken, b.httpClient())
	beta := admin.NewClient(b.srv.URL, betaToken, b.httpClient())

	// A tenant asks: pending under approval, active at once under auto.
	sub, err := acme.RequestSubscription(ctx, admin.SubscriptionRequest{Route: "orders", Note: "our shop"})
	require.NoError(t, err)
	require.Equal(t, "pending", sub.State)
	require.Equal(t, "acme", sub.Tenant)
	require.True(t, strings.HasPrefix(sub.ID, "sub_"))
	require.Equal(t, int64(1), b.accessChanges.Load(), "this node reloads at once")
	feed, err := acme.RequestSubscription(ctx, admin.SubscriptionRequest{Route: "feed"})
	require.NoError(t, err)
	require.Equal(t, "active", feed.State)

	// Asking twice, asking for another tenant, for a route that needs no
	// subscription, that does not exist, or that the tenant may not call.
	res, body := b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"orders"}`)
	e := b.requireError(res, body, http.StatusConflict, "subscription_exists")
	require.Equal(t, sub.ID, e.Error.Details["id"])
	res, body = b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"orders","tenant":"beta"}`)
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	res, body = b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"profile"}`)
	b.requireError(res, body, http.StatusConflict, "subscription_not_required")
	res, body = b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"nope"}`)
	b.requireError(res, body, http.StatusNotFound, "route_not_found")
	res, body = b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"vip"}`)
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	res, body = b.do(http.MethodPost, "/v1/subscriptions", acmeToken, `{"route":"orders","note":"`+strings.Repeat("x", 1001)+`"}`)
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
	res, body = b.do(http.MethodPost, "/v1/subscriptions", testToken, `{"route":"orders"}`)
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter") // the admin names the tenant
	res, body = b.do(http.MethodPost, "/v1/subscriptions", testToken, `{"route":"orders","tenant":"ghost"}`)
	b.requireError(res, body, http.StatusNotFound, "tenant_not_found")

	// A tenant cannot decide, not even on its own request.
	for _, action := range []string{"approve", "reject", "revoke"} {
		res, body := b.do(http.MethodPost, "/v1/subscriptions/"+sub.ID+"/"+action, acmeToken, `{}`)
		b.requireError(res, body, http.StatusForbidden, "forbidden")
	}

	// A tenant sees its own subscriptions only.
	bs, err := beta.RequestSubscription(ctx, admin.SubscriptionRequest{Route: "vip"})
	require.NoError(t, err)
	mine, err := acme.ListSubscriptions(ctx, "", "", "")
	require.NoError(t, err)
	require.Len(t, mine, 2)
	for _, s := range mine {
		require.Equal(t, "acme", s.Tenant)
	}
	res, body = b.do(http.MethodGet, "/v1/subscriptions?tenant=beta", acmeToken, "")
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	res, body = b.do(http.MethodGet, "/v1/subscriptions/"+bs.ID, acmeToken, "")
	b.requireError(res, body, http.StatusNotFound, "subscription_not_found")
	all, err := b.client.ListSubscriptions(ctx, "", "", "pending")
	require.NoError(t, err)
	require.Len(t, all, 2, "the admin sees every tenant's")

	// The admin approves, then revokes; a wrong move is a conflict.
	ok, err := b.client.DecideSubscription(ctx, sub.ID, "approve", "welcome")
	require.NoError(t, err)
	require.Equal(t, "active", ok.State)
	require.Equal(t, "admin", ok.DecidedBy)
	require.Equal(t, "welcome", ok.Reason)
	require.NotNil(t, ok.DecidedAt)
	res, body = b.do(http.MethodPost, "/v1/subscriptions/"+sub.ID+"/reject", testToken, `{"reason":"too late"}`)
	e = b.requireError(res, body, http.StatusConflict, "invalid_transition")
	require.Equal(t, "active", e.Error.Details["state"])
	res, body = b.do(http.MethodPost, "/v1/subscriptions/sub_nope/approve", testToken, ``)
	b.requireError(res, body, http.StatusNotFound, "subscription_not_found")
	_, err = b.client.DecideSubscription(ctx, sub.ID, "revoke", "unpaid invoice")
	require.NoError(t, err)
	_, err = b.client.DecideSubscription(ctx, bs.ID, "reject", "not yet")
	require.NoError(t, err)

	// Every decision is in the audit log: who, what, on what, why, when.
	audit, err := b.client.Audit(ctx, "", "", 0)
	require.NoError(t, err)
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Tenant+"/"+e.Route+" "+e.Reason)
		require.Equal(t, b.now, e.At)
	}
	require.Equal(t, []string{
		"tenant:acme subscription.request acme/orders our shop",
		"tenant:acme subscription.request acme/feed ",
		"tenant:beta subscription.request beta/vip ",
		"admin subscription.approve acme/orders welcome",
		"admin subscription.revoke acme/orders unpaid invoice",
		"admin subscription.reject beta/vip not yet",
	}, got)
	mineAudit, err := acme.Audit(ctx, "", "", 0)
	require.NoError(t, err)
	require.Len(t, mineAudit.Entries, 4, "a tenant reads the entries of its own tenant")
	res, body = b.do(http.MethodGet, "/v1/audit?tenant=beta", acmeToken, "")
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	res, body = b.do(http.MethodGet, "/v1/audit?since=tomorrow", testToken, "")
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
	page, err := b.client.Audit(ctx, "1h", "", audit.Entries[3].ID)
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
}

func TestSelfServiceKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acmeToken, betaToken := withAccessRoutes(b)
	ctx := context.Background()
	acme := admin.NewClient(b.srv.URL, acmeToken, b.httpClient())
	beta := admin.NewClient(b.srv.URL, betaToken, b.httpClient())

	expires := b.now.Add(24 * time.Hour).Format(time.RFC3339)
	k, err := acme.CreateKey(ctx, admin.KeyRequest{Name: "ci", ExpiresAt: expires})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(k.Secret, auth.KeyPrefix))
	require.Equal(t, k.Secret[:10], k.Prefix)
	require.Equal(t, "acme", k.Tenant)
	require.NotNil(t, k.ExpiresAt)

	// Only the hash is stored.
	stored, err := b.store.ListKeys(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, stored, 1)
	require.Equal(t, auth.HashKey(k.Secret), stored[0].SHA256)

	// The listing never shows the key.
	res, body := b.do(http.MethodGet, "/v1/keys", acmeToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.NotContains(t, string(body), k.Secret)
	require.NotContains(t, string(body), stored[0].SHA256)
	list, err := acme.ListKeys(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, k.ID, list[0].ID)

	// Bad requests.
	for _, tc := range []struct{ body, code string }{
		{`{"name":""}`, "invalid_parameter"},
		{`{"name":"has space"}`, "invalid_parameter"},
		{`{"name":"x","expires_at":"soon"}`, "invalid_parameter"},
		{`{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, "invalid_parameter"},
		{`{"name":"x","secret":"mine"}`, "invalid_parameter"},
	} {
		res, body := b.do(http.MethodPost, "/v1/keys", acmeToken, tc.body)
		b.requireError(res, body, http.StatusBadRequest, tc.code)
	}
	res, body = b.do(http.MethodPost, "/v1/keys", acmeToken, `{"name":"ci"}`)
	b.requireError(res, body, http.StatusConflict, "key_name_taken")
	res, body = b.do(http.MethodPost, "/v1/keys", acmeToken, `{"name":"config-key"}`)
	b.requireError(res, body, http.StatusConflict, "key_name_taken")
	res, body = b.do(http.MethodPost, "/v1/keys", acmeToken, `{"name":"x","tenant":"beta"}`)
	b.requireError(res, body, http.StatusForbidden, "forbidden")

	// A tenant neither sees nor revokes another's keys.
	bk, err := beta.CreateKey(ctx, admin.KeyRequest{Name: "ci"})
	require.NoError(t, err)
	res, body = b.do(http.MethodDelete, "/v1/keys/"+bk.ID, acmeToken, "")
	b.requireError(res, body, http.StatusNotFound, "key_not_found")
	res, body = b.do(http.MethodGet, "/v1/keys?tenant=beta", acmeToken, "")
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	all, err := b.client.ListKeys(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 2)

	// Revoke, once.
	changes := b.accessChanges.Load()
	rk, err := acme.RevokeKey(ctx, k.ID)
	require.NoError(t, err)
	require.NotNil(t, rk.RevokedAt)
	require.Equal(t, changes+1, b.accessChanges.Load())
	res, body = b.do(http.MethodDelete, "/v1/keys/"+k.ID, acmeToken, "")
	b.requireError(res, body, http.StatusConflict, "key_revoked")

	// The admin creates a key for a tenant it names.
	ak, err := b.client.CreateKey(ctx, admin.KeyRequest{Name: "ops", Tenant: "beta"})
	require.NoError(t, err)
	require.Equal(t, "beta", ak.Tenant)
	res, body = b.do(http.MethodPost, "/v1/keys", testToken, `{"name":"ops"}`)
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")

	audit, err := b.client.Audit(ctx, "", "acme", 0)
	require.NoError(t, err)
	require.Len(t, audit.Entries, 2)
	require.Equal(t, fanout.AuditKeyCreate, audit.Entries[0].Action)
	require.Equal(t, "tenant:acme", audit.Entries[0].Actor)
	require.Equal(t, fanout.AuditKeyRevoke, audit.Entries[1].Action)
}

func TestKeyCreationRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acmeToken, betaToken := withAccessRoutes(b)
	ctx := context.Background()
	acme := admin.NewClient(b.srv.URL, acmeToken, b.httpClient())
	for i := range 10 {
		_, err := acme.CreateKey(ctx, admin.KeyRequest{Name: "k" + string(rune('a'+i))})
		require.NoError(t, err)
	}
	res, body := b.do(http.MethodPost, "/v1/keys", acmeToken, `{"name":"eleventh"}`)
	b.requireError(res, body, http.StatusTooManyRequests, "rate_limited")
	require.Equal(t, "360", res.Header.Get("Retry-After"))
	// Another tenant has its own budget.
	res, body = b.do(http.MethodPost, "/v1/keys", betaToken, `{"name":"first"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	keys, err := b.store.ListKeys(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, keys, 10, "the refused key was not made")
}
