package gateway_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/access"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/sqlite"
)

// TestSubscriptionsAndSelfServiceKeys runs the gateway over a real access
// view (package access) on a real SQLite store, reloaded by the test
// (Refresh) rather than by its polling loop, with the test's clock.
func TestSubscriptionsAndSelfServiceKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	require.NoError(t, store.Migrate(ctx))
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&t0)
	cache := access.New(store, access.Options{Now: func() time.Time { return *now.Load() }})

	crm := newTarget(t, "crm", nil)
	gated := route("gated", "all", "/gated", "crm")
	gated.Auth, gated.Access = config.AuthAPIKey, config.Access{Subscription: config.SubscriptionApproval}
	open := route("open", "all", "/open", "crm")
	open.Auth = config.AuthAPIKey
	k := withTenants(newConfig([]*target{crm}, gated, open))
	k.cfg.Tenants["gamma"] = &config.Tenant{Name: "gamma", AdminTokenSHA256: auth.HashKey("gamma-admin")} // keys of its own only
	b := setup(t, k.cfg, setupOpts{access: cache})
	cache.Refresh(ctx, true)

	newKey := func(tenant, name string, expires time.Time) (string, string) {
		secret, hash := auth.NewKey()
		id := fanout.NewKeyID()
		require.NoError(t, store.CreateKey(ctx, fanout.CreateKeyParams{Actor: "tenant:" + tenant, Key: fanout.APIKey{
			ID: id, Tenant: tenant, Name: name, Prefix: secret[:10], SHA256: hash, CreatedAt: t0, ExpiresAt: expires}}))
		return secret, id
	}
	bearer := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

	// A self-service key, for a tenant with no key in the config: unknown
	// until the view reloads, then it works like a config key.
	key, keyID := newKey("gamma", "ci", time.Time{})
	r := b.send(t, "/open", `{}`, bearer(key))
	require.Equal(t, 401, r.Status)
	cache.Refresh(ctx, false)
	r = b.send(t, "/open", `{}`, bearer(key))
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Empty(t, crm.next(t).Header.Get("Authorization"), "the key does not reach the target")
	r = b.send(t, "/open", `{}`, bearer(k.acme))
	require.Equal(t, 200, r.Status, "config keys still work")
	crm.next(t)

	// The gated route: 403 subscription_required until an active
	// subscription, for config keys and self-service keys alike.
	for _, kk := range []string{key, k.acme} {
		r = b.send(t, "/gated", `{}`, bearer(kk))
		require.Equal(t, 403, r.Status)
		require.Equal(t, "subscription_required", r.errorCode(t))
		details := r.json(t)["error"].(map[string]any)["details"].(map[string]any)
		require.Equal(t, "gated", details["route"])
	}
	sub, err := store.CreateSubscription(ctx, fanout.CreateSubscriptionParams{ID: fanout.NewSubscriptionID(),
		Tenant: "gamma", Route: "gated", State: fanout.SubscriptionPending, Actor: "tenant:gamma", Now: t0})
	require.NoError(t, err)
	cache.Refresh(ctx, false)
	require.Equal(t, 403, b.send(t, "/gated", `{}`, bearer(key)).Status, "pending is not active")
	_, err = store.DecideSubscription(ctx, fanout.DecideSubscriptionParams{ID: sub.ID, State: fanout.SubscriptionActive, Actor: "admin", Now: t0})
	require.NoError(t, err)
	cache.Refresh(ctx, false)
	r = b.send(t, "/gated", `{}`, bearer(key))
	require.Equal(t, 200, r.Status, "%s", r.Body)
	crm.next(t)
	require.Equal(t, 403, b.send(t, "/gated", `{}`, bearer(k.acme)).Status, "acme has none")
	_, err = store.DecideSubscription(ctx, fanout.DecideSubscriptionParams{ID: sub.ID, State: fanout.SubscriptionRevoked, Actor: "admin", Now: t0})
	require.NoError(t, err)
	cache.Refresh(ctx, false)
	require.Equal(t, 403, b.send(t, "/gated", `{}`, bearer(key)).Status, "revoked")

	// Revoked key: 401 from the next reload.
	_, err = store.RevokeKey(ctx, fanout.RevokeKeyParams{ID: keyID, Actor: "admin", Now: t0})
	require.NoError(t, err)
	cache.Refresh(ctx, false)
	r = b.send(t, "/open", `{}`, bearer(key))
	require.Equal(t, 401, r.Status)
	require.Equal(t, "unauthorized", r.errorCode(t))

	// Expired key: 401 as soon as the clock passes its expiry, no reload.
	short, _ := newKey("gamma", "short", t0.Add(time.Hour))
	cache.Refresh(ctx, false)
	require.Equal(t, 200, b.send(t, "/open", `{}`, bearer(short)).Status)
	crm.next(t)
	later := t0.Add(time.Hour)
	now.Store(&later)
	require.Equal(t, 401, b.send(t, "/open", `{}`, bearer(short)).Status)

	// Uses are written by Flush.
	cache.Flush(ctx)
	keys, err := store.ListKeys(ctx, "gamma")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Equal(t, t0, keys[0].LastUsedAt)
	require.Equal(t, t0, keys[1].LastUsedAt)
}

// TestSubscriptionFailsClosed: without an access view, a route that needs
// a subscription refuses every caller.
func TestSubscriptionFailsClosed(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	gated := route("gated", "all", "/gated", "crm")
	gated.Auth, gated.Access = config.AuthAPIKey, config.Access{Subscription: config.SubscriptionAuto}
	k := withTenants(newConfig([]*target{crm}, gated))
	b := setup(t, k.cfg)
	r := b.send(t, "/gated", `{}`, map[string]string{"X-Api-Key": k.acme})
	require.Equal(t, 403, r.Status)
	require.Equal(t, "subscription_required", r.errorCode(t))
	require.Zero(t, crm.hits.Load())
}
