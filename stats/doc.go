// Package stats keeps the recent traffic of each route and target in
// memory and answers GET /v1/stats?window=5m (docs/operations.md): per route and per
// target over a sliding window of up to 24 hours, the number of requests
// (or attempts), successes, failures by error class, the success rate and
// the latency p50/p95/p99. GET /v1/stats/series?window=1h is the same
// step by step (the dashboard's charts), with each target's sampled
// backlog and oldest waiting message's age (SampleBacklog).
//
// Prometheus (package metrics) is the long-term, multi-process view; stats
// is the "what is happening right now on this process" view that the
// admin API, the CLI and the dashboard read without a Prometheus server.
//
// # How it works
//
// Each route and each target has three rings of time buckets: 31 buckets
// of 10 seconds (windows up to 5 minutes), 61 buckets of one minute
// (windows up to an hour) and 97 buckets of 15 minutes (windows up to 24
// hours); 189 buckets of about 2.3 KB, some 440 KB per route or target,
// bounded by the config. A bucket holds atomic counters and a latency
// histogram with logarithmic bins 4% apart, so that a percentile read from
// it is within 2% of the true sample at that rank, from 1µs to 1h.
// Recording is O(1) and allocation-free: a lock-free map lookup, a
// logarithm and a few atomic adds; a mutex is taken only when a bucket is
// recycled (once per 10 seconds per series). A snapshot merges the buckets
// of the window; it never sorts samples.
//
// A window is rounded up to whole buckets and includes the current,
// partly filled one: window=5m covers between 5m and 5m10s; window=1h
// between 1h and 1h1m; window=24h between 24h and 24h15m. Routes and
// targets without traffic for 24 hours are forgotten.
//
// A bucket also keeps the largest backlog sample it got (RecordBacklog):
// the server samples the store's backlog every 10 seconds
// (SampleBacklog), so that the history shows it over time.
package stats
