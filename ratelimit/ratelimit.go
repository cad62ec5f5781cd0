package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the default Options.MaxKeys.
const DefaultMaxKeys = 100_000

// shards spreads callers over locks so that concurrent requests of
// different callers rarely wait for each other.
const shards = 16

// minSweepEvery is the least time between two sweeps of idle buckets.
const minSweepEvery = 10 * time.Second

// Options configures a Limiter. Zero values mean the documented defaults.
type Options struct {
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// MaxKeys bounds the number of buckets. When it is reached, idle
	// buckets are dropped first, then arbitrary ones (their callers start
	// again with a full bucket). Default DefaultMaxKeys.
	MaxKeys int
}

// Limiter is a token bucket per key (a caller). It is safe for concurrent
// use.
type Limiter struct {
	rps     float64
	burst   int
	now     func() time.Time
	idle    time.Duration // how long an untouched bucket takes to be full
	maxKeys int           // per shard
	seed    maphash.Seed
	shards  [shards]shard
	// lastSweep is when idle buckets were last dropped (Unix ns).
	lastSweep atomic.Int64
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // of the last request
}

// New returns a limiter of rps requests per second with bursts of burst
// (at least 1) per key.
func New(rps float64, burst int, opts Options) *Limiter {
	l := &Limiter{rps: rps, burst: max(burst, 1), now: opts.Now, maxKeys: opts.MaxKeys, seed: maphash.MakeSeed()}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	l.maxKeys = max(1, l.maxKeys/shards)
	l.idle = time.Duration(math.Ceil(float64(l.burst) / rps * float64(time.Second)))
	if rps <= 0 || l.idle <= 0 {
		l.idle = time.Hour
	}
	for i := range l.shards {
		l.shards[i].buckets = map[string]*bucket{}
	}
	l.lastSweep.Store(l.now().UnixNano())
	return l
}

// Same reports whether l limits to rps with bursts of burst, so that a
// config reload that keeps the limit can keep the buckets.
func (l *Limiter) Same(rps float64, burst int) bool {
	return l.rps == rps && l.burst == max(burst, 1)
}

// Allow takes a token from key's bucket. When the bucket is empty it takes
// nothing and returns false and how long until a token is there.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	if last := l.lastSweep.Load(); now.UnixNano()-last >= int64(max(l.idle, minSweepEvery)) &&
		l.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		for i := range l.shards {
			l.shards[i].mu.Lock()
			l.shards[i].sweep(now, l.idle)
			l.shards[i].mu.Unlock()
		}
	}
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= l.maxKeys {
			s.sweep(now, l.idle)
			for k := range s.buckets {
				if len(s.buckets) < l.maxKeys {
					break
				}
				delete(s.buckets, k)
			}
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.rps), l.burst)}
		s.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, l.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the buckets untouched for idle or more: they are full again,
// exactly as a new one would be.
func (s *shard) sweep(now time.Time, idle time.Duration) {
	for k, b := range s.buckets {
		if now.Sub(b.last) >= idle {
			delete(s.buckets, k)
		}
	}
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
