package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// The contract of fanout.AccessStore: a store under test must implement
// it too.

// access returns the bundle's store as an AccessStore.
func (b *bundle) access() fanout.AccessStore {
	b.t.Helper()
	as, ok := b.store.(fanout.AccessStore)
	require.True(b.t, ok, "%T does not implement fanout.AccessStore", b.store)
	return as
}

// request asks for a subscription of tenant to route in state at.
func (b *bundle) request(tenant, route string, state fanout.SubscriptionState, at time.Time) fanout.Subscription {
	b.t.Helper()
	sub, err := b.access().CreateSubscription(b.ctx, fanout.CreateSubscriptionParams{
		ID: fanout.NewSubscriptionID(), Tenant: tenant, Route: route, Note: "we need " + route,
		State: state, Actor: fanout.ActorTenant(tenant), Now: at,
	})
	require.NoError(b.t, err)
	return sub
}

// decide moves subscription id to state at, as the admin.
func (b *bundle) decide(id string, state fanout.SubscriptionState, at time.Time) (fanout.Subscription, error) {
	b.t.Helper()
	return b.access().DecideSubscription(b.ctx, fanout.DecideSubscriptionParams{
		ID: id, State: state, Reason: "because " + string(state), Actor: fanout.ActorAdmin, Now: at,
	})
}

// version reads the access version.
func (b *bundle) version() int64 {
	b.t.Helper()
	v, err := b.access().AccessVersion(b.ctx)
	require.NoError(b.t, err)
	return v
}

// newKey stores a key named name of tenant created at, and returns it.
func (b *bundle) newKey(tenant, name string, at, expires time.Time) fanout.APIKey {
	b.t.Helper()
	k := fanout.APIKey{
		ID: fanout.NewKeyID(), Tenant: tenant, Name: name, Prefix: "fo_" + name[:1],
		SHA256: sha(tenant + "/" + name + at.String()), CreatedAt: at, ExpiresAt: expires,
	}
	require.NoError(b.t, b.access().CreateKey(b.ctx, fanout.CreateKeyParams{Key: k, Actor: fanout.ActorTenant(tenant)}))
	return k
}

// sha is a stand-in hash: 64 hex digits that differ with s.
func sha(s string) string {
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 64)
	h := uint64(14695981039346656037)
	for i := range out {
		for j := 0; j < len(s); j++ {
			h = (h ^ uint64(s[j])) * 1099511628211
		}
		h = (h ^ uint64(i)) * 1099511628211
		out[i] = hexDigits[h%16]
	}
	return string(out)
}

