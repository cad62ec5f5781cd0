package stats

import (
	"context"
	"time"

	"github.com/fanouthq/fanout/config"
)

// SeriesReport is the answer of GET /v1/stats/series: each route's and
// each target's traffic over the window, step by step, oldest first.
type SeriesReport struct {
	// Window is the requested window, as the config writes durations.
	Window string `json:"window"`
	// Step is the length of a point: 10s for windows up to 5m, 1m up to
	// 1h, 15m up to 24h.
	Step string `json:"step"`
	// StepSeconds is Step in seconds.
	StepSeconds float64 `json:"step_seconds"`
	// From is the start of the first point, To the end of the last one
	// (which is the current, partly filled step).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Routes is keyed by route name.
	Routes map[string]RouteSeries `json:"routes"`
	// Targets is keyed by target name.
	Targets map[string]TargetSeries `json:"targets"`
}

// RouteSeries is one route's history.
type RouteSeries struct {
	// Mode is the route's mode at its latest request.
	Mode string `json:"mode,omitempty"`
	// Points are the steps of the window, oldest first, with zero
	// counts for steps without requests.
	Points []Point `json:"points"`
}

// TargetSeries is one target's history.
type TargetSeries struct {
	// Points are the steps of the window, oldest first.
	Points []Point `json:"points"`
}

// Point is one step of a series.
type Point struct {
	// At is the start of the step.
	At time.Time `json:"at"`
	// Count is the number of requests (route) or attempts (target).
	Count int `json:"count"`
	// PerSecond is Count over the step's length (over the time elapsed
	// for the current step).
	PerSecond float64 `json:"per_second"`
	// Successes is the number that succeeded.
	Successes int `json:"successes"`
	// Failures counts the failures by error class; classes without
	// failures are left out.
	Failures map[string]int `json:"failures"`
	// SuccessRate is Successes/Count, left out when Count is 0.
	SuccessRate *float64 `json:"success_rate,omitempty"`
	// LatencyMS are the latency percentiles of the step, left out when
	// Count is 0.
	LatencyMS *Latency `json:"latency_ms,omitempty"`
	// Backlog is the largest number of waiting deliveries sampled in the
	// step (targets only; left out when the step has no sample).
	Backlog *int `json:"backlog,omitempty"`
	// OldestPendingSeconds is the largest age of the oldest waiting
	// message sampled in the step, with Backlog.
	OldestPendingSeconds *float64 `json:"oldest_pending_seconds,omitempty"`
}

// Series returns the history of the last window (DefaultWindow when
// window ≤ 0, MaxWindow at most) in steps of the ring that serves it:
// the same steps Snapshot sums, one point each.
func (s *Stats) Series(window time.Duration) SeriesReport {
	if window <= 0 {
		window = DefaultWindow
	}
	window = min(window, MaxWindow)
	now := s.clock()
	s.prune(now)
	step := stepFor(window)
	r := &ring{step: int64(step)} // the steps of the window, without slots
	to := r.epoch(now)
	n := (int64(window) + r.step - 1) / r.step
	from := to - n
	rep := SeriesReport{
		Window:      config.Duration(window).String(),
		Step:        config.Duration(step).String(),
		StepSeconds: step.Seconds(),
		From:        time.Unix(0, from*r.step).UTC(),
		To:          time.Unix(0, (to+1)*r.step).UTC(),
		Routes:      make(map[string]RouteSeries),
		Targets:     make(map[string]TargetSeries),
	}
	var part totals // reused: it is large
	points := func(sr *series, gauges bool) []Point {
		r := sr.ringFor(window)
		out := make([]Point, 0, n+1)
		for e := from; e <= to; e++ {
			p := Point{At: time.Unix(0, e*r.step).UTC(), Failures: map[string]int{}}
			if r.read(e, &part) {
				p.Count, p.Successes = int(part.n), int(part.ok)
				p.Failures = failures(&part)
				p.SuccessRate, p.LatencyMS = rateAndLatency(&part)
				elapsed := step
				if e == to {
					elapsed = max(time.Duration(now-e*r.step), time.Second)
				}
				p.PerSecond = round(float64(part.n)/elapsed.Seconds(), 3)
				if gauges && part.backlog > 0 {
					b := int(part.backlog - 1)
					age := round(float64(part.oldest)/1000, 3)
					p.Backlog, p.OldestPendingSeconds = &b, &age
				}
			}
			out = append(out, p)
		}
		return out
	}
	for name, sr := range s.routes.all() {
		rs := RouteSeries{Points: points(sr, false)}
		if p := sr.mode.Load(); p != nil {
			rs.Mode = *p
		}
		rep.Routes[name] = rs
	}
	for name, sr := range s.targets.all() {
		rep.Targets[name] = TargetSeries{Points: points(sr, true)}
	}
	return rep
}

// DefaultSampleEvery is how often SampleBacklog reads the backlog.
const DefaultSampleEvery = 10 * time.Second

// sampleTimeout bounds one backlog read of SampleBacklog.
const sampleTimeout = 10 * time.Second

// SampleBacklog records the backlog of every target read from src
// (RecordBacklog) at once and then every every (DefaultSampleEvery when
// ≤ 0), until ctx ends. A failed read is skipped; onError, when not nil,
// gets its error.
func (s *Stats) SampleBacklog(ctx context.Context, src BacklogSource, every time.Duration, onError func(error)) {
	if every <= 0 {
		every = DefaultSampleEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.sampleOnce(ctx, src, onError)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Stats) sampleOnce(ctx context.Context, src BacklogSource, onError func(error)) {
	rctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	bl, err := src.Backlog(rctx)
	if err != nil {
		if onError != nil && ctx.Err() == nil {
			onError(err)
		}
		return
	}
	now := s.now()
	waiting := map[string]int{}
	oldest := map[string]time.Duration{}
	for _, b := range bl {
		waiting[b.Target] += b.Waiting
		if b.Waiting > 0 && !b.OldestWaiting.IsZero() {
			oldest[b.Target] = max(oldest[b.Target], now.Sub(b.OldestWaiting))
		}
	}
	for target, w := range waiting {
		s.RecordBacklog(target, w, oldest[target])
	}
}
