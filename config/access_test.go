package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseErrorsAccess(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"unknown mode", route("all", "[crm]", "access: {subscription: aprooval}"),
			"10:28: routes[0].access.subscription", `did you mean "approval"?`},
		{"subscription without auth", route("all", "[crm]", "access: {subscription: approval}"),
			"10:28: routes[0].access.subscription", "needs auth api_key or jwt"},
	})
}

func TestParseAccess(t *testing.T) {
	t.Parallel()
	// A tenant with only an admin token may call an api_key route: it
	// creates its own keys.
	yaml := route("all", "[crm]", "auth: api_key", "access: {subscription: approval}") +
		"tenants:\n  acme:\n    admin_token_sha256: " + sha64 + "\n"
	cfg, err := Parse("fanout.yaml", []byte(yaml), nil)
	require.NoError(t, err)
	require.Equal(t, SubscriptionApproval, cfg.Routes[0].Access.Subscription)
	require.True(t, cfg.Routes[0].NeedsSubscription())

	cfg, err = Parse("fanout.yaml", []byte(route("all", "[crm]", "access: {subscription: none}")), nil)
	require.NoError(t, err)
	require.False(t, cfg.Routes[0].NeedsSubscription())
}

const sha64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
