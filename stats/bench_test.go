package stats_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/fanouthq/fanout/stats"
)

// BenchmarkRecordRequest is the per-request cost with the real clock.
func BenchmarkRecordRequest(b *testing.B) {
	s := stats.New(stats.Options{})
	routes := []string{"signup", "profile", "orders", "shadow"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.RecordRequest(routes[i&3], "all", true, "", time.Duration(i&1023)*time.Microsecond)
		i++
	}
}

func BenchmarkRecordAttempt(b *testing.B) {
	s := stats.New(stats.Options{})
	targets := []string{"crm", "analytics", "billing", "audit"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.RecordAttempt("signup", targets[i&3], "", time.Duration(i&1023)*time.Microsecond)
		i++
	}
}

// BenchmarkRecordRequestParallel records on one route from every CPU:
// the worst case for contention on its counters.
func BenchmarkRecordRequestParallel(b *testing.B) {
	s := stats.New(stats.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.RecordRequest("signup", "all", true, "", time.Duration(i&1023)*time.Microsecond)
			i++
		}
	})
}

// BenchmarkSnapshot reads the default window of 20 routes and 20 targets
// with traffic in every bucket of the last hour.
func BenchmarkSnapshot(b *testing.B) {
	for _, window := range []time.Duration{stats.DefaultWindow, stats.MaxWindow} {
		b.Run(window.String(), func(b *testing.B) {
			c := newClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			s := stats.New(c.options())
			for range 360 {
				for r := range 20 {
					s.RecordRequest("route"+strconv.Itoa(r), "all", true, "", time.Duration(r+1)*time.Millisecond)
					s.RecordAttempt("route"+strconv.Itoa(r), "target"+strconv.Itoa(r), "", time.Duration(r+1)*time.Millisecond)
				}
				c.Advance(10 * time.Second)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Snapshot(window)
			}
		})
	}
}
