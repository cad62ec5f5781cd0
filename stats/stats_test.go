package stats_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/stats"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a fake clock safe for concurrent use.
type clock struct {
	start time.Time
	off   atomic.Int64
}

func (c *clock) Now() time.Time          { return c.start.Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }
func newClock(start time.Time) *clock    { return &clock{start: start} }
func (c *clock) options() stats.Options  { return stats.Options{Now: c.Now} }
func setup(t *testing.T) (*stats.Stats, *clock) {
	t.Helper()
	// A step boundary plus a little, so that tests know which bucket
	// "now" is in.
	c := newClock(time.Date(2026, 11, 23, 10, 0, 0, 1, time.UTC))
	return stats.New(c.options()), c
}

// nearestRank is the exact percentile the sketch approximates.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestPercentilesWithinTwoPercent(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	distributions := map[string]func() time.Duration{
		"uniform 1-100ms": func() time.Duration {
			return time.Millisecond + time.Duration(rnd.Int64N(int64(99*time.Millisecond)))
		},
		"exponential mean 20ms": func() time.Duration {
			return time.Duration(rnd.ExpFloat64() * float64(20*time.Millisecond))
		},
		"lognormal median 5ms": func() time.Duration {
			return time.Duration(math.Exp(rnd.NormFloat64()*1.2) * float64(5*time.Millisecond))
		},
		"bimodal 0.3ms and 2s": func() time.Duration {
			if rnd.IntN(10) == 0 {
				return 2*time.Second + time.Duration(rnd.Int64N(int64(500*time.Millisecond)))
			}
			return 300*time.Microsecond + time.Duration(rnd.Int64N(int64(100*time.Microsecond)))
		},
		"constant 7ms": func() time.Duration { return 7 * time.Millisecond },
	}
	for name, next := range distributions {
		s, _ := setup(t)
		samples := make([]time.Duration, 20000)
		for i := range samples {
			samples[i] = next()
			s.RecordRequest("r", "all", true, "", samples[i])
			s.RecordAttempt("r", "t", "", samples[i])
		}
		slices.Sort(samples)
		rep := s.Snapshot(time.Minute)
		for _, lat := range []*stats.Latency{rep.Routes["r"].LatencyMS, rep.Targets["t"].LatencyMS} {
			require.NotNil(t, lat, name)
			for q, got := range map[float64]float64{0.50: lat.P50, 0.95: lat.P95, 0.99: lat.P99} {
				want := float64(nearestRank(samples, q)) / float64(time.Millisecond)
				// 2% of the value, plus the rounding to 1µs of the report.
				require.InDelta(t, want, got, want*0.02+0.0005, "%s p%v", name, q*100)
			}
		}
	}
}

func TestCountsAndClasses(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	s.RecordRequest("signup", "all", true, "", 10*time.Millisecond)
	s.RecordRequest("signup", "all", true, "timeout", 10*time.Millisecond) // ok wins
	s.RecordRequest("signup", "all", false, "timeout", time.Second)
	s.RecordRequest("signup", "all", false, "", time.Second)      // no class: other
	s.RecordRequest("signup", "all", false, "bogus", time.Second) // unknown: other
	s.RecordAttempt("signup", "crm", "", 5*time.Millisecond)
	s.RecordAttempt("signup", "crm", "status", 5*time.Millisecond)
	s.RecordAttempt("profile", "crm", "connect", 5*time.Millisecond)
	s.RecordAttempt("profile", "crm", "tls", 5*time.Millisecond)
	s.RecordAttempt("profile", "analytics", "canceled", 5*time.Millisecond)

	rep := s.Snapshot(0)
	require.Equal(t, "5m", rep.Window)

	r := rep.Routes["signup"]
	require.Equal(t, "all", r.Mode)
	require.Equal(t, 5, r.Requests)
	require.Equal(t, 2, r.Successes)
	require.Equal(t, map[string]int{"timeout": 1, "other": 2}, r.Failures)
	require.NotNil(t, r.SuccessRate)
	require.InDelta(t, 0.4, *r.SuccessRate, 1e-9)

	crm := rep.Targets["crm"]
	require.Equal(t, 4, crm.Attempts, "attempts are summed over routes")
	require.Equal(t, 1, crm.Successes)
	require.Equal(t, map[string]int{"status": 1, "connect": 1, "tls": 1}, crm.Failures)
	require.InDelta(t, 0.25, *crm.SuccessRate, 1e-9)
	require.Equal(t, map[string]int{"canceled": 1}, rep.Targets["analytics"].Failures)
	require.InDelta(t, 0.0, *rep.Targets["analytics"].SuccessRate, 1e-9)
}

