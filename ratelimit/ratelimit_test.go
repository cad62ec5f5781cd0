package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/ratelimit"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(2, 3, ratelimit.Options{Now: clk.now})

	for i := range 3 {
		ok, _ := l.Allow("a")
		require.True(t, ok, "burst %d", i)
	}
	ok, wait := l.Allow("a")
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait, "2 per second: the next token in half a second")
	require.Equal(t, 1, ratelimit.RetryAfterSeconds(wait), "rounded up")

	ok, _ = l.Allow("b")
	require.True(t, ok, "another caller has its own bucket")

	// A refused request takes no token.
	clk.advance(500 * time.Millisecond)
	ok, _ = l.Allow("a")
	require.True(t, ok)
	ok, _ = l.Allow("a")
	require.False(t, ok)
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int{
		0: 1, time.Nanosecond: 1, time.Second: 1, time.Second + 1: 2, 2500 * time.Millisecond: 3, time.Minute: 60,
	} {
		require.Equal(t, want, ratelimit.RetryAfterSeconds(d), d)
	}
}

func TestSlowRate(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(0.1, 1, ratelimit.Options{Now: clk.now}) // one per 10s
	ok, _ := l.Allow("a")
	require.True(t, ok)
	ok, wait := l.Allow("a")
	require.False(t, ok)
	require.Equal(t, 10, ratelimit.RetryAfterSeconds(wait))
}

func TestIdleBucketsAreDropped(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(10, 20, ratelimit.Options{Now: clk.now}) // full again after 2s
	for i := range 1000 {
		ok, _ := l.Allow(fmt.Sprint("caller-", i))
		require.True(t, ok)
	}
	require.Equal(t, 1000, l.Len())

	// Emptied buckets are kept while they refill.
	for range 20 {
		_, _ = l.Allow("busy")
	}
	ok, _ := l.Allow("busy")
	require.False(t, ok)

	// Past the sweep interval (10s), callers seen since then survive and
	// the others are dropped: memory follows active callers.
	clk.advance(11 * time.Second)
	for i := range 10 {
		_, _ = l.Allow(fmt.Sprint("late-", i))
	}
	require.Equal(t, 10, l.Len(), "the first request after the interval dropped every idle bucket")
	clk.advance(11 * time.Second)
	_, _ = l.Allow("again")
	require.Equal(t, 1, l.Len())
}

func TestMaxKeys(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(1, 1, ratelimit.Options{Now: clk.now, MaxKeys: 160})
	for i := range 10_000 {
		ok, _ := l.Allow(fmt.Sprint("flood-", i))
		require.True(t, ok)
	}
	require.LessOrEqual(t, l.Len(), 160, "a flood of new callers stays bounded")
}

func TestSame(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(5, 10, ratelimit.Options{})
	require.True(t, l.Same(5, 10))
	require.False(t, l.Same(5, 11))
	require.False(t, l.Same(6, 10))
}

func TestConcurrentAllow(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(1, 100, ratelimit.Options{Now: clk.now})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := l.Allow("shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 100, allowed, "exactly the burst, whatever the interleaving")
}
