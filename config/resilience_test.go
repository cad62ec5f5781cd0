package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// servers starts a config with one target, crm, without url; its lines
// start on line 3, indented to column 5.
func servers(lines ...string) string {
	s := "targets:\n  crm:\n"
	for _, l := range lines {
		s += "    " + l + "\n"
	}
	return s
}

func TestResilienceErrors(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"servers empty", servers("servers: []"), "3:5: targets.crm.servers", "must list at least one server"},
		{"url and servers", crm("servers: [{url: http://a/}]"), "3:10: targets.crm.url", "set url (one server) or servers, not both"},
		{"weight zero", servers("servers: [{url: http://a/, weight: 0}]"), "3:40: targets.crm.servers[0].weight", "must be from 1 to 1000, not 0"},
		{"weight negative", servers("servers: [{url: http://a/, weight: -2}]"), "3:40: targets.crm.servers[0].weight", "must be from 1 to 1000, not -2"},
		{"backup only", servers("servers: [{url: http://a/, backup: true}]"), "3:5: targets.crm.servers", "needs at least one server that is not a backup"},
		{"server url", servers("servers: [{url: ftp://a/}]"), "3:21: targets.crm.servers[0].url", "must be an absolute http:// or https:// URL"},
		{"server twice", servers("servers: [{url: http://a/}, {url: http://a/}]"), "3:39: targets.crm.servers[1].url", `"http://a/" is listed twice`},
		{"balance", crm("balance: random"), "4:14: targets.crm.balance", "must be round_robin, least_requests or p2c"},
		{"health path", crm("health_check: {path: health}"), "4:26: targets.crm.health_check.path", `must start with /, not "health"`},
		{"health path missing", crm("health_check: {interval: 1s}"), "4:5: targets.crm.health_check.path", "is required"},
		{"health timeout above interval", crm("health_check: {path: /h, interval: 1s, timeout: 2s}"), "4:53: targets.crm.health_check.timeout", "must not exceed interval"},
		{"health expect_status", crm("health_check: {path: /h, expect_status: 700}"), "4:45: targets.crm.health_check.expect_status", "must be an HTTP status from 100 to 599, not 700"},
		{"breaker ratio", crm("circuit_breaker: {failure_ratio: 1.5}"), "4:38: targets.crm.circuit_breaker.failure_ratio", "must be more than 0 and at most 1, not 1.5"},
		{"breaker ratio zero", crm("circuit_breaker: {failure_ratio: 0}"), "4:38: targets.crm.circuit_breaker.failure_ratio", "must be more than 0 and at most 1, not 0"},
		{"breaker min_requests", crm("circuit_breaker: {min_requests: 0}"), "4:37: targets.crm.circuit_breaker.min_requests", "must be at least 1, not 0"},
		{"breaker consecutive", crm("circuit_breaker: {consecutive_failures: -1}"), "4:45: targets.crm.circuit_breaker.consecutive_failures", "must be from 0 (off) to 1000, not -1"},
		{"breaker open_for", crm("circuit_breaker: {open_for: 0s}"), "4:33: targets.crm.circuit_breaker.open_for", "must be greater than 0"},
		{"breaker probes", crm("circuit_breaker: {probes: 0}"), "4:31: targets.crm.circuit_breaker.probes", "must be from 1 to 100, not 0"},
		{"breaker window", crm("circuit_breaker: {window: 0s}"), "4:31: targets.crm.circuit_breaker.window", "must be greater than 0"},
		{"outlier failures", crm("outlier: {consecutive_failures: 1001}"), "4:37: targets.crm.outlier.consecutive_failures", "must be from 0 (off) to 1000, not 1001"},
		{"outlier max below base", crm("outlier: {ejection_time: 1m, max_ejection_time: 10s}"), "4:53: targets.crm.outlier.max_ejection_time", "must be at least ejection_time (1m), not 10s"},
		{"rate_limit rps zero", crm("rate_limit: {rps: 0}"), "4:23: targets.crm.rate_limit.rps", "must be greater than 0"},
		{"rate_limit rps negative", crm("rate_limit: {rps: -3}"), "4:23: targets.crm.rate_limit.rps", "must be greater than 0"},
		{"failure_status", crm("failure_status: [503, 42]"), "4:27: targets.crm.failure_status[1]", "must be an HTTP status from 100 to 599, not 42"},
	})
}

func TestServersShorthandAndDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(servers(
		"servers: [{url: http://b/, backup: true}, {url: http://a/x, weight: 3}]",
		"circuit_breaker: {}",
		"health_check: {path: /healthz}",
		"rate_limit: {rps: 2.5}",
		"max_in_flight: 8",
	)), nil)
	require.NoError(t, err)
	tc := cfg.Targets["crm"]
	require.Equal(t, "http://a/x", tc.URL, "the first primary server names the target")
	require.Equal(t, 1, tc.Servers[0].Weight)
	require.Equal(t, 3, tc.Servers[1].Weight)
	require.Equal(t, CircuitBreaker{Window: defaultBreakerWindow, MinRequests: 10, FailureRatio: 0.5, ConsecutiveFailures: 5, OpenFor: defaultBreakerOpenFor, Probes: 1}, *tc.CircuitBreaker)
	require.Equal(t, HealthCheck{Path: "/healthz", Interval: defaultCheckInterval, Timeout: defaultCheckTimeout}, *tc.HealthCheck)
	require.Equal(t, 3, tc.RateLimit.Burst, "rps rounded up")
	require.Equal(t, 8, tc.SharedInFlight(), "written in the file: bounds sync and durable")

	cfg, err = Parse("fanout.yaml", []byte(crm()), nil)
	require.NoError(t, err)
	require.Zero(t, cfg.Targets["crm"].SharedInFlight(), "the default bounds durable deliveries only")
	require.Equal(t, 64, cfg.Targets["crm"].MaxInFlight)
}
