package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
)

// TestRoutesLifecycle checks that GET /v1/routes lists draft routes (the
// upcoming ones the gateway does not serve) and shows each route's state,
// sunset and link.
func TestRoutesLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	mk := func(name string, l config.Lifecycle) *config.Route {
		return &config.Route{
			Name: name, Mode: config.ModeAsync,
			Match:     config.Match{Method: http.MethodPost, Path: "/" + name},
			Targets:   []config.RouteTarget{{Name: "crm"}},
			Lifecycle: l,
		}
	}
	cfg.Routes = append(cfg.Routes,
		mk("upcoming", config.Lifecycle{State: config.StateDraft}),
		mk("old", config.Lifecycle{State: config.StateDeprecated, DeprecatedAt: "2026-06-01T00:00:00Z",
			Sunset: "2027-01-31T00:00:00Z", Link: "https://example.com/v2"}),
		mk("gone", config.Lifecycle{State: config.StateRetired, Link: "https://example.com/v2"}),
		mk("linked", config.Lifecycle{Link: "https://example.com/docs"}),
	)
	b.cfg.Store(cfg)

	routes, err := b.client.Routes(t.Context())
	require.NoError(t, err)
	byName := map[string]admin.Route{}
	for _, r := range routes {
		byName[r.Name] = r
	}
	require.Contains(t, byName, "upcoming", "a draft route is listed")
	require.Equal(t, &admin.RouteLifecycle{State: "draft"}, byName["upcoming"].Lifecycle)
	require.Equal(t, &admin.RouteLifecycle{State: "deprecated", DeprecatedAt: "2026-06-01T00:00:00Z",
		Sunset: "2027-01-31T00:00:00Z", Link: "https://example.com/v2"}, byName["old"].Lifecycle)
	require.Equal(t, &admin.RouteLifecycle{State: "retired", Link: "https://example.com/v2"}, byName["gone"].Lifecycle)
	require.Equal(t, &admin.RouteLifecycle{State: "published", Link: "https://example.com/docs"}, byName["linked"].Lifecycle)
	require.Nil(t, byName["signup"].Lifecycle, "published with nothing announced: no lifecycle key")
}