func TestModeFollowsLatestRequest(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	s.RecordRequest("r", "settled", true, "", time.Millisecond)
	require.Equal(t, "settled", s.Snapshot(time.Minute).Routes["r"].Mode)
}

func TestWindowExpiry(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	s.RecordRequest("r", "async", true, "", time.Millisecond)
	s.RecordAttempt("r", "t", "", time.Millisecond)

	rep := s.Snapshot(10 * time.Second)
	require.Equal(t, 1, rep.Routes["r"].Requests)

	// 10s window: the previous full step and the current one.
	c.Advance(15 * time.Second)
	require.Equal(t, 1, s.Snapshot(10 * time.Second).Routes["r"].Requests)
	c.Advance(10 * time.Second)
	rep = s.Snapshot(10 * time.Second)
	require.Equal(t, 0, rep.Routes["r"].Requests, "out of a 10s window after 25s")
	require.Nil(t, rep.Routes["r"].SuccessRate)
	require.Nil(t, rep.Routes["r"].LatencyMS)
	require.Empty(t, rep.Routes["r"].Failures)
	require.Equal(t, 1, s.Snapshot(time.Minute).Routes["r"].Requests)

	// 5m window (fine ring) and 1h window (coarse ring).
	c.Advance(5 * time.Minute)
	require.Equal(t, 0, s.Snapshot(5 * time.Minute).Routes["r"].Requests)
	require.Equal(t, 0, s.Snapshot(5 * time.Minute).Targets["t"].Attempts)
	require.Equal(t, 1, s.Snapshot(6 * time.Minute).Routes["r"].Requests)
	require.Equal(t, 1, s.Snapshot(time.Hour).Routes["r"].Requests)
	require.Equal(t, 1, s.Snapshot(time.Hour).Targets["t"].Attempts)

	// Past an hour: out of the 1h window, still in the 24h one.
	c.Advance(time.Hour)
	rep = s.Snapshot(time.Hour)
	require.Equal(t, 0, rep.Routes["r"].Requests)
	require.Equal(t, 1, s.Snapshot(24 * time.Hour).Routes["r"].Requests)

	// Past a day: gone from every window, and forgotten.
	c.Advance(24 * time.Hour)
	rep = s.Snapshot(24 * time.Hour)
	require.NotContains(t, rep.Routes, "r")
	require.NotContains(t, rep.Targets, "t")

	// Traffic again: back, with only the new request.
	s.RecordRequest("r", "async", false, "timeout", time.Millisecond)
	rep = s.Snapshot(time.Hour)
	require.Equal(t, 1, rep.Routes["r"].Requests)
	require.Equal(t, 0, rep.Routes["r"].Successes)
}

// TestSlidingWindow records one request every 10 seconds for 10 minutes
// and checks that each window counts the requests of its span, rounded up
// to whole steps.
func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	for range 60 {
		s.RecordRequest("r", "all", true, "", time.Millisecond)
		c.Advance(10 * time.Second)
	}
	// Now is 1ns into a step that has no request yet.
	for window, want := range map[time.Duration]int{
		10 * time.Second: 1,
		time.Minute:      6,
		5 * time.Minute:  30,
		10 * time.Minute: 60, // coarse ring: whole minutes
		time.Hour:        60,
		2 * time.Hour:    60, // day ring: whole 15 minutes
		48 * time.Hour:   60, // clamped to a day
	} {
		require.Equal(t, want, s.Snapshot(window).Routes["r"].Requests, "window %s", window)
	}
	require.Equal(t, "24h", s.Snapshot(48*time.Hour).Window)
}

func TestClockGoingBack(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	c.Advance(48 * time.Hour)
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	c.Advance(-48 * time.Hour) // older than every ring: dropped, no panic
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	c.Advance(48 * time.Hour)
	require.Equal(t, 1, s.Snapshot(time.Minute).Routes["r"].Requests)
}

