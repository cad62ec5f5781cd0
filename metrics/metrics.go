package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fanouthq/fanout"
)

// The metric names, as they appear on /metrics.
const (
	NameRequestsTotal       = "fanout_requests_total"
	NameRequestDuration     = "fanout_request_duration_seconds"
	NameAttemptsTotal       = "fanout_attempts_total"
	NameAttemptDuration     = "fanout_attempt_duration_seconds"
	NameDeadTotal           = "fanout_dead_total"
	NameBodyTimeoutsTotal   = "fanout_request_body_timeouts_total"
	NameDeprecatedTotal     = "fanout_deprecated_requests_total"
	NameDeliveries          = "fanout_deliveries"
	NameBacklogDeliveries   = "fanout_backlog_deliveries"
	NameBacklogOldest       = "fanout_backlog_oldest_seconds"
	NameBacklogScrapeErrors = "fanout_backlog_scrape_errors_total"
)

// Label names.
const (
	labelRoute   = "route"
	labelMode    = "mode"
	labelCode    = "code"
	labelTarget  = "target"
	labelOutcome = "outcome"
	labelState   = "state"
	labelTenant  = "tenant"
)

// Values of the state label of the backlog metrics.
const (
	stateWaiting = "waiting"
	stateDead    = "dead"
)

// Status codes outside [codeMin, codeMax] are counted as codeInvalid.
const (
	codeInvalid = 0
	codeMin     = 100
	codeMax     = 599
)

const (
	helpRequestsTotal       = "Inbound requests answered, by route, mode and HTTP status code."
	helpRequestDuration     = "Time from receiving an inbound request to the end of its answer, by route and mode."
	helpAttemptsTotal       = "HTTP exchanges with targets, by route, target and outcome (success or an error class)."
	helpAttemptDuration     = "Duration of one HTTP exchange with a target, by route and target."
	helpDeadTotal           = "Deliveries that became dead (retries exhausted or a non-retryable answer), by target."
	helpBodyTimeoutsTotal   = "Inbound requests whose body did not arrive within the route's body_timeout (answered 408, connection closed), by route."
	helpDeprecatedTotal     = "Inbound requests to routes in lifecycle state deprecated, by route and tenant (\"\" when the caller has none)."
	helpDeliveries          = "Undelivered deliveries in the store, summed over targets: waiting (pending, retrying, delivering) or dead."
	helpBacklogDeliveries   = "Undelivered deliveries in the store per target: waiting (pending, retrying, delivering) or dead."
	helpBacklogOldest       = "Age in seconds of the oldest message waiting for delivery to the target, 0 when none waits."
	helpBacklogScrapeErrors = "Scrapes whose read of the delivery backlog from the store failed or timed out."
)

// OutcomeSuccess is the outcome label of an attempt that succeeded; the
// other outcomes are the error classes of fanout.ErrorClass.
const OutcomeSuccess = "success"

// DurationBuckets returns the histogram buckets, in seconds, of both
// duration metrics: from 0.5ms (a loopback exchange) to 30s (a long route
// deadline), about 2.5× apart. Each call returns a new slice.
func DurationBuckets() []float64 {
	return []float64{
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
		0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	}
}

// Outcome returns the outcome label of an attempt that ended with class:
// "success" for fanout.ClassNone, the class otherwise, and "other" for a
// class Fanout does not know (so that the label set stays bounded).
func Outcome(class fanout.ErrorClass) string {
	return outcome(string(class))
}

// outcome normalises an outcome label without allocating.
func outcome(s string) string {
	switch s {
	case "", OutcomeSuccess:
		return OutcomeSuccess
	case string(fanout.ClassTimeout), string(fanout.ClassConnect), string(fanout.ClassTLS),
		string(fanout.ClassStatus), string(fanout.ClassCanceled), string(fanout.ClassOther),
		string(fanout.ClassCircuitOpen), string(fanout.ClassRateLimited):
		return s
	}
	return string(fanout.ClassOther)
}

// Metrics holds Fanout's request, attempt and dead-letter metrics. Create
// it with New. Its methods are safe for concurrent use, do not allocate
// once a label combination has been seen, and do nothing on a nil
// *Metrics.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	dead            *prometheus.CounterVec
	bodyTimeouts    *prometheus.CounterVec
	serverChanges   *prometheus.CounterVec
	circuitChanges  *prometheus.CounterVec
	deprecated      *prometheus.CounterVec

	reqCache  labelCache[requestKey, requestChildren]
	attCache  labelCache[attemptKey, attemptChildren]
	deadCache labelCache[string, prometheus.Counter]
	depCache  labelCache[deprecatedKey, prometheus.Counter]
}

type deprecatedKey struct {
	route, tenant string
}

type requestKey struct {
	route, mode string
	code        int
}

type requestChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type attemptKey struct {
	route, target, outcome string
}

type attemptChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New returns the metrics registered on reg: fanout_requests_total,
// fanout_request_duration_seconds, fanout_attempts_total,
// fanout_attempt_duration_seconds, fanout_dead_total,
// fanout_request_body_timeouts_total,
// fanout_target_server_state_changes_total,
// fanout_circuit_state_changes_total and fanout_deprecated_requests_total.
// A nil reg
// registers nothing (the metrics still count, which suits tests and
// benchmarks). New panics when reg already has metrics of these names, as
// prometheus.Registerer.MustRegister does: that is a wiring mistake.
//
// The backlog metrics need the store: register a BacklogCollector beside.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRequestsTotal, Help: helpRequestsTotal,
		}, []string{labelRoute, labelMode, labelCode}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameRequestDuration, Help: helpRequestDuration, Buckets: DurationBuckets(),
		}, []string{labelRoute, labelMode}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameAttemptsTotal, Help: helpAttemptsTotal,
		}, []string{labelRoute, labelTarget, labelOutcome}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameAttemptDuration, Help: helpAttemptDuration, Buckets: DurationBuckets(),
		}, []string{labelRoute, labelTarget}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameDeadTotal, Help: helpDeadTotal,
		}, []string{labelTarget}),
		bodyTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBodyTimeoutsTotal, Help: helpBodyTimeoutsTotal,
		}, []string{labelRoute}),
		serverChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameServerStateChanges, Help: helpServerStateChanges,
		}, []string{labelTarget, labelServer, labelState}),
		circuitChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameCircuitStateChanges, Help: helpCircuitStateChanges,
		}, []string{labelTarget, labelState}),
		deprecated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameDeprecatedTotal, Help: helpDeprecatedTotal,
		}, []string{labelRoute, labelTenant}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestDuration, m.attempts, m.attemptDuration, m.dead, m.bodyTimeouts,
			m.serverChanges, m.circuitChanges, m.deprecated)
	}
	return m
}

// ObserveRequest counts one answered inbound request of route in mode with
// HTTP status code, and its duration d. A code outside 100–599 is counted
// as "0".
func (m *Metrics) ObserveRequest(route, mode string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if code < codeMin || code > codeMax {
		code = codeInvalid
	}
	k := requestKey{route: route, mode: mode, code: code}
	c, ok := m.reqCache.load(k)
	if !ok {
		c = m.reqCache.loadOrStore(k, func() requestChildren {
			return requestChildren{
				count:    m.requests.WithLabelValues(k.route, k.mode, strconv.Itoa(k.code)),
				duration: m.requestDuration.WithLabelValues(k.route, k.mode),
			}
		})
	}
	c.count.Inc()
	c.duration.Observe(d.Seconds())
}

// ObserveAttempt counts one HTTP exchange of route with target that ended
// with outcome ("success", "" meaning the same, or an error class:
// timeout, connect, tls, status, canceled, other; anything else counts as
// other), and its duration d.
func (m *Metrics) ObserveAttempt(route, target, outcomeLabel string, d time.Duration) {
	if m == nil {
		return
	}
	k := attemptKey{route: route, target: target, outcome: outcome(outcomeLabel)}
	c, ok := m.attCache.load(k)
	if !ok {
		c = m.attCache.loadOrStore(k, func() attemptChildren {
			return attemptChildren{
				count:    m.attempts.WithLabelValues(k.route, k.target, k.outcome),
				duration: m.attemptDuration.WithLabelValues(k.route, k.target),
			}
		})
	}
	c.count.Inc()
	c.duration.Observe(d.Seconds())
}

// IncDead counts one delivery to target that became dead.
func (m *Metrics) IncDead(target string) {
	if m == nil {
		return
	}
	c, ok := m.deadCache.load(target)
	if !ok {
		c = m.deadCache.loadOrStore(target, func() prometheus.Counter {
			return m.dead.WithLabelValues(target)
		})
	}
	c.Inc()
}

// IncBodyTimeout counts one inbound request of route whose body did not
// arrive within the route's body_timeout. It is rare (a slow or hostile
// client), so it looks its counter up on every call.
func (m *Metrics) IncBodyTimeout(route string) {
	if m == nil {
		return
	}
	m.bodyTimeouts.WithLabelValues(route).Inc()
}

// IncDeprecated counts one inbound request to route, a deprecated route,
// by a caller of tenant ("" when it has none), so that the route's owner
// knows whom to tell before the sunset.
func (m *Metrics) IncDeprecated(route, tenant string) {
	if m == nil {
		return
	}
	k := deprecatedKey{route: route, tenant: tenant}
	c, ok := m.depCache.load(k)
	if !ok {
		c = m.depCache.loadOrStore(k, func() prometheus.Counter {
			return m.deprecated.WithLabelValues(k.route, k.tenant)
		})
	}
	c.Inc()
}

// NewRegistry returns a new registry (not the global one) with the Go
// runtime and process collectors registered, ready for New.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves the metrics of g in the Prometheus exposition format. A
// collector that fails does not fail the scrape: the other metrics are
// still served.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})
}