func accessTests() []test {
	return []test{
		{"SubscriptionLifecycle", func(t *testing.T, b *bundle) {
			as := b.access()
			v0 := b.version()
			sub := b.request("acme", "orders", fanout.SubscriptionPending, b.t0)
			require.Equal(t, fanout.SubscriptionPending, sub.State)
			require.NotEmpty(t, sub.ID)
			require.Greater(t, b.version(), v0)

			got, err := as.GetSubscription(b.ctx, sub.ID)
			require.NoError(t, err)
			require.Equal(t, fanout.Subscription{ID: sub.ID, Tenant: "acme", Route: "orders",
				State: fanout.SubscriptionPending, Note: "we need orders", RequestedAt: b.t0}, got)

			snap, err := as.AccessSnapshot(b.ctx)
			require.NoError(t, err)
			require.Empty(t, snap.Subscriptions, "a pending subscription is not active")

			v1 := b.version()
			approved, err := b.decide(sub.ID, fanout.SubscriptionActive, b.at(time.Minute))
			require.NoError(t, err)
			require.Equal(t, fanout.SubscriptionActive, approved.State)
			require.Equal(t, fanout.ActorAdmin, approved.DecidedBy)
			require.Equal(t, "because active", approved.Reason)
			require.Equal(t, b.at(time.Minute), approved.DecidedAt)
			require.Greater(t, b.version(), v1)

			snap, err = as.AccessSnapshot(b.ctx)
			require.NoError(t, err)
			require.Equal(t, b.version(), snap.Version)
			require.Len(t, snap.Subscriptions, 1)
			require.Equal(t, approved, snap.Subscriptions[0])

			_, err = b.decide(sub.ID, fanout.SubscriptionRevoked, b.at(2*time.Minute))
			require.NoError(t, err)
			snap, err = as.AccessSnapshot(b.ctx)
			require.NoError(t, err)
			require.Empty(t, snap.Subscriptions)

			audit, err := as.ListAudit(b.ctx, fanout.ListAuditParams{})
			require.NoError(t, err)
			require.Len(t, audit, 3)
			want := []fanout.AuditEntry{
				{At: b.t0, Actor: "tenant:acme", Action: fanout.AuditSubscriptionRequest, Subject: sub.ID, Tenant: "acme", Route: "orders", Reason: "we need orders"},
				{At: b.at(time.Minute), Actor: "admin", Action: fanout.AuditSubscriptionApprove, Subject: sub.ID, Tenant: "acme", Route: "orders", Reason: "because active"},
				{At: b.at(2 * time.Minute), Actor: "admin", Action: fanout.AuditSubscriptionRevoke, Subject: sub.ID, Tenant: "acme", Route: "orders", Reason: "because revoked"},
			}
			for i := range audit {
				require.Greater(t, audit[i].ID, int64(0))
				if i > 0 {
					require.Greater(t, audit[i].ID, audit[i-1].ID)
				}
				audit[i].ID = 0
			}
			require.Equal(t, want, audit)
		}},
		{"OneSubscriptionPerRoute", func(t *testing.T, b *bundle) {
			as := b.access()
			sub := b.request("acme", "orders", fanout.SubscriptionPending, b.t0)
			again, err := as.CreateSubscription(b.ctx, fanout.CreateSubscriptionParams{
				ID: fanout.NewSubscriptionID(), Tenant: "acme", Route: "orders", State: fanout.SubscriptionPending,
				Actor: fanout.ActorTenant("acme"), Now: b.at(time.Second),
			})
			require.ErrorIs(t, err, fanout.ErrConflict)
			require.NotErrorIs(t, err, fanout.ErrStoreUnavailable)
			require.Equal(t, sub.ID, again.ID, "the conflict returns the subscription in the way")

			// Another tenant, another route: their own.
			other := b.request("globex", "orders", fanout.SubscriptionActive, b.at(time.Second))
			require.NotEqual(t, sub.ID, other.ID)
			require.Equal(t, fanout.SubscriptionActive, other.State)

			// Rejected, then asked again: the same subscription, pending
			// again, with the new note and no decision.
			_, err = b.decide(sub.ID, fanout.SubscriptionRejected, b.at(time.Minute))
			require.NoError(t, err)
			re, err := as.CreateSubscription(b.ctx, fanout.CreateSubscriptionParams{
				ID: fanout.NewSubscriptionID(), Tenant: "acme", Route: "orders", Note: "please",
				State: fanout.SubscriptionPending, Actor: fanout.ActorTenant("acme"), Now: b.at(time.Hour),
			})
			require.NoError(t, err)
			require.Equal(t, sub.ID, re.ID)
			got, err := as.GetSubscription(b.ctx, sub.ID)
			require.NoError(t, err)
			require.Equal(t, fanout.Subscription{ID: sub.ID, Tenant: "acme", Route: "orders",
				State: fanout.SubscriptionPending, Note: "please", RequestedAt: b.at(time.Hour)}, got)
		}},
		{"DecisionsFollowTheStates", func(t *testing.T, b *bundle) {
			sub := b.request("acme", "orders", fanout.SubscriptionPending, b.t0)
			_, err := b.decide("sub_missing", fanout.SubscriptionActive, b.t0)
			require.ErrorIs(t, err, fanout.ErrNotFound)

			_, err = b.decide(sub.ID, fanout.SubscriptionActive, b.t0)
			require.NoError(t, err)
			for _, to := range []fanout.SubscriptionState{fanout.SubscriptionActive, fanout.SubscriptionRejected, fanout.SubscriptionPending} {
				got, err := b.decide(sub.ID, to, b.t0)
				require.ErrorIs(t, err, fanout.ErrConflict, "active to %s", to)
				require.Equal(t, fanout.SubscriptionActive, got.State)
			}
			_, err = b.decide(sub.ID, fanout.SubscriptionRevoked, b.t0)
			require.NoError(t, err)
			_, err = b.decide(sub.ID, fanout.SubscriptionRevoked, b.t0)
			require.ErrorIs(t, err, fanout.ErrConflict, "revoked twice")
			// The operator undoes a revocation.
			back, err := b.decide(sub.ID, fanout.SubscriptionActive, b.t0)
			require.NoError(t, err)
			require.Equal(t, fanout.SubscriptionActive, back.State)

			// A pending request may be revoked (withdrawn) too.
			p := b.request("acme", "billing", fanout.SubscriptionPending, b.t0)
			_, err = b.decide(p.ID, fanout.SubscriptionRevoked, b.t0)
			require.NoError(t, err)

			audit, err := b.access().ListAudit(b.ctx, fanout.ListAuditParams{})
			require.NoError(t, err)
			require.Len(t, audit, 6, "refused decisions are not audited")
		}},
		{"ListSubscriptions", func(t *testing.T, b *bundle) {
			as := b.access()
			a := b.request("acme", "orders", fanout.SubscriptionPending, b.t0)
			g := b.request("globex", "orders", fanout.SubscriptionActive, b.at(time.Second))
			c := b.request("acme", "billing", fanout.SubscriptionActive, b.at(2*time.Second))
			ids := func(p fanout.ListSubscriptionsParams) []string {
				t.Helper()
				got, err := as.ListSubscriptions(b.ctx, p)
				require.NoError(t, err)
				var out []string
				for _, s := range got {
					out = append(out, s.ID)
				}
				return out
			}
			require.Equal(t, []string{a.ID, g.ID, c.ID}, ids(fanout.ListSubscriptionsParams{}))
			require.Equal(t, []string{a.ID, c.ID}, ids(fanout.ListSubscriptionsParams{Tenant: "acme"}))
			require.Equal(t, []string{a.ID, g.ID}, ids(fanout.ListSubscriptionsParams{Route: "orders"}))
			require.Equal(t, []string{g.ID, c.ID}, ids(fanout.ListSubscriptionsParams{State: fanout.SubscriptionActive}))
			require.Equal(t, []string{c.ID}, ids(fanout.ListSubscriptionsParams{Tenant: "acme", State: fanout.SubscriptionActive}))
			require.Empty(t, ids(fanout.ListSubscriptionsParams{Tenant: "initech"}))
			_, err := as.GetSubscription(b.ctx, "sub_missing")
			require.ErrorIs(t, err, fanout.ErrNotFound)
		}},
		{"Keys", func(t *testing.T, b *bundle) {
			as := b.access()
			v0 := b.version()
			ci := b.newKey("acme", "ci", b.t0, time.Time{})
			exp := b.newKey("acme", "laptop", b.at(time.Second), b.at(time.Hour))
			other := b.newKey("globex", "ci", b.at(2*time.Second), time.Time{})
			require.Greater(t, b.version(), v0)

			dup := fanout.APIKey{ID: fanout.NewKeyID(), Tenant: "acme", Name: "ci", Prefix: "fo_x", SHA256: sha("dup"), CreatedAt: b.t0}
			err := as.CreateKey(b.ctx, fanout.CreateKeyParams{Key: dup, Actor: "tenant:acme"})
			require.ErrorIs(t, err, fanout.ErrConflict, "a live key of the tenant has that name")

			keys, err := as.ListKeys(b.ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, []fanout.APIKey{ci, exp}, keys)
			all, err := as.ListKeys(b.ctx, "")
			require.NoError(t, err)
			require.Len(t, all, 3)

			// Another tenant's key is not found through a tenant's scope.
			_, err = as.RevokeKey(b.ctx, fanout.RevokeKeyParams{ID: other.ID, Tenant: "acme", Actor: "tenant:acme", Now: b.t0})
			require.ErrorIs(t, err, fanout.ErrNotFound)

			v1 := b.version()
			revoked, err := as.RevokeKey(b.ctx, fanout.RevokeKeyParams{ID: ci.ID, Tenant: "acme", Reason: "leaked", Actor: "tenant:acme", Now: b.at(time.Minute)})
			require.NoError(t, err)
			require.Equal(t, b.at(time.Minute), revoked.RevokedAt)
			require.Greater(t, b.version(), v1)
			_, err = as.RevokeKey(b.ctx, fanout.RevokeKeyParams{ID: ci.ID, Actor: "admin", Now: b.at(time.Minute)})
			require.ErrorIs(t, err, fanout.ErrConflict)
			_, err = as.RevokeKey(b.ctx, fanout.RevokeKeyParams{ID: "key_missing", Actor: "admin", Now: b.t0})
			require.ErrorIs(t, err, fanout.ErrNotFound)

			snap, err := as.AccessSnapshot(b.ctx)
			require.NoError(t, err)
			require.Equal(t, []fanout.APIKey{exp, other}, snap.Keys, "revoked keys are not in the snapshot; expired ones are")
			require.True(t, exp.Valid(b.t0))
			require.False(t, exp.Valid(b.at(time.Hour)))
			require.False(t, revoked.Valid(b.t0))

			// The name is free again once its key is revoked.
			b.newKey("acme", "ci", b.at(2*time.Minute), time.Time{})
			keys, err = as.ListKeys(b.ctx, "acme")
			require.NoError(t, err)
			require.Len(t, keys, 3, "revoked keys stay listed")

			audit, err := as.ListAudit(b.ctx, fanout.ListAuditParams{Tenant: "acme"})
			require.NoError(t, err)
			var actions []string
			for _, e := range audit {
				actions = append(actions, e.Action+" "+e.Subject[:4]+" "+e.Reason)
			}
			require.Equal(t, []string{"key.create key_ ci", "key.create key_ laptop", "key.revoke key_ leaked", "key.create key_ ci"}, actions)
		}},
		{"TouchKeys", func(t *testing.T, b *bundle) {
			as := b.access()
			k := b.newKey("acme", "ci", b.t0, time.Time{})
			v := b.version()
			require.NoError(t, as.TouchKeys(b.ctx, map[string]time.Time{k.ID: b.at(time.Hour), "key_missing": b.t0}))
			require.NoError(t, as.TouchKeys(b.ctx, map[string]time.Time{k.ID: b.at(time.Minute)}), "an older time is ignored")
			require.NoError(t, as.TouchKeys(b.ctx, nil))
			keys, err := as.ListKeys(b.ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, b.at(time.Hour), keys[0].LastUsedAt)
			require.Equal(t, v, b.version(), "use is not a change")
		}},
		{"Audit", func(t *testing.T, b *bundle) {
			as := b.access()
			for i := range 5 {
				b.newKey("acme", string(rune('a'+i)), b.at(time.Duration(i)*time.Hour), time.Time{})
			}
			b.newKey("globex", "z", b.at(90*time.Minute), time.Time{})
			since, err := as.ListAudit(b.ctx, fanout.ListAuditParams{Since: b.at(3 * time.Hour)})
			require.NoError(t, err)
			require.Len(t, since, 2)
			require.Equal(t, b.at(3*time.Hour), since[0].At)

			page, err := as.ListAudit(b.ctx, fanout.ListAuditParams{Limit: 2})
			require.NoError(t, err)
			require.Len(t, page, 2)
			next, err := as.ListAudit(b.ctx, fanout.ListAuditParams{After: page[1].ID, Limit: 10})
			require.NoError(t, err)
			require.Len(t, next, 4)
			require.Greater(t, next[0].ID, page[1].ID)

			g, err := as.ListAudit(b.ctx, fanout.ListAuditParams{Tenant: "globex"})
			require.NoError(t, err)
			require.Len(t, g, 1)
			require.Equal(t, "z", g[0].Reason)
		}},
		{"ConcurrentRequests", func(t *testing.T, b *bundle) {
			// Requests of one tenant for one route, and keys of one name,
			// made at once: one of each wins, the others conflict.
			as := b.access()
			const n = 8
			subErrs := make(chan error, n)
			keyErrs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, err := as.CreateSubscription(b.ctx, fanout.CreateSubscriptionParams{
						ID: fanout.NewSubscriptionID(), Tenant: "acme", Route: "orders",
						State: fanout.SubscriptionPending, Actor: "tenant:acme", Now: b.t0,
					})
					subErrs <- err
					keyErrs <- as.CreateKey(b.ctx, fanout.CreateKeyParams{Actor: "tenant:acme", Key: fanout.APIKey{
						ID: fanout.NewKeyID(), Tenant: "acme", Name: "ci", Prefix: "fo_c",
						SHA256: sha(fmt.Sprint("concurrent", i)), CreatedAt: b.t0,
					}})
				})
			}
			wg.Wait()
			close(subErrs)
			close(keyErrs)
			for _, errs := range []chan error{subErrs, keyErrs} {
				won := 0
				for err := range errs {
					if err == nil {
						won++
						continue
					}
					require.ErrorIs(t, err, fanout.ErrConflict)
				}
				require.Equal(t, 1, won)
			}
			subs, err := as.ListSubscriptions(b.ctx, fanout.ListSubscriptionsParams{})
			require.NoError(t, err)
			require.Len(t, subs, 1)
			keys, err := as.ListKeys(b.ctx, "acme")
			require.NoError(t, err)
			require.Len(t, keys, 1)
		}},
		{"Durable", func(t *testing.T, b *bundle) {
			sub := b.request("acme", "orders", fanout.SubscriptionActive, b.t0)
			k := b.newKey("acme", "ci", b.t0, b.at(time.Hour))
			v := b.version()
			b.restart()
			snap, err := b.access().AccessSnapshot(b.ctx)
			require.NoError(t, err)
			require.Equal(t, v, snap.Version)
			require.Equal(t, []fanout.Subscription{sub}, snap.Subscriptions)
			require.Equal(t, []fanout.APIKey{k}, snap.Keys)
		}},
	}
}