func TestAddBacklog(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	s.RecordAttempt("r", "crm", "", time.Millisecond)
	rep := s.Snapshot(time.Minute)
	now := c.Now()
	rep.AddBacklog([]fanout.TargetBacklog{
		{Target: "crm", Waiting: 3, Dead: 1, OldestWaiting: now.Add(-42 * time.Second)},
		{Target: "idle", Waiting: 0, Dead: 5},
	}, now)

	crm := rep.Targets["crm"]
	require.Equal(t, 1, crm.Attempts)
	require.Equal(t, 3, crm.Backlog)
	require.Equal(t, 1, crm.Dead)
	require.InDelta(t, 42.0, crm.OldestPendingSeconds, 1e-9)

	idle := rep.Targets["idle"]
	require.Equal(t, 0, idle.Attempts)
	require.Equal(t, 5, idle.Dead)
	require.Zero(t, idle.OldestPendingSeconds)
	require.NotNil(t, idle.Failures)

	var empty stats.Report
	empty.AddBacklog([]fanout.TargetBacklog{{Target: "x", Waiting: 1}}, now)
	require.Equal(t, 1, empty.Targets["x"].Backlog)
}

func TestNilStatsIsNoop(t *testing.T) {
	t.Parallel()
	var s *stats.Stats
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	s.RecordAttempt("r", "t", "", time.Millisecond)
}

func TestRecordDoesNotAllocate(t *testing.T) {
	s, _ := setup(t)
	s.RecordRequest("r", "all", true, "", time.Millisecond) // create the series
	s.RecordAttempt("r", "t", "", time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		s.RecordRequest("r", "all", false, "timeout", 3*time.Millisecond)
		s.RecordAttempt("r", "t", "status", 3*time.Millisecond)
	})
	require.Zero(t, allocs)
}

// TestConcurrentRecord records from several goroutines while the clock
// moves across steps and snapshots run; run it with -race. No event may be
// lost. The recorders themselves advance the clock, a fixed number of times,
// so the total advance (8 minutes) does not depend on how the scheduler
// interleaves the goroutines and the events always stay within the hour.
func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	const goroutines, each, advanceEvery = 8, 2000, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var snapshots sync.WaitGroup
	snapshots.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Snapshot(5 * time.Minute)
			}
		}
	})
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				route := []string{"a", "b"}[(g+i)%2]
				s.RecordRequest(route, "all", i%10 != 0, "timeout", time.Duration(i)*time.Microsecond)
				s.RecordAttempt(route, "t", "", time.Millisecond)
				if i%advanceEvery == 0 {
					c.Advance(3 * time.Second) // crosses 10s steps now and then
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	snapshots.Wait()
	require.Equal(t, time.Duration(goroutines*each/advanceEvery)*3*time.Second, time.Duration(c.off.Load()))

	rep := s.Snapshot(time.Hour)
	require.Equal(t, goroutines*each, rep.Routes["a"].Requests+rep.Routes["b"].Requests)
	require.Equal(t, goroutines*each, rep.Targets["t"].Attempts)
	fails := rep.Routes["a"].Failures["timeout"] + rep.Routes["b"].Failures["timeout"]
	require.Equal(t, goroutines*each/10, fails)
}

// TestSeries checks the history's steps per window: each point counts its
// step's events, steps without traffic are zero, and the points sum to
// the Snapshot of the same window.
func TestSeries(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	// One request per minute for three hours, a failure every tenth;
	// latency grows with the minute.
	for i := range 180 {
		ok := i%10 != 0
		s.RecordRequest("r", "async", ok, "timeout", time.Duration(i+1)*time.Millisecond)
		s.RecordAttempt("r", "t", map[bool]string{true: "", false: "connect"}[ok], time.Millisecond)
		c.Advance(time.Minute)
	}
	for _, tc := range []struct {
		window time.Duration
		step   string
		points int
	}{
		{5 * time.Minute, "10s", 31},
		{time.Hour, "1m", 61},
		{24 * time.Hour, "15m", 97},
	} {
		rep := s.Series(tc.window)
		require.Equal(t, tc.step, rep.Step, "window %s", tc.window)
		pts := rep.Routes["r"].Points
		require.Len(t, pts, tc.points, "window %s", tc.window)
		require.Len(t, rep.Targets["t"].Points, tc.points)
		require.Equal(t, "async", rep.Routes["r"].Mode)
		require.Equal(t, rep.From, pts[0].At)
		require.Equal(t, rep.To, pts[len(pts)-1].At.Add(time.Duration(rep.StepSeconds*float64(time.Second))))
		sum, fails := 0, 0
		for i, p := range pts {
			require.Equal(t, p.Successes+p.Failures["timeout"], p.Count)
			if i > 0 {
				require.Equal(t, time.Duration(rep.StepSeconds*float64(time.Second)), p.At.Sub(pts[i-1].At))
			}
			sum += p.Count
			fails += p.Failures["timeout"]
		}
		snap := s.Snapshot(tc.window)
		require.Equal(t, snap.Routes["r"].Requests, sum, "window %s", tc.window)
		require.Equal(t, snap.Routes["r"].Requests-snap.Routes["r"].Successes, fails)
	}
	day := s.Series(24 * time.Hour).Routes["r"].Points
	// The three hours are the last 12 full steps and the current one:
	// 15 requests each, none before.
	for _, p := range day[:len(day)-13] {
		require.Zero(t, p.Count)
		require.Nil(t, p.LatencyMS)
	}
	full := day[len(day)-2]
	require.Equal(t, 15, full.Count)
	require.InDelta(t, 15.0/900, full.PerSecond, 1e-3)
	require.NotNil(t, full.LatencyMS)
	// Minutes 165..179 (ms 166..180): p50 is the 8th, within 2%.
	require.InEpsilon(t, 173.0, full.LatencyMS.P50, 0.02)
	require.Equal(t, "connect", firstKey(s.Series(time.Hour).Targets["t"].Points))
}

