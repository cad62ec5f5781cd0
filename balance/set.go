package balance

import (
	"context"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanouthq/fanout/config"
)

// Options configures a Set. Zero values mean the documented defaults.
type Options struct {
	// Now is the clock of ejections, the breaker and the rate limit. Nil:
	// time.Now. (Health checks and a sync attempt's wait for the rate
	// limit run on real timers.)
	Now func() time.Time
	// Check makes one health check request (GET u) and returns the
	// response status. Nil: targets' health_check settings are ignored.
	Check func(ctx context.Context, u *url.URL) (int, error)
	// Logger receives one line per state change (a server ejected or back,
	// failing or passing its health check, a circuit opening or closing).
	// Nil discards them.
	Logger *slog.Logger
	// OnServer is called when a server becomes available (up) or not.
	OnServer func(target, server string, up bool)
	// OnCircuit is called when a target's circuit changes state.
	OnCircuit func(target string, from, to State)
}

// Set holds the live state of the targets of a config. It is safe for
// concurrent use; Close stops its health checks.
type Set struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	targets atomic.Pointer[map[string]*Target]

	mu     sync.Mutex // Update, Close
	closed bool
	checks sync.WaitGroup // health check goroutines
}

// New returns an empty Set.
func New(opts Options) *Set {
	s := &Set{opts: opts, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m := map[string]*Target{}
	s.targets.Store(&m)
	return s
}

// Get returns the state of the target named name, nil when the Set does
// not know it.
func (s *Set) Get(name string) *Target {
	return (*s.targets.Load())[name]
}

// Update makes the Set hold the targets of ts: a target it knows keeps its
// state (servers that stay keep theirs; the breaker keeps its state under
// new thresholds), new ones start fresh, those gone stop their health
// checks. Attempts in flight finish on the state they started with.
func (s *Set) Update(ts map[string]*config.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	old := *s.targets.Load()
	next := make(map[string]*Target, len(ts))
	for name, tc := range ts {
		if tc == nil {
			continue
		}
		t := old[name]
		if t == nil {
			t = &Target{name: name, set: s, checks: map[string]context.CancelFunc{}}
		}
		t.configure(tc)
		next[name] = t
	}
	for name, t := range old {
		if next[name] == nil {
			t.stopChecks(nil)
		}
	}
	s.targets.Store(&next)
}

// Close stops every health check and waits for them to end. The Set
// still answers Get and leases afterwards, with the state it had.
func (s *Set) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, t := range *s.targets.Load() {
			t.stopChecks(nil)
		}
	}
	s.mu.Unlock()
	s.checks.Wait()
}

// Status returns the state of every target, sorted by name.
func (s *Set) Status() []TargetStatus {
	m := *s.targets.Load()
	out := make([]TargetStatus, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name].Status())
	}
	return out
}

// TargetStatus is the live state of one target.
type TargetStatus struct {
	Name string
	// Balance is the balancing policy: round_robin, least_requests or p2c.
	Balance string
	// InFlight counts its attempts in flight on this node.
	InFlight int64
	// Circuit is closed, open or half_open; "" without a breaker.
	Circuit string
	// CircuitOpenUntil is when an open circuit lets probes through.
	CircuitOpenUntil time.Time
	Servers          []ServerStatus
}

// ServerStatus is the live state of one server of a target.
type ServerStatus struct {
	URL    string
	Weight int
	Backup bool
	// Up: the server takes attempts (healthy and not ejected).
	Up bool
	// Healthy is the result of the last active health check (true without
	// one).
	Healthy bool
	// Ejected: out after consecutive failures, until EjectedUntil.
	Ejected      bool
	EjectedUntil time.Time
	// ConsecutiveFailures counts its failed attempts since the last
	// success.
	ConsecutiveFailures int64
	InFlight            int64
	// Attempts counts the attempts it was given.
	Attempts uint64
}
