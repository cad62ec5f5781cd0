package stats

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanouthq/fanout"
)

// The two rings of a series. The fine ring serves windows up to
// fineStep·(fineSlots-1) = 5m, the coarse ring windows up to
// coarseStep·(coarseSlots-1) = 1h; each keeps one more slot for the
// current, partly filled step.
const (
	fineStep    = 10 * time.Second
	fineSlots   = 31
	coarseStep  = time.Minute
	coarseSlots = 61
)

// The failure classes, in the order of slot.fail.
const (
	classTimeout = iota
	classConnect
	classTLS
	classStatus
	classCanceled
	classOther
	numClasses
)

// className returns the report key of failure class i.
func className(i int) string {
	switch i {
	case classTimeout:
		return string(fanout.ClassTimeout)
	case classConnect:
		return string(fanout.ClassConnect)
	case classTLS:
		return string(fanout.ClassTLS)
	case classStatus:
		return string(fanout.ClassStatus)
	case classCanceled:
		return string(fanout.ClassCanceled)
	}
	return string(fanout.ClassOther)
}

// classIndex returns the index of a failure class; unknown classes, and
// the empty class of a failure, count as other.
func classIndex(class string) int {
	switch class {
	case string(fanout.ClassTimeout):
		return classTimeout
	case string(fanout.ClassConnect):
		return classConnect
	case string(fanout.ClassTLS):
		return classTLS
	case string(fanout.ClassStatus):
		return classStatus
	case string(fanout.ClassCanceled):
		return classCanceled
	}
	return classOther
}

// slot is one step of a ring. epoch is the absolute step number (Unix
// time divided by the step) whose events the counters hold.
type slot struct {
	epoch atomic.Int64
	ok    atomic.Uint64 // successes; the events are ok plus the failures
	fail  [numClasses]atomic.Uint64
	hist  [numBins]atomic.Uint32
}

// reset empties s for epoch. The caller holds the series' lock; the epoch
// is published last, so that a recorder that sees it adds to zeroed
// counters.
func (s *slot) reset(epoch int64) {
	s.ok.Store(0)
	for i := range s.fail {
		s.fail[i].Store(0)
	}
	for i := range s.hist {
		s.hist[i].Store(0)
	}
	s.epoch.Store(epoch)
}

// ring is a circular array of slots of one step.
type ring struct {
	step  int64 // nanoseconds
	slots []slot
}

func newRing(step time.Duration, n int) ring {
	return ring{step: int64(step), slots: make([]slot, n)}
}

// epoch returns the absolute step number of t (nanoseconds since 1970).
func (r *ring) epoch(t int64) int64 { return t / r.step }

// series is the recent traffic of one route or one target.
type series struct {
	mu     sync.Mutex // taken to recycle a slot
	mode   atomic.Pointer[string]
	fine   ring
	coarse ring
}

func newSeries() *series {
	return &series{
		fine:   newRing(fineStep, fineSlots),
		coarse: newRing(coarseStep, coarseSlots),
	}
}

// setMode remembers the mode of a route; it allocates only when the mode
// changes (a config reload).
func (s *series) setMode(mode string) {
	if p := s.mode.Load(); p != nil && *p == mode {
		return
	}
	m := mode // a copy, so that only this branch allocates
	s.mode.Store(&m)
}

// record adds one event at t (nanoseconds since 1970).
func (s *series) record(t int64, ok bool, class int, bin int) {
	s.add(&s.fine, t, ok, class, bin)
	s.add(&s.coarse, t, ok, class, bin)
}

func (s *series) add(r *ring, t int64, ok bool, class int, bin int) {
	e := r.epoch(t)
	sl := &r.slots[e%int64(len(r.slots))]
	if cur := sl.epoch.Load(); cur != e {
		if cur > e {
			return // older than the ring: the clock went back a long way
		}
		s.mu.Lock()
		if sl.epoch.Load() < e {
			sl.reset(e)
		}
		s.mu.Unlock()
		if sl.epoch.Load() != e {
			return
		}
	}
	if ok {
		sl.ok.Add(1)
	} else {
		sl.fail[class].Add(1)
	}
	sl.hist[bin].Add(1)
}

// totals are a series' counts over a window.
type totals struct {
	n, ok uint64 // events, successes
	fail  [numClasses]uint64
	hist  [numBins]uint64
	count uint64 // samples in hist
}

// sum adds the slots of r whose epoch is within [from, to] to tot.
func (r *ring) sum(from, to int64, tot *totals) {
	for i := range r.slots {
		sl := &r.slots[i]
		e := sl.epoch.Load()
		if e < from || e > to {
			continue
		}
		var part totals
		part.ok = sl.ok.Load()
		part.n = part.ok
		for c := range sl.fail {
			part.fail[c] = sl.fail[c].Load()
			part.n += part.fail[c]
		}
		for b := range sl.hist {
			if v := sl.hist[b].Load(); v != 0 {
				part.hist[b] = uint64(v)
				part.count += uint64(v)
			}
		}
		if sl.epoch.Load() != e {
			continue // recycled while read: its events are newer than to
		}
		tot.n += part.n
		tot.ok += part.ok
		for c := range part.fail {
			tot.fail[c] += part.fail[c]
		}
		for b, v := range part.hist {
			tot.hist[b] += v
		}
		tot.count += part.count
	}
}

// newest returns the largest epoch of r's slots (0 when never used).
func (r *ring) newest() int64 {
	var n int64
	for i := range r.slots {
		n = max(n, r.slots[i].epoch.Load())
	}
	return n
}
