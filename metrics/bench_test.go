package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanouthq/fanout/metrics"
)

// The hot path: one call per inbound request and per attempt. Routes,
// targets and codes repeat, as they do in production, so the label
// children come from the cache.

func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	routes := []string{"signup", "profile", "orders", "shadow"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.ObserveRequest(routes[i&3], "all", 200, 3*time.Millisecond)
		i++
	}
}

func BenchmarkObserveRequestParallel(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("signup", "all", 200, 3*time.Millisecond)
		}
	})
}

func BenchmarkObserveAttempt(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	targets := []string{"crm", "analytics", "billing", "audit"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.ObserveAttempt("signup", targets[i&3], metrics.OutcomeSuccess, 2*time.Millisecond)
		i++
	}
}

func BenchmarkIncDead(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.IncDead("crm")
	}
}

// BenchmarkNilMetrics is the baseline of a component run without metrics.
func BenchmarkNilMetrics(b *testing.B) {
	var m *metrics.Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("signup", "all", 200, 3*time.Millisecond)
		m.ObserveAttempt("signup", "crm", metrics.OutcomeSuccess, 2*time.Millisecond)
	}
}
