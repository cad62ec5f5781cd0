// Package admin is Fanout's control plane: the HTTP API an operator (or the
// fanout CLI) uses to see the configured routes and targets and to manage
// messages — list and inspect them with their deliveries and attempts,
// replay dead deliveries one by one or in bulk, backfill a target that was
// added to an async route, delete a message — plus /healthz, /readyz,
// /metrics, /openapi.json and opt-in /debug/pprof/.
//
// New returns the handler that the server mounts on the admin listener
// (loopback by default). Every /v1 endpoint requires
// "Authorization: Bearer <token>", compared in constant time; an empty
// token locks the API. Handlers return errors that are written once, in
// the one error shape of package apierror. Secrets never leave the API:
// header values that may carry them (Authorization, Cookie, Set-Cookie,
// X-Api-Key, every target's redact list and configured headers) are
// replaced by a marker in every answer.
//
// The endpoints are declared in one table that both registers them on the
// mux and, in the tests, is checked against the embedded OpenAPI 3.1
// document served at /openapi.json, so the document stays true.
//
// Client is the Go client of the same API, used by "fanout messages"; the
// request and response types in this package are shared by both sides.
package admin
