// Package ratelimit limits the request rate of each caller of a route
// with a token bucket per caller (golang.org/x/time/rate): a caller may
// send Burst requests at once and RPS per second after that; past it the
// gateway answers 429 with Retry-After (docs/security.md).
//
// Buckets live in memory, per process: with several Fanout nodes behind a
// load balancer each node applies the limit on its own, so a caller may
// get up to nodes × the limit. A bucket left idle long enough to be full
// again is dropped (a new one would be the same), so memory follows the
// number of recently active callers, not of all callers ever seen; a hard
// cap bounds it even against a flood of new callers.
package ratelimit
