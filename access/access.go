// Package access is a node's view of the access state kept in the store
// (fanout.AccessStore): the self-service API keys and the active
// subscriptions that the gateway enforces on every request.
//
// A Cache holds one immutable snapshot, read without locks on the request
// path. Its Run loop loads the snapshot, then polls the store's access
// version (one row) every Interval and reloads when it moved, so that a
// change made on any node holds on this one within about Interval; a
// change made through this node's admin API calls Changed, which reloads
// at once. Until the first snapshot loads the Cache admits no
// self-service key and no subscription (fail closed); a failed poll keeps
// the last snapshot. Key uses are recorded in memory and written to the
// store (TouchKeys) every FlushEvery and when Run stops.
package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/auth"
)

// Source is what a Cache reads and writes: the part of
// fanout.AccessStore it uses.
type Source interface {
	AccessVersion(ctx context.Context) (int64, error)
	AccessSnapshot(ctx context.Context) (fanout.AccessSnapshot, error)
	TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error
}

// Defaults of Options.
const (
	DefaultInterval   = 250 * time.Millisecond
	DefaultFlushEvery = 10 * time.Second
	// storeTimeout bounds each call to the Source.
	storeTimeout = 5 * time.Second
)

// Options configure a Cache. The zero value is valid.
type Options struct {
	// Interval is how often the access version is polled. Zero:
	// DefaultInterval.
	Interval time.Duration
	// FlushEvery is how often key uses are written. Zero:
	// DefaultFlushEvery.
	FlushEvery time.Duration
	// Now is the clock that key expiry is checked against. Nil: time.Now.
	Now func() time.Time
	// Tenants reports whether a tenant is in the current config: keys of
	// a tenant that is not are refused. Nil: every tenant is.
	Tenants func(name string) bool
	// Logger receives failed loads (warn). Nil discards them.
	Logger *slog.Logger
}

// Cache is a node's view of the access state. Its methods are safe for
// concurrent use.
type Cache struct {
	src  Source
	opts Options
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	wake chan struct{}

	mu   sync.Mutex
	used map[string]time.Time // key id → last use not yet written
}

// snapshot is one loaded state, never changed after it is stored.
type snapshot struct {
	version int64
	keys    map[[sha256.Size]byte]fanout.APIKey
	subs    map[subKey]bool
}

type subKey struct{ tenant, route string }

// New returns a Cache over src; call Run to load and follow it.
func New(src Source, opts Options) *Cache {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{src: src, opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), used: map[string]time.Time{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Run loads the snapshot and follows the store until ctx ends; then it
// writes the key uses not yet written and returns.
func (c *Cache) Run(ctx context.Context) {
	poll := time.NewTicker(c.opts.Interval)
	defer poll.Stop()
	flush := time.NewTicker(c.opts.FlushEvery)
	defer flush.Stop()
	c.Refresh(ctx, false)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
			c.Flush(fctx)
			cancel()
			return
		case <-poll.C:
			c.Refresh(ctx, false)
		case <-c.wake:
			c.Refresh(ctx, true)
		case <-flush.C:
			c.Flush(ctx)
		}
	}
}

// Changed asks Run to reload at once: the admin API of this node changed
// the access state. It never blocks.
func (c *Cache) Changed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Refresh reloads the snapshot when the store's access version moved
// (always when force is set, or when none is loaded yet). Run calls it;
// tests may call it directly instead of running Run.
func (c *Cache) Refresh(ctx context.Context, force bool) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	cur := c.snap.Load()
	if cur != nil && !force {
		v, err := c.src.AccessVersion(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.WarnContext(ctx, "access: reading the access version failed; keeping the last state", slog.Any("error", err))
			}
			return
		}
		if v == cur.version {
			return
		}
	}
	s, err := c.src.AccessSnapshot(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.WarnContext(ctx, "access: loading subscriptions and keys failed; keeping the last state", slog.Any("error", err))
		}
		return
	}
	next := &snapshot{version: s.Version, keys: make(map[[sha256.Size]byte]fanout.APIKey, len(s.Keys)), subs: make(map[subKey]bool, len(s.Subscriptions))}
	for _, k := range s.Keys {
		b, err := hex.DecodeString(k.SHA256)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		next.keys[[sha256.Size]byte(b)] = k
	}
	for _, sub := range s.Subscriptions {
		if sub.State == fanout.SubscriptionActive {
			next.subs[subKey{sub.Tenant, sub.Route}] = true
		}
	}
	c.snap.Store(next)
}

// Loaded reports whether a snapshot has been loaded.
func (c *Cache) Loaded() bool { return c.snap.Load() != nil }

// LookupKey returns the identity of a self-service key: false when secret
// is no key of the snapshot, or its key is expired or of a tenant that
// is not configured. A key found is recorded as used now.
func (c *Cache) LookupKey(secret string) (auth.Identity, bool) {
	s := c.snap.Load()
	if s == nil || len(s.keys) == 0 {
		return auth.Identity{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	k, ok := s.keys[sum]
	if !ok {
		return auth.Identity{}, false
	}
	want, _ := hex.DecodeString(k.SHA256)
	now := c.opts.Now()
	if subtle.ConstantTimeCompare(want, sum[:]) != 1 || !k.Valid(now) ||
		(c.opts.Tenants != nil && !c.opts.Tenants(k.Tenant)) {
		return auth.Identity{}, false
	}
	c.mu.Lock()
	c.used[k.ID] = now
	c.mu.Unlock()
	return auth.Identity{Tenant: k.Tenant, Key: k.Name}, true
}

// Subscribed reports whether tenant has an active subscription to route.
func (c *Cache) Subscribed(tenant, route string) bool {
	s := c.snap.Load()
	return s != nil && s.subs[subKey{tenant, route}]
}

// Flush writes the recorded key uses; on failure they are kept for the
// next one.
func (c *Cache) Flush(ctx context.Context) {
	c.mu.Lock()
	used := c.used
	c.used = map[string]time.Time{}
	c.mu.Unlock()
	if len(used) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := c.src.TouchKeys(ctx, used); err != nil {
		c.log.WarnContext(ctx, "access: recording key uses failed", slog.Any("error", err))
		c.mu.Lock()
		for id, at := range used {
			if cur, ok := c.used[id]; !ok || cur.Before(at) {
				c.used[id] = at
			}
		}
		c.mu.Unlock()
	}
}
