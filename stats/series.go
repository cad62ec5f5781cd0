package stats

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanouthq/fanout"
)

// The three rings of a series. The fine ring serves windows up to
// fineStep·(fineSlots-1) = 5m, the coarse ring windows up to
// coarseStep·(coarseSlots-1) = 1h, the day ring windows up to
// dayStep·(daySlots-1) = 24h; each keeps one more slot for the current,
// partly filled step.
const (
	fineStep    = 10 * time.Second
	fineSlots   = 31
	coarseStep  = time.Minute
	coarseSlots = 61
	dayStep     = 15 * time.Minute
	daySlots    = 97
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
	// The largest backlog sample of the step (RecordBacklog): waiting
	// deliveries plus one (0: no sample) and the oldest waiting
	// message's age in milliseconds.
	backlog atomic.Int64
	oldest  atomic.Int64
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
	s.backlog.Store(0)
	s.oldest.Store(0)
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
	day    ring
}

func newSeries() *series {
	return &series{
		fine:   newRing(fineStep, fineSlots),
		coarse: newRing(coarseStep, coarseSlots),
		day:    newRing(dayStep, daySlots),
	}
}

// ringFor returns the ring that serves window: the finest whose span
// holds it.
func (s *series) ringFor(window time.Duration) *ring {
	switch stepFor(window) {
	case fineStep:
		return &s.fine
	case coarseStep:
		return &s.coarse
	}
	return &s.day
}

// stepFor returns the step of the ring that serves window.
func stepFor(window time.Duration) time.Duration {
	switch {
	case window <= fineStep*(fineSlots-1):
		return fineStep
	case window <= coarseStep*(coarseSlots-1):
		return coarseStep
	}
	return dayStep
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
	s.add(&s.day, t, ok, class, bin)
}

// slotAt returns the slot of r that holds t's step, recycling it when it
// holds an older step; nil when t is older than the ring.
func (s *series) slotAt(r *ring, t int64) *slot {
	e := r.epoch(t)
	sl := &r.slots[e%int64(len(r.slots))]
	if cur := sl.epoch.Load(); cur != e {
		if cur > e {
			return nil // older than the ring: the clock went back a long way
		}
		s.mu.Lock()
		if sl.epoch.Load() < e {
			sl.reset(e)
		}
		s.mu.Unlock()
		if sl.epoch.Load() != e {
			return nil
		}
	}
	return sl
}

func (s *series) add(r *ring, t int64, ok bool, class int, bin int) {
	sl := s.slotAt(r, t)
	if sl == nil {
		return
	}
	if ok {
		sl.ok.Add(1)
	} else {
		sl.fail[class].Add(1)
	}
	sl.hist[bin].Add(1)
}

// sample keeps a backlog sample at t in every ring, as the largest of
// its step.
func (s *series) sample(t int64, waiting int, oldestMS int64) {
	for _, r := range []*ring{&s.fine, &s.coarse, &s.day} {
		sl := s.slotAt(r, t)
		if sl == nil {
			continue
		}
		storeMax(&sl.backlog, int64(waiting)+1)
		storeMax(&sl.oldest, oldestMS)
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if cur >= n || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// totals are a series' counts over a window.
type totals struct {
	n, ok uint64 // events, successes
	fail  [numClasses]uint64
	hist  [numBins]uint64
	count uint64 // samples in hist
	// backlog is the largest backlog sample plus one (0: none), oldest
	// the largest oldest-waiting age in milliseconds.
	backlog, oldest int64
}

// sum adds the slots of r whose epoch is within [from, to] to tot.
func (r *ring) sum(from, to int64, tot *totals) {
	var part totals
	for i := range r.slots {
		e := r.slots[i].epoch.Load()
		if e < from || e > to {
			continue
		}
		if r.read(e, &part) {
			tot.add(&part)
		}
	}
}

// read sets part to the counts of step e; false when r no longer (or
// not yet) holds that step.
func (r *ring) read(e int64, part *totals) bool {
	sl := &r.slots[e%int64(len(r.slots))]
	if sl.epoch.Load() != e {
		return false
	}
	*part = totals{}
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
	part.backlog = sl.backlog.Load()
	part.oldest = sl.oldest.Load()
	// Recycled while read: its events are newer than e.
	return sl.epoch.Load() == e
}

// add adds part to tot.
func (tot *totals) add(part *totals) {
	tot.n += part.n
	tot.ok += part.ok
	for c := range part.fail {
		tot.fail[c] += part.fail[c]
	}
	for b, v := range part.hist {
		tot.hist[b] += v
	}
	tot.count += part.count
	tot.backlog = max(tot.backlog, part.backlog)
	tot.oldest = max(tot.oldest, part.oldest)
}

// newest returns the largest epoch of r's slots (0 when never used).
func (r *ring) newest() int64 {
	var n int64
	for i := range r.slots {
		n = max(n, r.slots[i].epoch.Load())
	}
	return n
}
