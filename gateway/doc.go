// Package gateway is Fanout's HTTP data plane: it receives a request once,
// matches it to a route of the config and delivers it to the route's
// targets in the route's mode (docs/modes.md):
//
//   - all and settled send to every target concurrently, with per-target
//     retries inside the route deadline, and answer with one JSON envelope
//     of every outcome;
//   - race proxies the first successful response and cancels the others,
//     optionally hedging (the next target only when the first is slow);
//   - mirror proxies the primary's response as is and sends copies to the
//     other targets through the durable queue or best-effort;
//   - async stores the message through an Enqueuer and answers 202;
//   - steps runs a small DAG of dependent calls whose path, headers and
//     body are templates over the request and earlier responses, and
//     answers with one step's response or the envelope (steps.go).
//
// A route target's body template reshapes what that target is sent in
// the sync modes (bodymap.go).
//
// The request body is read once (bounded by the route's max_body) and the
// same bytes go to every target; each outbound call is a child of the
// inbound request's context, so a client that leaves cancels them. Routing
// is a small tree compiled from the config (literal segments beat
// wildcards) and swapped atomically by Load: a request in flight finishes
// with the table it started with. Every error answer has the one shape of
// package apierror.
//
// Before the body is read, a route's auth (API keys or JWT, package auth),
// its allowed tenants and its rate limit (package ratelimit) are checked,
// and the header that carried the credential is dropped from the request
// so that it is neither forwarded nor stored; once the body is read it is
// checked against the route's JSON Schema (package schema). See
// security.go.
//
// Outbound requests are made by package upstream, which sets the outbound
// headers, classifies failures and holds the retry policy.
package gateway
