package balance

import (
	"sync"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// State is a circuit breaker's state.
type State int

// The states of a circuit breaker.
const (
	// Closed lets every attempt through and counts their outcomes.
	Closed State = iota
	// Open refuses every attempt until its cool-down (open_for) ends.
	Open
	// HalfOpen lets a few probes through: one success closes the circuit,
	// one failure opens it again.
	HalfOpen
)

// String returns closed, open or half_open.
func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "closed"
}

// windowBuckets is how many buckets the rolling window is cut into.
const windowBuckets = 10

// Breaker is a target's circuit breaker. It is safe for concurrent use.
type Breaker struct {
	mu          sync.Mutex
	cfg         config.CircuitBreaker
	state       State
	until       time.Time // Open: when probes may start
	probes      int       // HalfOpen: probes in flight
	consecutive int       // failures in a row (Closed)
	buckets     [windowBuckets]bucket
}

// bucket counts the outcomes of one slice of the window.
type bucket struct {
	slot      int64 // which slice of time it counts (time / slice length)
	ok, fails int
}

// newBreaker returns a closed breaker.
func newBreaker(cfg config.CircuitBreaker) *Breaker {
	return &Breaker{cfg: cfg}
}

// setConfig replaces the thresholds; the state stays.
func (b *Breaker) setConfig(cfg config.CircuitBreaker) {
	b.mu.Lock()
	b.cfg = cfg
	b.mu.Unlock()
}

// change is a state change, reported after the mutex is released.
type change struct {
	from, to State
}

// allow reports whether an attempt may start at now, and whether it is a
// probe of the half-open circuit (whose outcome decides the state).
func (b *Breaker) allow(now time.Time) (probe bool, ch *change, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return false, nil, nil
	case Open:
		if now.Before(b.until) {
			return false, nil, fanout.ErrCircuitOpen
		}
		ch = &change{Open, HalfOpen}
		b.state, b.probes = HalfOpen, 0
	}
	if b.probes >= max(b.cfg.Probes, 1) {
		return false, ch, fanout.ErrCircuitOpen
	}
	b.probes++
	return true, ch, nil
}

// record counts the outcome of an attempt that allow let through.
func (b *Breaker) record(now time.Time, o Outcome, probe bool) *change {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probes = max(b.probes-1, 0)
		if b.state != HalfOpen || o == Neutral {
			return nil
		}
		if o == Success {
			b.reset()
			return &change{HalfOpen, Closed}
		}
		b.open(now)
		return &change{HalfOpen, Open}
	}
	if b.state != Closed || o == Neutral {
		return nil // began before the circuit opened
	}
	bk := b.bucket(now)
	if o == Success {
		bk.ok++
		b.consecutive = 0
		return nil
	}
	bk.fails++
	b.consecutive++
	if n := b.cfg.ConsecutiveFailures; n > 0 && b.consecutive >= n {
		b.open(now)
		return &change{Closed, Open}
	}
	ok, fails := b.totals(now)
	if total := ok + fails; total >= max(b.cfg.MinRequests, 1) && float64(fails) >= b.cfg.FailureRatio*float64(total) {
		b.open(now)
		return &change{Closed, Open}
	}
	return nil
}

// blocked reports whether no attempt may start at now, and until when
// that holds at least (Open: the end of the cool-down; HalfOpen with its
// probes taken: one more cool-down, or until a probe ends).
func (b *Breaker) blocked(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == Open && now.Before(b.until):
		return b.until, true
	case b.state == HalfOpen && b.probes >= max(b.cfg.Probes, 1):
		return now.Add(b.cfg.OpenFor.D()), true
	}
	return time.Time{}, false
}

// status returns the state as seen at now, and the end of the cool-down
// when open.
func (b *Breaker) status(now time.Time) (State, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && !now.Before(b.until) {
		return HalfOpen, time.Time{} // the next attempt is a probe
	}
	return b.state, b.until
}

func (b *Breaker) open(now time.Time) {
	b.state, b.until, b.probes = Open, now.Add(b.cfg.OpenFor.D()), 0
}

func (b *Breaker) reset() {
	b.state, b.until, b.probes, b.consecutive = Closed, time.Time{}, 0, 0
	b.buckets = [windowBuckets]bucket{}
}

// slice is the length of one bucket of the window.
func (b *Breaker) slice() int64 {
	return max(int64(b.cfg.Window.D())/windowBuckets, 1)
}

// bucket returns the bucket of now, emptied if it last counted an older
// slice.
func (b *Breaker) bucket(now time.Time) *bucket {
	slot := now.UnixNano() / b.slice()
	bk := &b.buckets[slot%windowBuckets]
	if bk.slot != slot {
		*bk = bucket{slot: slot}
	}
	return bk
}

// totals adds up the buckets of the window that ends at now.
func (b *Breaker) totals(now time.Time) (ok, fails int) {
	slot := now.UnixNano() / b.slice()
	for i := range b.buckets {
		if bk := &b.buckets[i]; bk.slot > slot-windowBuckets {
			ok += bk.ok
			fails += bk.fails
		}
	}
	return ok, fails
}
