// Package metrics is Fanout's Prometheus instrumentation (docs/observability.md).
//
// It exists so that the data plane, the durable queue and the admin API
// share one set of metric names, labels and buckets, registered on a
// registry the caller owns (never the global one), and so that the hot
// path costs a few atomic operations and no allocation:
//
//	reg := metrics.NewRegistry()                  // Go runtime + process collectors
//	m := metrics.New(reg)                         // the request, attempt and dead-letter metrics
//	reg.MustRegister(metrics.NewBacklogCollector(store, metrics.BacklogOptions{}))
//	admin.Options{Metrics: metrics.Handler(reg)}  // GET /metrics
//
//	m.ObserveRequest("signup", "all", 200, elapsed)
//	m.ObserveAttempt("signup", "crm", metrics.Outcome(res.Class), res.Duration)
//	m.IncDead("crm")
//
// A nil *Metrics is valid and records nothing, so components can take an
// optional *Metrics and call it unconditionally.
//
// Label values come only from config names (routes, targets), the fixed
// modes, HTTP status codes and the fixed outcome classes, so the number of
// series is bounded by the configuration.
//
// The backlog metrics (fanout_deliveries, fanout_backlog_deliveries,
// fanout_backlog_oldest_seconds) are not counted in process: a
// BacklogCollector asks the store at scrape time, with a timeout and a
// short cache, so that they are right across restarts and across every
// process sharing one database.
package metrics
