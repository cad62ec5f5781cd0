package stats

import (
	"math"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// Window limits of Snapshot and of the stats endpoint.
const (
	// DefaultWindow is the window of a request without ?window=.
	DefaultWindow = 5 * time.Minute
	// MaxWindow is the longest window kept.
	MaxWindow = 24 * time.Hour
)

// Options configure Stats.
type Options struct {
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Stats is the recent traffic of every route and target. Create it with
// New. Its methods are safe for concurrent use; the Record methods do
// nothing on a nil *Stats, so components can take an optional one.
type Stats struct {
	now func() time.Time
	// clock returns now as nanoseconds since 1970. Without Options.Now it
	// reads only the monotonic clock (time.Now reads two clocks), which is
	// most of the cost of a Record.
	clock   func() int64
	routes  seriesMap
	targets seriesMap
}

// New returns an empty Stats.
func New(opts Options) *Stats {
	s := &Stats{now: opts.Now}
	if s.now != nil {
		s.clock = func() int64 { return s.now().UnixNano() }
	} else {
		s.now = time.Now
		start := time.Now()
		wall := start.UnixNano()
		s.clock = func() int64 { return wall + int64(time.Since(start)) }
	}
	return s
}

// RecordRequest records one answered inbound request of route in mode: ok
// when it succeeded, else class says why (timeout, connect, tls, status,
// canceled, other; anything else, or "", counts as other), and d is how
// long it took. It is O(1) and does not allocate.
func (s *Stats) RecordRequest(route, mode string, ok bool, class string, d time.Duration) {
	if s == nil {
		return
	}
	sr := s.routes.get(route)
	sr.setMode(mode)
	sr.record(s.clock(), ok, failClass(ok, class), binOf(d))
}

// RecordAttempt records one HTTP exchange with target on behalf of route:
// class is "" for a success, else the error class; d is its duration.
// Attempts are reported per target, summed over routes (route is taken so
// that callers pass what they pass to metrics.ObserveAttempt). It is O(1)
// and does not allocate.
func (s *Stats) RecordAttempt(route, target string, class string, d time.Duration) {
	if s == nil {
		return
	}
	ok := class == ""
	s.targets.get(target).record(s.clock(), ok, failClass(ok, class), binOf(d))
}

// RecordBacklog records a sample of target's durable backlog: waiting
// deliveries, and the age of the oldest waiting message. Each step of
// the history keeps the largest sample it got (Series).
func (s *Stats) RecordBacklog(target string, waiting int, oldest time.Duration) {
	if s == nil {
		return
	}
	s.targets.get(target).sample(s.clock(), max(waiting, 0), max(oldest.Milliseconds(), 0))
}

func failClass(ok bool, class string) int {
	if ok {
		return 0
	}
	return classIndex(class)
}

// Report is the answer of GET /v1/stats.
type Report struct {
	// Window is the requested window, as the config writes durations ("5m", "1h").
	Window string `json:"window"`
	// Routes is keyed by route name.
	Routes map[string]RouteStats `json:"routes"`
	// Targets is keyed by target name.
	Targets map[string]TargetStats `json:"targets"`
}

// RouteStats is the traffic of one route over the window.
type RouteStats struct {
	// Mode is the route's mode at its latest request.
	Mode string `json:"mode,omitempty"`
	// Requests is the number of answered inbound requests.
	Requests int `json:"requests"`
	// Successes is the number of requests that succeeded.
	Successes int `json:"successes"`
	// Failures counts the failed requests by error class; classes
	// without failures are left out.
	Failures map[string]int `json:"failures"`
	// SuccessRate is Successes/Requests, left out when Requests is 0.
	SuccessRate *float64 `json:"success_rate,omitempty"`
	// LatencyMS are the latency percentiles, left out when Requests is 0.
	LatencyMS *Latency `json:"latency_ms,omitempty"`
}

// TargetStats is the traffic of one target over the window, summed over
// routes, and its durable backlog when the report has one (AddBacklog).
type TargetStats struct {
	// Attempts is the number of HTTP exchanges with the target.
	Attempts int `json:"attempts"`
	// Successes is the number of attempts that succeeded.
	Successes int `json:"successes"`
	// Failures counts the failed attempts by error class; classes without
	// failures are left out.
	Failures map[string]int `json:"failures"`
	// SuccessRate is Successes/Attempts, left out when Attempts is 0.
	SuccessRate *float64 `json:"success_rate,omitempty"`
	// LatencyMS are the attempt latency percentiles, left out when
	// Attempts is 0.
	LatencyMS *Latency `json:"latency_ms,omitempty"`
	// Backlog is the number of deliveries waiting (pending, retrying or
	// being delivered) now, not only those of the window.
	Backlog int `json:"backlog"`
	// OldestPendingSeconds is the age of the oldest waiting message, 0
	// when nothing waits.
	OldestPendingSeconds float64 `json:"oldest_pending_seconds"`
	// Dead is the number of dead deliveries kept now.
	Dead int `json:"dead"`
}

// Latency holds latency percentiles in milliseconds, each within 2% of
// the true value at its rank.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Snapshot returns the traffic of the last window (DefaultWindow when
// window ≤ 0, MaxWindow at most), rounded up to whole buckets plus the
// current one. Every route and target with traffic in the last 24 hours
// is listed, with zero counts when it had none in the window.
func (s *Stats) Snapshot(window time.Duration) Report {
	if window <= 0 {
		window = DefaultWindow
	}
	window = min(window, MaxWindow)
	now := s.clock()
	s.prune(now)

	span := func(sr *series) (*ring, int64, int64) {
		r := sr.ringFor(window)
		to := r.epoch(now)
		n := (int64(window) + r.step - 1) / r.step
		return r, to - n, to
	}

	rep := Report{
		Window:  config.Duration(window).String(), // as the config writes it: 5m, 1h
		Routes:  make(map[string]RouteStats),
		Targets: make(map[string]TargetStats),
	}
	var tot totals // reused: it is large
	for name, sr := range s.routes.all() {
		r, from, to := span(sr)
		tot = totals{}
		r.sum(from, to, &tot)
		rs := RouteStats{
			Requests:  int(tot.n),
			Successes: int(tot.ok),
			Failures:  failures(&tot),
		}
		if p := sr.mode.Load(); p != nil {
			rs.Mode = *p
		}
		rs.SuccessRate, rs.LatencyMS = rateAndLatency(&tot)
		rep.Routes[name] = rs
	}
	for name, sr := range s.targets.all() {
		r, from, to := span(sr)
		tot = totals{}
		r.sum(from, to, &tot)
		ts := TargetStats{
			Attempts:  int(tot.n),
			Successes: int(tot.ok),
			Failures:  failures(&tot),
		}
		ts.SuccessRate, ts.LatencyMS = rateAndLatency(&tot)
		rep.Targets[name] = ts
	}
	return rep
}

// prune forgets the series without traffic for longer than the day ring
// holds. A Record racing with the prune of its series may be lost;
// that takes an hour of silence followed by a request at that instant.
func (s *Stats) prune(now int64) {
	idle := func(sr *series) bool {
		// newest is 0 for a series created but not yet recorded to.
		newest := sr.day.newest()
		return newest != 0 && newest < sr.day.epoch(now)-int64(daySlots-1)
	}
	s.routes.prune(idle)
	s.targets.prune(idle)
}

func failures(tot *totals) map[string]int {
	f := make(map[string]int)
	for c, v := range tot.fail {
		if v > 0 {
			f[className(c)] = int(v)
		}
	}
	return f
}

func rateAndLatency(tot *totals) (*float64, *Latency) {
	if tot.n == 0 {
		return nil, nil
	}
	rate := round(float64(tot.ok)/float64(tot.n), 4)
	if tot.count == 0 {
		return &rate, nil
	}
	ms := func(q float64) float64 {
		return round(float64(quantile(&tot.hist, tot.count, q))/float64(time.Millisecond), 3)
	}
	return &rate, &Latency{P50: ms(0.50), P95: ms(0.95), P99: ms(0.99)}
}

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// AddBacklog adds the durable backlog of each target, as read from the
// store at now, to r; a target with a backlog but no traffic in the window
// is added.
func (r *Report) AddBacklog(backlog []fanout.TargetBacklog, now time.Time) {
	if r.Targets == nil {
		r.Targets = make(map[string]TargetStats, len(backlog))
	}
	for _, b := range backlog {
		ts, ok := r.Targets[b.Target]
		if !ok {
			ts.Failures = make(map[string]int)
		}
		ts.Backlog += b.Waiting
		ts.Dead += b.Dead
		if b.Waiting > 0 && !b.OldestWaiting.IsZero() {
			age := round(max(now.Sub(b.OldestWaiting).Seconds(), 0), 3)
			ts.OldestPendingSeconds = max(ts.OldestPendingSeconds, age)
		}
		r.Targets[b.Target] = ts
	}
}