func firstKey(pts []stats.Point) string {
	for _, p := range pts {
		for k := range p.Failures {
			return k
		}
	}
	return ""
}

// TestSeriesBacklog checks that backlog samples keep the largest of each
// step, and that steps without a sample leave it out.
func TestSeriesBacklog(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	s.RecordBacklog("crm", 3, 2*time.Second)
	s.RecordBacklog("crm", 7, 5*time.Second)
	s.RecordBacklog("crm", 1, time.Second)
	c.Advance(20 * time.Second)
	s.RecordBacklog("crm", 0, 0)
	pts := s.Series(time.Minute).Targets["crm"].Points
	require.Len(t, pts, 7)
	first := pts[len(pts)-3]
	require.NotNil(t, first.Backlog)
	require.Equal(t, 7, *first.Backlog)
	require.InDelta(t, 5.0, *first.OldestPendingSeconds, 1e-9)
	require.Nil(t, pts[len(pts)-2].Backlog, "no sample in that step")
	last := pts[len(pts)-1]
	require.NotNil(t, last.Backlog)
	require.Zero(t, *last.Backlog)
	require.Zero(t, last.Count)
	// The hour's minute holds both steps' largest.
	hour := s.Series(time.Hour).Targets["crm"].Points
	require.Equal(t, 7, *hour[len(hour)-1].Backlog)
}

// backlogSource answers the sampler and tells the test each read.
type backlogSource struct {
	reads chan int
	n     int
	now   func() time.Time
}

func (b *backlogSource) Backlog(context.Context) ([]fanout.TargetBacklog, error) {
	b.n++
	b.reads <- b.n
	if b.n == 1 {
		return nil, errors.New("store down")
	}
	return []fanout.TargetBacklog{
		{Target: "crm", Waiting: 2, OldestWaiting: b.now().Add(-30 * time.Second)},
		{Target: "crm", Waiting: 1, OldestWaiting: b.now().Add(-90 * time.Second)},
		{Target: "billing", Waiting: 0},
	}, nil
}

// TestSampleBacklog runs the sampler: a failed read is reported and
// skipped; the next is recorded per target, summed over its rows.
func TestSampleBacklog(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	src := &backlogSource{reads: make(chan int), now: c.Now}
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.SampleBacklog(ctx, src, time.Millisecond, func(err error) { errs <- err })
	}()
	require.Equal(t, 1, <-src.reads)
	require.ErrorContains(t, <-errs, "store down")
	require.Equal(t, 2, <-src.reads)
	// The third read starts only after the second was recorded.
	require.Equal(t, 3, <-src.reads)
	cancel()
	go func() {
		for range src.reads { // a read that raced with the cancel
		}
	}()
	<-done
	close(src.reads)
	pts := s.Series(time.Minute).Targets
	last := pts["crm"].Points[len(pts["crm"].Points)-1]
	require.Equal(t, 3, *last.Backlog)
	require.InDelta(t, 90.0, *last.OldestPendingSeconds, 1e-9)
	b := pts["billing"].Points[len(pts["billing"].Points)-1]
	require.Zero(t, *b.Backlog)
}
