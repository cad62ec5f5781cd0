package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/access"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/sqlite"
)

// flaky is a real store that can be made to fail.
type flaky struct {
	*sqlite.Store
	down atomic.Bool
}

var errDown = errors.New("store down")

func (f *flaky) AccessVersion(ctx context.Context) (int64, error) {
	if f.down.Load() {
		return 0, errDown
	}
	return f.Store.AccessVersion(ctx)
}

func (f *flaky) AccessSnapshot(ctx context.Context) (fanout.AccessSnapshot, error) {
	if f.down.Load() {
		return fanout.AccessSnapshot{}, errDown
	}
	return f.Store.AccessSnapshot(ctx)
}

func open(t *testing.T) *flaky {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(t.Context()))
	return &flaky{Store: s}
}

func addKey(t *testing.T, s *flaky, tenant string) string {
	t.Helper()
	secret, hash := auth.NewKey()
	require.NoError(t, s.CreateKey(t.Context(), fanout.CreateKeyParams{Actor: "admin", Key: fanout.APIKey{
		ID: fanout.NewKeyID(), Tenant: tenant, Name: "k" + secret[3:8], Prefix: secret[:10], SHA256: hash, CreatedAt: time.Now()}}))
	return secret
}

func TestFailsClosedThenKeepsTheLastState(t *testing.T) {
	t.Parallel()
	s := open(t)
	key := addKey(t, s, "acme")
	_, err := s.CreateSubscription(t.Context(), fanout.CreateSubscriptionParams{ID: fanout.NewSubscriptionID(),
		Tenant: "acme", Route: "orders", State: fanout.SubscriptionActive, Actor: "admin", Now: time.Now()})
	require.NoError(t, err)

	s.down.Store(true)
	c := access.New(s, access.Options{Tenants: func(name string) bool { return name == "acme" }})
	c.Refresh(t.Context(), true)
	require.False(t, c.Loaded())
	_, ok := c.LookupKey(key)
	require.False(t, ok, "nothing is admitted before the first load")
	require.False(t, c.Subscribed("acme", "orders"))

	s.down.Store(false)
	c.Refresh(t.Context(), false)
	require.True(t, c.Loaded())
	id, ok := c.LookupKey(key)
	require.True(t, ok)
	require.Equal(t, "acme", id.Tenant)
	require.True(t, c.Subscribed("acme", "orders"))
	require.False(t, c.Subscribed("beta", "orders"))

	// The store goes away: the last state holds.
	s.down.Store(true)
	c.Refresh(t.Context(), true)
	_, ok = c.LookupKey(key)
	require.True(t, ok)

	// A key of a tenant no longer in the config is refused.
	s.down.Store(false)
	other := addKey(t, s, "gone")
	c.Refresh(t.Context(), false)
	_, ok = c.LookupKey(other)
	require.False(t, ok)
}

func TestRunFollowsChanges(t *testing.T) {
	t.Parallel()
	s := open(t)
	c := access.New(s, access.Options{Interval: time.Hour}) // only Changed reloads
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	key := addKey(t, s, "acme")
	c.Changed()
	require.Eventually(t, func() bool { _, ok := c.LookupKey(key); return ok }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done // Run flushes the use on its way out
	keys, err := s.ListKeys(t.Context(), "acme")
	require.NoError(t, err)
	require.False(t, keys[0].LastUsedAt.IsZero())
}
