package sqlite

import (
	"context"
	"slices"
	"sync"
)

// gate serializes the store's write transactions and decides who goes
// next: a waiting Accept goes before every waiting delivery write (Lease,
// Complete, ReleaseLeases, admin writes), which otherwise go in arrival
// order. database/sql hands the single writer connection to a random
// waiter, so without it an Accept batch (whose callers wait for the
// commit) could queue behind several delivery transactions (whose callers
// are background workers). Delivery writes are not starved: the Committer
// has one Accept in flight by default (CommitterOptions.Writers), and the
// gate is free for the next waiter while that Accept syncs the WAL
// (walsync.go), answers its callers and gathers the next batch.
type gate struct {
	mu   sync.Mutex
	held bool
	hi   []chan struct{} // waiting accepts, in order
	lo   []chan struct{} // other waiting writes, in order
}

// lock takes the gate, before others waiting when hi is true. It fails
// only when ctx ends first.
func (g *gate) lock(ctx context.Context, hi bool) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if hi {
		g.hi = append(g.hi, ch)
	} else {
		g.lo = append(g.lo, ch)
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	q := &g.lo
	if hi {
		q = &g.hi
	}
	if i := slices.Index(*q, ch); i >= 0 {
		*q = slices.Delete(*q, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	// Handed the gate as ctx ended: pass it on.
	g.unlock()
	return ctx.Err()
}

// unlock hands the gate to the next waiter, accepts first, or frees it.
func (g *gate) unlock() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var q *[]chan struct{}
	switch {
	case len(g.hi) > 0:
		q = &g.hi
	case len(g.lo) > 0:
		q = &g.lo
	default:
		g.held = false
		return
	}
	ch := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	close(ch)
}
