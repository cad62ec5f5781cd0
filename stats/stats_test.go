package stats_test

import (
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

	// Past an hour: gone from every window, and forgotten.
	c.Advance(time.Hour)
	rep = s.Snapshot(time.Hour)
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
		2 * time.Hour:    60, // clamped to an hour
	} {
		require.Equal(t, want, s.Snapshot(window).Routes["r"].Requests, "window %s", window)
	}
	require.Equal(t, "1h", s.Snapshot(2*time.Hour).Window)
}

func TestClockGoingBack(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	c.Advance(2 * time.Hour)
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	c.Advance(-2 * time.Hour) // older than every ring: dropped, no panic
	s.RecordRequest("r", "all", true, "", time.Millisecond)
	c.Advance(2 * time.Hour)
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
