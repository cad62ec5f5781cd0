package metrics

import (
	"sync"
	"sync/atomic"
)

// labelCache maps a label combination to its resolved metric children.
// Reads are lock-free: the map is copied on write and published through an
// atomic pointer, which suits label sets that are small (bounded by the
// config) and written once per combination. A lookup with a concrete
// comparable key does not allocate, unlike sync.Map whose any keys box.
type labelCache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serialises writers
}

// load returns the value cached for k.
func (c *labelCache[K, V]) load(k K) (V, bool) {
	if p := c.m.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrStore returns the value cached for k, or caches and returns the
// one made by mk. mk runs under the writers' lock, at most once per key.
func (c *labelCache[K, V]) loadOrStore(k K, mk func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	n := 1
	if old != nil {
		n += len(*old)
	}
	next := make(map[K]V, n)
	if old != nil {
		for ok, ov := range *old {
			next[ok] = ov
		}
	}
	v := mk()
	next[k] = v
	c.m.Store(&next)
	return v
}
