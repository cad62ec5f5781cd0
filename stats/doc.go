// Package stats keeps the recent traffic of each route and target in
// memory and answers GET /v1/stats?window=5m (docs/operations.md): per route and per
// target over a sliding window of up to an hour, the number of requests
// (or attempts), successes, failures by error class, the success rate and
// the latency p50/p95/p99.
//
// Prometheus (package metrics) is the long-term, multi-process view; stats
// is the "what is happening right now on this process" view that the
// admin API, the CLI and the dashboard read without a Prometheus server.
//
// # How it works
//
// Each route and each target has two rings of time buckets: 31 buckets of
// 10 seconds (windows up to 5 minutes) and 61 buckets of one minute
// (windows up to an hour). A bucket holds atomic counters and a latency
// histogram with logarithmic bins 4% apart, so that a percentile read from
// it is within 2% of the true sample at that rank, from 1µs to 1h.
// Recording is O(1) and allocation-free: a lock-free map lookup, a
// logarithm and a few atomic adds; a mutex is taken only when a bucket is
// recycled (once per 10 seconds per series). A snapshot merges the buckets
// of the window; it never sorts samples.
//
// A window is rounded up to whole buckets and includes the current,
// partly filled one: window=5m covers between 5m and 5m10s; window=1h
// between 1h and 1h1m. Routes and targets without traffic for an hour are
// forgotten.
package stats
