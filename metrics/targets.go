package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanouthq/fanout/balance"
)

// The metric names of targets' live state (package balance).
const (
	NameTargetServerUp      = "fanout_target_server_up"
	NameTargetInFlight      = "fanout_target_in_flight"
	NameCircuitState        = "fanout_circuit_state"
	NameServerStateChanges  = "fanout_target_server_state_changes_total"
	NameCircuitStateChanges = "fanout_circuit_state_changes_total"
)

const (
	helpTargetServerUp      = "1 when the server of the target takes attempts (healthy and not ejected), 0 when not."
	helpTargetInFlight      = "Attempts in flight to the target on this node, sync and durable."
	helpCircuitState        = "The target's circuit breaker: 0 closed, 1 half-open, 2 open (only targets with a circuit_breaker)."
	helpServerStateChanges  = "Times a server of the target went up or down (ejected, back, failing or passing its health check), by the state it went to."
	helpCircuitStateChanges = "Changes of the target's circuit breaker, by the state it went to (open, half_open, closed)."
)

const labelServer = "server"

// TargetSource returns the live state of the targets.
// upstream.Client.TargetStatus is one.
type TargetSource func() []balance.TargetStatus

// TargetsCollector exposes the live state of the targets at each scrape:
// fanout_target_server_up, fanout_target_in_flight, fanout_circuit_state.
type TargetsCollector struct {
	src                 TargetSource
	up, inflight, state *prometheus.Desc
}

var _ prometheus.Collector = (*TargetsCollector)(nil)

// NewTargetsCollector returns a collector over src.
func NewTargetsCollector(src TargetSource) *TargetsCollector {
	return &TargetsCollector{
		src:      src,
		up:       prometheus.NewDesc(NameTargetServerUp, helpTargetServerUp, []string{labelTarget, labelServer}, nil),
		inflight: prometheus.NewDesc(NameTargetInFlight, helpTargetInFlight, []string{labelTarget}, nil),
		state:    prometheus.NewDesc(NameCircuitState, helpCircuitState, []string{labelTarget}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *TargetsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.inflight
	ch <- c.state
}

// Collect implements prometheus.Collector.
func (c *TargetsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.src() {
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(t.InFlight), t.Name)
		for _, s := range t.Servers {
			v := 0.0
			if s.Up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, t.Name, s.URL)
		}
		if t.Circuit != "" {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, circuitValue(t.Circuit), t.Name)
		}
	}
}

func circuitValue(s string) float64 {
	switch s {
	case balance.HalfOpen.String():
		return 1
	case balance.Open.String():
		return 2
	}
	return 0
}

// IncServerState counts a server of target going up or down.
func (m *Metrics) IncServerState(target, server string, up bool) {
	if m == nil {
		return
	}
	state := "down"
	if up {
		state = "up"
	}
	m.serverChanges.WithLabelValues(target, server, state).Inc()
}

// IncCircuitState counts target's circuit going to state (open,
// half_open, closed).
func (m *Metrics) IncCircuitState(target, state string) {
	if m == nil {
		return
	}
	m.circuitChanges.WithLabelValues(target, state).Inc()
}
