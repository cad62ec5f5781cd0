package stats

import (
	"sync"
	"sync/atomic"
)

// seriesMap maps a route or target name to its series. Lookups are
// lock-free and allocation-free: the map is copied on write and published
// through an atomic pointer, which suits a key set that is small (bounded
// by the config) and rarely changes.
type seriesMap struct {
	m  atomic.Pointer[map[string]*series]
	mu sync.Mutex // serialises writers
}

// get returns the series of name, creating it on first use.
func (sm *seriesMap) get(name string) *series {
	if p := sm.m.Load(); p != nil {
		if s, ok := (*p)[name]; ok {
			return s
		}
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	old := sm.m.Load()
	if old != nil {
		if s, ok := (*old)[name]; ok {
			return s
		}
	}
	s := newSeries()
	sm.update(old, func(next map[string]*series) { next[name] = s })
	return s
}

// all returns the current map; callers must not modify it.
func (sm *seriesMap) all() map[string]*series {
	if p := sm.m.Load(); p != nil {
		return *p
	}
	return nil
}

// prune removes the series for which idle reports true.
func (sm *seriesMap) prune(idle func(*series) bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	old := sm.m.Load()
	if old == nil {
		return
	}
	var gone []string
	for name, s := range *old {
		if idle(s) {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return
	}
	sm.update(old, func(next map[string]*series) {
		for _, name := range gone {
			delete(next, name)
		}
	})
}

// update publishes a copy of old changed by change. The caller holds mu.
func (sm *seriesMap) update(old *map[string]*series, change func(map[string]*series)) {
	n := 1
	if old != nil {
		n += len(*old)
	}
	next := make(map[string]*series, n)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	change(next)
	sm.m.Store(&next)
}
