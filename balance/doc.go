// Package balance owns the live state of each target's servers: which
// server the next attempt goes to (smooth weighted round robin,
// least_requests or p2c), which servers are out (ejected after
// consecutive failures, failing their active health check), the target's
// circuit breaker and its egress budget (rate_limit, max_in_flight).
//
// upstream.Client asks a Target for a Lease before every attempt, sync or
// durable, and gives the lease back with the attempt's Outcome; nothing
// else in Fanout needs to know. A Set holds the targets of a config and
// keeps their state across hot reloads (Set.Update): a server that stays
// keeps its counters, one that goes away is dropped once its attempts in
// flight end. The state is per process: with several nodes, each has its
// own breakers, ejections and budgets.
//
// The hot path is lock-free for a target without a breaker or a rate
// limit: a pick is an atomic counter over a precomputed weighted schedule
// and the bookkeeping is atomic adds. The breaker and the rate limiter
// take a mutex of their own, only when configured.
package balance
