// Package upstream sends requests to targets: one attempt of one message to
// one downstream API. The data plane (package gateway) uses it for the sync
// modes and the durable queue (package queue) for deliveries, so both send
// exactly the same outbound headers, classify failures the same way and
// apply the same retry policy.
//
// One Client holds one tuned http.Transport shared by every target:
// keep-alive connections, an idle pool sized for fan-out (Go's default of 2
// idle connections per host makes a busy gateway open and close a
// connection per request and pile up TIME_WAIT sockets), HTTP/2 when a TLS
// target offers it. In front of it sits the HTTP/1.1 fast path (h1.go), an
// http.RoundTripper that sends plain-http requests with small in-memory
// bodies on the caller's goroutine and hands every other request to the
// transport. Redirects are not followed: a proxied 3xx goes back to the
// caller as is, and for a delivery it is a failed status.
//
// Every outbound request carries the forwarded inbound headers without the
// hop-by-hop ones, the target's configured headers, Idempotency-Key and
// Fanout-Message-Id (the message id, stable across attempts), Fanout-Attempt,
// Fanout-Target, X-Forwarded-For/-Proto/-Host and a W3C traceparent.
package upstream
