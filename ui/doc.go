// Package ui is the operator dashboard served at /ui/ on the admin
// listener (docs/operations.md, "Dashboard"): server-rendered pages over
// the admin API, with a small script for the refreshing overview. The
// charts over time (charts.go) are SVG drawn by the server from GET
// /v1/stats/series; the script swaps in a fresh copy (GET /ui/charts).
//
// The dashboard holds no logic of its own about messages: every page and
// every action is a request to the admin API handler, made in-process
// with the signed-in user's token, so a tenant admin token sees and
// changes exactly what it would through the API (docs/security.md).
//
// # Sessions
//
// Signing in with the admin token or a tenant admin token creates a
// server-side session: the browser holds only a random id in an HttpOnly,
// SameSite=Strict cookie (Secure over TLS); the token stays in the
// session map, never in a URL, a cookie or a log. Sessions end after
// Options.IdleTimeout without a request, Options.SessionTTL after sign-in,
// on sign-out, or as soon as the admin API stops accepting the token (it
// was rotated). Every state-changing request is a POST that must carry
// the session's CSRF token and pass net/http's cross-origin check
// (Sec-Fetch-Site, Origin).
//
// A Handler owns one goroutine that drops expired sessions; Close stops
// it.
package ui
