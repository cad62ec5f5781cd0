package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseErrorsLifecycle(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"unknown state", route("all", "[crm]", "lifecycle: {state: deprecate}"),
			"10:24: routes[0].lifecycle.state", `did you mean "deprecated"?`},
		{"sunset not a time", route("all", "[crm]", "lifecycle: {state: deprecated, sunset: tomorrow}"),
			"10:44: routes[0].lifecycle.sunset", "RFC 3339"},
		{"sunset on a published route", route("all", "[crm]", "lifecycle: {sunset: \"2027-01-01T00:00:00Z\"}"),
			"10:25: routes[0].lifecycle.sunset", "only allowed with state deprecated or retired, not published"},
		{"sunset before deprecation", route("all", "[crm]", "lifecycle: {state: deprecated, deprecated_at: \"2027-02-01T00:00:00Z\", sunset: \"2027-01-01T00:00:00Z\"}"),
			"10:83: routes[0].lifecycle.sunset", "must not be before deprecated_at"},
		{"link not a URL", route("all", "[crm]", "lifecycle: {state: retired, link: /docs}"),
			"10:39: routes[0].lifecycle.link", "absolute http:// or https:// URL"},
	})
}

func TestParseLifecycle(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(route("all", "[crm]",
		`lifecycle: {state: deprecated, deprecated_at: "2026-06-01T00:00:00Z", sunset: "2027-01-31T12:00:00+01:00", link: "https://example.com/v2"}`)), nil)
	require.NoError(t, err)
	l := cfg.Routes[0].Lifecycle
	require.Equal(t, StateDeprecated, l.State)
	require.Equal(t, time.Date(2027, 1, 31, 11, 0, 0, 0, time.UTC), l.SunsetTime.UTC())
	require.Equal(t, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), l.DeprecatedTime.UTC())
	require.False(t, cfg.Routes[0].Draft())
}
