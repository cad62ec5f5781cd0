package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/config"
)

// privateEndpoints are requests to every /v1 endpoint.
var privateEndpoints = []struct{ method, path, body string }{
	{http.MethodGet, "/v1/routes", ""},
	{http.MethodGet, "/v1/targets", ""},
	{http.MethodGet, "/v1/messages", ""},
	{http.MethodGet, "/v1/messages/msg_x", ""},
	{http.MethodDelete, "/v1/messages/msg_x", ""},
	{http.MethodPost, "/v1/messages/msg_x/replay", ""},
	{http.MethodPost, "/v1/deliveries/replay", "{}"},
	{http.MethodPost, "/v1/routes/signup/backfill", `{"target":"crm","since":"1h"}`},
	{http.MethodGet, "/v1/nope", ""},
}

func TestAuth(t *testing.T) {
	t.Parallel()

	t.Run("missing or wrong token is 401", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, ep := range privateEndpoints {
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken, "Bearer"} {
				req, err := http.NewRequestWithContext(t.Context(), ep.method, b.srv.URL+ep.path, strings.NewReader(ep.body))
				require.NoError(t, err)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				res, err := b.httpClient().Do(req)
				require.NoError(t, err)
				var e errorBody
				require.NoError(t, json.NewDecoder(res.Body).Decode(&e))
				require.NoError(t, res.Body.Close())
				require.Equalf(t, http.StatusUnauthorized, res.StatusCode, "%s %s with %q", ep.method, ep.path, auth)
				require.Equal(t, "unauthorized", e.Error.Code)
				require.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
			}
		}
	})

	t.Run("the right token passes, scheme case-insensitive", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, scheme := range []string{"Bearer ", "bearer ", "BEARER "} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+"/v1/routes", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", scheme+testToken)
			res, err := b.httpClient().Do(req)
			require.NoError(t, err)
			require.NoError(t, res.Body.Close())
			require.Equal(t, http.StatusOK, res.StatusCode)
		}
	})

	t.Run("no configured token locks every /v1 endpoint", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{token: ""})
		for _, ep := range privateEndpoints {
			for _, tok := range []string{"", " ", testToken} {
				res, body := b.do(ep.method, ep.path, tok, ep.body)
				b.requireError(res, body, http.StatusUnauthorized, "unauthorized")
			}
		}
		// Public endpoints still answer.
		res, _ := b.do(http.MethodGet, "/healthz", "", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
	})

	t.Run("client gets an apierror", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := admin.NewClient(b.srv.URL, "wrong", b.httpClient())
		_, err := c.Routes(t.Context())
		var e *apierror.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Equal(t, "unauthorized", e.Code)
	})
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res, body := b.do(http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, string(body))

	res, body = b.do(http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"status":"ready"}`, string(body))

	b.ready.Store(false)
	res, body = b.do(http.MethodGet, "/readyz", "", "")
	b.requireError(res, body, http.StatusServiceUnavailable, "not_ready")
	res, _ = b.do(http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "liveness does not follow readiness")

	res, body = b.do(http.MethodPost, "/healthz", "", "")
	b.requireError(res, body, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestMetricsAndPprof(t *testing.T) {
	t.Parallel()

	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res, body := b.do(http.MethodGet, "/metrics", "", "")
		b.requireError(res, body, http.StatusNotFound, "not_found")
		res, body = b.do(http.MethodGet, "/debug/pprof/", testToken, "")
		b.requireError(res, body, http.StatusNotFound, "not_found")
		res, body = b.do(http.MethodGet, "/debug/pprof/", "", "")
		b.requireError(res, body, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte("fanout_up 1\n"))
		})
		b := setup(t, setupOpts{token: testToken, pprof: true, metrics: metrics})

		res, body := b.do(http.MethodGet, "/metrics", "", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "fanout_up 1\n", string(body))

		res, body = b.do(http.MethodGet, "/debug/pprof/", "", "")
		b.requireError(res, body, http.StatusUnauthorized, "unauthorized")
		res, body = b.do(http.MethodGet, "/debug/pprof/goroutine?debug=1", "", "")
		b.requireError(res, body, http.StatusUnauthorized, "unauthorized")

		res, body = b.do(http.MethodGet, "/debug/pprof/", testToken, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, string(body), "goroutine")
		res, body = b.do(http.MethodGet, "/debug/pprof/goroutine?debug=1", testToken, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, string(body), "goroutine profile")
		res, _ = b.do(http.MethodGet, "/debug/pprof/cmdline", testToken, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
	})
}

func TestUnknownPathAndMethod(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res, body := b.do(http.MethodGet, "/nope", "", "")
	b.requireError(res, body, http.StatusNotFound, "not_found")
	res, body = b.do(http.MethodGet, "/v1/nope", testToken, "")
	b.requireError(res, body, http.StatusNotFound, "not_found")
	res, body = b.do(http.MethodGet, "/v1/messages/", testToken, "")
	b.requireError(res, body, http.StatusNotFound, "not_found")

	res, body = b.do(http.MethodPut, "/v1/messages/msg_x", testToken, "")
	e := b.requireError(res, body, http.StatusMethodNotAllowed, "method_not_allowed")
	require.Equal(t, "GET, HEAD, DELETE", res.Header.Get("Allow"))
	require.Equal(t, []any{"GET", "HEAD", "DELETE"}, e.Error.Details["allow"])

	res, body = b.do(http.MethodGet, "/v1/messages/msg_x/replay", testToken, "")
	b.requireError(res, body, http.StatusMethodNotAllowed, "method_not_allowed")
	require.Equal(t, "POST", res.Header.Get("Allow"))

	res, body = b.do(http.MethodPost, "/v1/messages", testToken, "")
	b.requireError(res, body, http.StatusMethodNotAllowed, "method_not_allowed")

	// A wrong method on a private path needs the token first.
	res, body = b.do(http.MethodPut, "/v1/messages/msg_x", "", "")
	b.requireError(res, body, http.StatusUnauthorized, "unauthorized")
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.Routes[2].Targets = []config.RouteTarget{{Name: "crm", Body: `{"secret": "` + secretConfigured + `", "c": {{ json .request.body }}}`}}
	cfg.Routes = append(cfg.Routes,
		&config.Route{
			Name:    "onboard",
			Match:   config.Match{Method: http.MethodPost, Path: "/onboard/{id}"},
			Mode:    config.ModeSteps,
			Respond: "track",
			Steps: []*config.Step{
				{Name: "lookup", Target: "crm", Method: http.MethodGet, Path: "/users/{{ .request.path_params.id }}",
					Headers: map[string]string{"X-Trace": "t", "Authorization": "Bearer " + secretConfigured}},
				{Name: "track", Target: "analytics", After: []string{"lookup"}, Body: `{"k": "` + secretConfigured + `"}`},
			},
		},
		&config.Route{
			Name:      "ingest",
			Match:     config.Match{Method: http.MethodPost, Path: "/ingest"},
			Mode:      config.ModeAsync,
			Targets:   []config.RouteTarget{{Name: "analytics"}},
			Auth:      config.AuthAPIKey,
			Tenants:   []string{"acme", "globex"},
			RateLimit: &config.RateLimit{RPS: 2.5, Burst: 5},
			Schema:    "schemas/ingest.json",
		},
	)
	b.cfg.Store(cfg)

	routes, err := b.client.Routes(t.Context())
	require.NoError(t, err)
	require.Len(t, routes, 5)
	require.Equal(t, admin.Route{
		Name:     "signup",
		Mode:     "async",
		Match:    admin.RouteMatch{Method: "POST", Path: "/send-info"},
		Targets:  []admin.RouteTarget{{Name: "crm"}, {Name: "analytics"}},
		Deadline: "30s",
		MaxBody:  1 << 20,
	}, routes[0])
	require.Equal(t, admin.Route{
		Name:        "profile",
		Mode:        "all",
		Match:       admin.RouteMatch{Method: "POST", Path: "/users/{id}/profile", Host: "api.example.com"},
		Targets:     []admin.RouteTarget{{Name: "crm"}, {Name: "analytics", Optional: true}},
		Deadline:    "3s",
		FailFast:    true,
		ContentType: "json",
		MaxBody:     256 << 10,
	}, routes[1])
	require.Equal(t, "grow", routes[2].Name)
	require.Equal(t, []admin.RouteTarget{{Name: "crm", BodyTemplate: true}}, routes[2].Targets)
	require.Equal(t, admin.Route{
		Name:    "onboard",
		Mode:    "steps",
		Match:   admin.RouteMatch{Method: "POST", Path: "/onboard/{id}"},
		Targets: []admin.RouteTarget{},
		Steps: []admin.RouteStep{
			{Name: "lookup", Target: "crm", Method: "GET", Path: "/users/{{ .request.path_params.id }}", Headers: []string{"Authorization", "X-Trace"}},
			{Name: "track", Target: "analytics", After: []string{"lookup"}, BodyTemplate: true},
		},
		Respond: "track",
	}, routes[3])
	require.Equal(t, admin.Route{
		Name:      "ingest",
		Mode:      "async",
		Match:     admin.RouteMatch{Method: "POST", Path: "/ingest"},
		Targets:   []admin.RouteTarget{{Name: "analytics"}},
		Auth:      "api_key",
		Tenants:   []string{"acme", "globex"},
		RateLimit: &admin.RouteRateLimit{RPS: 2.5, Burst: 5},
		Schema:    "schemas/ingest.json",
	}, routes[4])
	res, body := b.do(http.MethodGet, "/v1/routes", testToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, string(body), secretConfigured, "no header value or body template is shown")
	require.Contains(t, string(body), `"body_template":true`)

	// The current config is shown after a reload.
	cfg = testConfig()
	cfg.Routes = cfg.Routes[:1]
	b.cfg.Store(cfg)
	routes, err = b.client.Routes(t.Context())
	require.NoError(t, err)
	require.Len(t, routes, 1)

	res, body = b.do(http.MethodGet, "/v1/routes?x=1", testToken, "")
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
}

func TestTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)

	targets, err := b.client.Targets(t.Context())
	require.NoError(t, err)
	names := make([]string, 0, len(targets))
	for _, tg := range targets {
		names = append(names, tg.Name)
	}
	require.Equal(t, []string{"analytics", "crm", "late"}, names, "sorted by name")
	require.Equal(t, admin.Target{
		Name:    "analytics",
		URL:     "http://127.0.0.1:18082/events",
		Method:  "PUT",
		Timeout: "2s",
		Retry:   admin.Retry{},
		// No headers configured.
		MaxInFlight: 8,
		// Its one server, as configured (no live state given).
		Balance: "round_robin",
		Servers: []admin.TargetServer{{URL: "http://127.0.0.1:18082/events", Weight: 1, Up: true, Healthy: true}},
	}, targets[0])
	crm := targets[1]
	require.Equal(t, "https://svc:xxxxx@crm.example.com/api/contacts", crm.URL)
	require.Equal(t, map[string]string{"X-Crm-Key": admin.RedactedValue}, crm.Headers)
	require.Equal(t, admin.Retry{Initial: "1s", Max: "10m", MaxAttempts: 10, MaxAge: "24h", SyncMaxAttempts: 3, RetryStatus: []int{429, 503}}, crm.Retry)
	require.Equal(t, []string{"X-Signature"}, crm.Redact)
	require.Equal(t, "https://svc:xxxxx@crm.example.com/api/contacts", crm.Servers[0].URL, "a server's password is redacted too")

	res, body := b.do(http.MethodGet, "/v1/targets", testToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, string(body), secretConfigured)
	require.NotContains(t, string(body), secretURLPass)
}

func TestListMessagesFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)

	old := b.accept("signup", "acme", 3*time.Hour, []string{"crm", "analytics"})
	mid := b.accept("signup", "globex", 90*time.Minute, []string{"crm", "analytics"})
	recent := b.accept("profile", "acme", 10*time.Minute, []string{"crm"}, func(m *fanout.Message) {
		m.IdempotencyKey = "key-1"
		m.Path = "/users/7/profile"
	})
	b.kill(mid, "analytics")

	list := func(p admin.ListParams) []string {
		t.Helper()
		res, err := b.client.ListMessages(t.Context(), p)
		require.NoError(t, err)
		require.Empty(t, res.NextCursor)
		ids := []string{}
		for _, m := range res.Messages {
			ids = append(ids, m.ID)
		}
		return ids
	}

	require.Equal(t, []string{recent, mid, old}, list(admin.ListParams{}), "newest first")
	require.Equal(t, []string{mid, old}, list(admin.ListParams{Route: "signup"}))
	require.Equal(t, []string{recent, old}, list(admin.ListParams{Tenant: "acme"}))
	require.Equal(t, []string{mid, old}, list(admin.ListParams{Target: "analytics"}))
	require.Equal(t, []string{mid}, list(admin.ListParams{State: "dead"}))
	require.Equal(t, []string{mid}, list(admin.ListParams{Target: "analytics", State: "dead"}))
	require.Empty(t, list(admin.ListParams{Target: "crm", State: "dead"}))
	require.Equal(t, []string{recent, mid, old}, list(admin.ListParams{State: "pending"}))
	require.Equal(t, []string{recent, mid}, list(admin.ListParams{Since: "2h"}))
	require.Equal(t, []string{old}, list(admin.ListParams{Until: "2h"}))
	require.Equal(t, []string{mid}, list(admin.ListParams{Since: "2h", Until: "30m"}))
	require.Equal(t, []string{mid}, list(admin.ListParams{
		Since: b.now.Add(-2 * time.Hour).Format(time.RFC3339),
		Until: b.now.Add(-30 * time.Minute).Format(time.RFC3339Nano),
	}))
	require.Equal(t, []string{recent, mid, old}, list(admin.ListParams{Since: "1d"}))

	// The listed fields.
	res, err := b.client.ListMessages(t.Context(), admin.ListParams{Route: "profile"})
	require.NoError(t, err)
	require.Len(t, res.Messages, 1)
	m := res.Messages[0]
	require.Equal(t, recent, m.ID)
	require.Equal(t, "profile", m.Route)
	require.Equal(t, "acme", m.Tenant)
	require.Equal(t, "POST", m.Method)
	require.Equal(t, "/users/7/profile", m.Path)
	require.Equal(t, "key-1", m.IdempotencyKey)
	require.True(t, m.ReceivedAt.Equal(b.now.Add(-10*time.Minute)), "received_at %s", m.ReceivedAt)
	require.Len(t, m.Deliveries, 1)
	require.Equal(t, "crm", m.Deliveries[0].Target)
	require.Equal(t, "pending", m.Deliveries[0].State)
	require.NotNil(t, m.Deliveries[0].NextAttemptAt)

	res, err = b.client.ListMessages(t.Context(), admin.ListParams{State: "dead"})
	require.NoError(t, err)
	for _, d := range res.Messages[0].Deliveries {
		if d.Target == "analytics" {
			require.Equal(t, "dead", d.State)
			require.Equal(t, 1, d.Attempts)
			require.Equal(t, 500, d.LastStatus)
			require.Equal(t, "status", d.LastClass)
			require.Equal(t, "status 500", d.LastError)
			require.Nil(t, d.NextAttemptAt)
		}
	}

	// No body in the list.
	_, body := b.do(http.MethodGet, "/v1/messages", testToken, "")
	require.NotContains(t, string(body), "a@example.com")
	require.NotContains(t, string(body), `"body"`)
}

func TestListMessagesPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var want []string
	for i := range 7 {
		want = append(want, b.accept("signup", "", time.Duration(i)*time.Minute, []string{"crm"}))
	}
	var got []string
	cursor, pages := "", 0
	for {
		res, err := b.client.ListMessages(t.Context(), admin.ListParams{Route: "signup", Limit: 3, Cursor: cursor})
		require.NoError(t, err)
		require.LessOrEqual(t, len(res.Messages), 3)
		for _, m := range res.Messages {
			got = append(got, m.ID)
		}
		pages++
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
		require.Less(t, pages, 10)
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, got, "every message once, newest first")
}

func TestListMessagesBadParams(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for query, param := range map[string]string{
		"state=deadd":                "state",
		"since=yesterday":            "since",
		"since=-1h":                  "since",
		"until=2026-13-01T00:00:00Z": "until",
		"since=1h&until=2h":          "until",
		"limit=0":                    "limit",
		"limit=1001":                 "limit",
		"limit=ten":                  "limit",
		"cursor=not-a-cursor":        "cursor",
		"stat=dead":                  "stat",
		"route=a&route=b":            "route",
	} {
		res, body := b.do(http.MethodGet, "/v1/messages?"+query, testToken, "")
		e := b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
		require.Equalf(t, param, e.Error.Details["param"], "%s: %s", query, body)
		require.Containsf(t, e.Error.Message, param, "%s", query)
	}

	_, err := b.client.ListMessages(t.Context(), admin.ListParams{State: "bogus"})
	var e *apierror.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusBadRequest, e.Status)
	require.Equal(t, "invalid_parameter", e.Code)
	require.Equal(t, "state", e.Details["param"])
}

func TestGetMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.accept("signup", "acme", time.Minute, []string{"crm", "analytics"}, func(m *fanout.Message) {
		m.Header = http.Header{
			"Content-Type": {"application/json"},
			"X-Request-Id": {"req-1"},
		}
		m.Body = []byte(`{"email":"a@example.com","n":[1,2]}`)
		m.IdempotencyKey = "k1"
	})
	b.complete(id, "crm", fanout.StateRetrying, fanout.Attempt{
		RequestMethod:  http.MethodPost,
		RequestURL:     "https://crm.example.com/api/contacts",
		RequestHeader:  http.Header{"Fanout-Message-Id": {id}, "Content-Type": {"application/json"}},
		Duration:       1500 * time.Microsecond,
		Status:         http.StatusServiceUnavailable,
		ResponseHeader: http.Header{"Retry-After": {"1"}},
		ResponseBody:   []byte("try later"),
		Class:          fanout.ClassStatus,
		Error:          "status 503",
	})
	b.complete(id, "analytics", fanout.StateSucceeded, fanout.Attempt{
		RequestMethod: http.MethodPut,
		RequestURL:    "http://127.0.0.1:18082/events",
		Duration:      2 * time.Millisecond,
		Status:        http.StatusOK,
		ResponseBody:  []byte{0xff, 0xfe, 0x00},
	})

	m, err := b.client.GetMessage(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, id, m.ID)
	require.Equal(t, "signup", m.Route)
	require.Equal(t, "k1", m.IdempotencyKey)
	require.Equal(t, "req-1", m.Headers.Get("X-Request-Id"))
	require.Equal(t, admin.EncodingJSON, m.BodyEncoding)
	require.JSONEq(t, `{"email":"a@example.com","n":[1,2]}`, string(m.Body))
	require.Len(t, m.Deliveries, 2)
	states := map[string]string{}
	for _, d := range m.Deliveries {
		states[d.Target] = d.State
	}
	require.Equal(t, map[string]string{"crm": "retrying", "analytics": "succeeded"}, states)

	require.Len(t, m.Attempts, 2)
	byTarget := map[string]admin.Attempt{}
	for _, a := range m.Attempts {
		byTarget[a.Target] = a
	}
	a := byTarget["crm"]
	require.Equal(t, 1, a.Number)
	require.InDelta(t, 1.5, a.DurationMS, 0.001)
	require.Equal(t, "POST", a.RequestMethod)
	require.Equal(t, "https://crm.example.com/api/contacts", a.RequestURL)
	require.Equal(t, id, a.RequestHeaders.Get("Fanout-Message-Id"))
	require.Equal(t, 503, a.Status)
	require.Equal(t, "1", a.ResponseHeaders.Get("Retry-After"))
	require.Equal(t, "try later", a.ResponseBody)
	require.Equal(t, admin.EncodingText, a.ResponseBodyEncoding)
	require.Equal(t, "status", a.Class)
	require.Equal(t, "status 503", a.Error)
	a = byTarget["analytics"]
	require.Equal(t, 200, a.Status)
	require.Empty(t, a.Class)
	require.Equal(t, admin.EncodingBase64, a.ResponseBodyEncoding)
	require.Equal(t, base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0x00}), a.ResponseBody)

	// The JSON body is embedded as JSON in the raw answer.
	_, raw := b.do(http.MethodGet, "/v1/messages/"+id, testToken, "")
	require.Contains(t, string(raw), `"body":{"email":"a@example.com","n":[1,2]}`)
}

func TestGetMessageBodies(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		want     string // the body as JSON
	}{
		{"json", []byte(` [1, "two"] `), admin.EncodingJSON, `[1,"two"]`},
		{"text", []byte("name=ana&x=é"), admin.EncodingText, `"name=ana\u0026x=é"`},
		{"binary", []byte{0x00, 0x9f, 0x92, 0x96}, admin.EncodingBase64, `"AJ+Slg=="`},
		{"empty", nil, "", ``},
	} {
		id := b.accept("signup", "", time.Minute, []string{"crm"}, func(m *fanout.Message) { m.Body = tc.body })
		m, err := b.client.GetMessage(t.Context(), id)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.encoding, m.BodyEncoding, tc.name)
		if tc.want == "" {
			require.Empty(t, m.Body, tc.name)
			continue
		}
		require.JSONEq(t, tc.want, string(m.Body), tc.name)
	}
}

func TestGetMessageNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res, body := b.do(http.MethodGet, "/v1/messages/msg_nope", testToken, "")
	e := b.requireError(res, body, http.StatusNotFound, "message_not_found")
	require.Equal(t, "msg_nope", e.Error.Details["id"])

	_, err := b.client.GetMessage(t.Context(), "msg_nope")
	require.True(t, admin.IsNotFound(err))
	var ae *apierror.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "message_not_found", ae.Code)
	require.Contains(t, err.Error(), "msg_nope")

	res, body = b.do(http.MethodGet, "/v1/messages/msg_nope?x=1", testToken, "")
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
}

func TestReplayMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.accept("signup", "", time.Hour, []string{"crm", "analytics"})
	b.kill(id, "crm")
	b.kill(id, "analytics")
	require.Equal(t, map[string]string{"crm": "dead", "analytics": "dead"}, b.states(id))

	n, err := b.client.ReplayMessage(t.Context(), id, "crm")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, map[string]string{"crm": "pending", "analytics": "dead"}, b.states(id))
	require.Equal(t, []string{"crm"}, b.takeNotified())

	n, err = b.client.ReplayMessage(t.Context(), id, "")
	require.NoError(t, err)
	require.Equal(t, 2, n, "every delivery that is not being delivered, whatever its state")
	require.Equal(t, map[string]string{"crm": "pending", "analytics": "pending"}, b.states(id))
	notified := b.takeNotified()
	slices.Sort(notified)
	require.Equal(t, []string{"analytics", "crm"}, notified)

	m, err := b.client.GetMessage(t.Context(), id)
	require.NoError(t, err)
	for _, d := range m.Deliveries {
		require.NotNil(t, d.NextAttemptAt, "a replayed delivery is due")
	}

	res, body := b.do(http.MethodPost, "/v1/messages/msg_nope/replay", testToken, "")
	b.requireError(res, body, http.StatusNotFound, "message_not_found")
	_, err = b.client.ReplayMessage(t.Context(), "msg_nope", "")
	require.True(t, admin.IsNotFound(err))

	res, body = b.do(http.MethodPost, "/v1/messages/"+id+"/replay?target=late", testToken, "")
	e := b.requireError(res, body, http.StatusNotFound, "delivery_not_found")
	require.Equal(t, "late", e.Error.Details["target"])

	res, body = b.do(http.MethodPost, "/v1/messages/"+id+"/replay?targett=crm", testToken, "")
	b.requireError(res, body, http.StatusBadRequest, "invalid_parameter")
	require.Empty(t, b.takeNotified())
}

func TestReplayDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var ids []string
	for i := range 3 {
		id := b.accept("signup", "", time.Duration(i+1)*time.Hour, []string{"crm", "analytics"})
		b.kill(id, "crm")
		b.kill(id, "analytics")
		ids = append(ids, id)
	}
	other := b.accept("grow", "", time.Hour, []string{"crm"})
	b.kill(other, "crm")

	// By target and route: only those.
	n, err := b.client.ReplayDeliveries(t.Context(), admin.ReplayFilter{Route: "signup", Target: "crm"})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	for _, id := range ids {
		require.Equal(t, map[string]string{"crm": "pending", "analytics": "dead"}, b.states(id))
	}
	require.Equal(t, map[string]string{"crm": "dead"}, b.states(other))
	require.Equal(t, []string{"crm"}, b.takeNotified())

	// By time: since is inclusive, until exclusive.
	n, err = b.client.ReplayDeliveries(t.Context(), admin.ReplayFilter{Target: "analytics", Since: "150m", Until: "30m"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, "dead", b.states(ids[2])["analytics"])
	require.Equal(t, []string{"analytics"}, b.takeNotified())

	// Nothing left to match: no notification.
	n, err = b.client.ReplayDeliveries(t.Context(), admin.ReplayFilter{Target: "analytics", Since: "150m"})
	require.NoError(t, err)
	require.Equal(t, 0, n)
	require.Empty(t, b.takeNotified())

	// By route: the route's targets are woken.
	n, err = b.client.ReplayDeliveries(t.Context(), admin.ReplayFilter{Route: "grow"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"crm"}, b.takeNotified())

	// An empty body replays every dead delivery and wakes every target.
	res, body := b.do(http.MethodPost, "/v1/deliveries/replay", testToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"replayed":1}`, string(body))
	require.Equal(t, []string{"analytics", "crm", "late"}, b.takeNotified())

	// Another state than dead.
	n, err = b.client.ReplayDeliveries(t.Context(), admin.ReplayFilter{State: "pending", Route: "grow"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	b.takeNotified()

	for _, tc := range []struct {
		body, code, param string
		status            int
	}{
		{`{"state":"deadd"}`, "invalid_parameter", "state", 400},
		{`{"state":"delivering"}`, "invalid_parameter", "state", 400},
		{`{"since":"last week"}`, "invalid_parameter", "since", 400},
		{`{"since":"1h","until":"2h"}`, "invalid_parameter", "until", 400},
		{`{"targt":"crm"}`, "invalid_parameter", "targt", 400},
		{`{"target":7}`, "invalid_parameter", "target", 400},
		{`{"target":`, "invalid_body", "", 400},
		{`{} {}`, "invalid_body", "", 400},
		{`[]`, "invalid_body", "", 400},
		{`{"target":"nope"}`, "target_not_found", "", 404},
		{`{"route":"signup","x":"` + strings.Repeat("a", 70<<10) + `"}`, "payload_too_large", "", 413},
	} {
		res, body := b.do(http.MethodPost, "/v1/deliveries/replay", testToken, tc.body)
		e := b.requireError(res, body, tc.status, tc.code)
		if tc.param != "" {
			require.Equalf(t, tc.param, e.Error.Details["param"], "%s", tc.body)
		}
	}
	require.Empty(t, b.takeNotified())
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Messages of grow, which goes to crm only.
	var ids []string
	for i := range 4 {
		ids = append(ids, b.accept("grow", "", time.Duration(i+1)*time.Hour, []string{"crm"}))
	}
	b.accept("signup", "", time.Hour, []string{"crm", "analytics"})

	// analytics is added to grow by a config reload.
	cfg := testConfig()
	cfg.Route("grow").Targets = append(cfg.Route("grow").Targets, config.RouteTarget{Name: "analytics"})
	b.cfg.Store(cfg)

	n, err := b.client.Backfill(t.Context(), "grow", admin.BackfillRequest{Target: "analytics", Since: "150m"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"analytics"}, b.takeNotified())
	require.Equal(t, map[string]string{"crm": "pending", "analytics": "pending"}, b.states(ids[0]))
	require.Equal(t, map[string]string{"crm": "pending", "analytics": "pending"}, b.states(ids[1]))
	require.Equal(t, map[string]string{"crm": "pending"}, b.states(ids[2]))

	// Again over a longer range: only the messages without a delivery.
	n, err = b.client.Backfill(t.Context(), "grow", admin.BackfillRequest{
		Target: "analytics",
		Since:  b.now.Add(-5 * time.Hour).Format(time.RFC3339),
		Until:  b.now.Format(time.RFC3339Nano),
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, map[string]string{"crm": "pending", "analytics": "pending"}, b.states(ids[3]))
	b.takeNotified()

	n, err = b.client.Backfill(t.Context(), "grow", admin.BackfillRequest{Target: "analytics", Since: "1d"})
	require.NoError(t, err)
	require.Equal(t, 0, n)
	require.Empty(t, b.takeNotified())

	list, err := b.client.ListMessages(t.Context(), admin.ListParams{Route: "grow", Target: "analytics"})
	require.NoError(t, err)
	require.Len(t, list.Messages, 4)

	for _, tc := range []struct {
		route, body, code, param string
		status                   int
	}{
		{"nope", `{"target":"analytics","since":"1h"}`, "route_not_found", "", 404},
		{"profile", `{"target":"crm","since":"1h"}`, "route_not_async", "", 400},
		{"grow", `{"since":"1h"}`, "invalid_parameter", "target", 400},
		{"grow", `{"target":"nope","since":"1h"}`, "target_not_found", "", 404},
		{"grow", `{"target":"late","since":"1h"}`, "target_not_in_route", "", 400},
		{"grow", `{"target":"analytics"}`, "invalid_parameter", "since", 400},
		{"grow", `{"target":"analytics","since":"soon"}`, "invalid_parameter", "since", 400},
		{"grow", `{"target":"analytics","since":"1h","until":"2h"}`, "invalid_parameter", "until", 400},
		{"grow", `{"target":"analytics","since":"1h","extra":1}`, "invalid_parameter", "extra", 400},
		{"grow", ``, "invalid_parameter", "target", 400},
		{"grow", `nope`, "invalid_body", "", 400},
	} {
		res, body := b.do(http.MethodPost, "/v1/routes/"+tc.route+"/backfill", testToken, tc.body)
		e := b.requireError(res, body, tc.status, tc.code)
		if tc.param != "" {
			require.Equalf(t, tc.param, e.Error.Details["param"], "%s", tc.body)
		}
	}
	require.Empty(t, b.takeNotified())

	_, err = b.client.Backfill(t.Context(), "nope", admin.BackfillRequest{Target: "crm", Since: "1h"})
	var ae *apierror.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "route_not_found", ae.Code)
}

func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.accept("signup", "", time.Minute, []string{"crm", "analytics"})
	keep := b.accept("signup", "", time.Minute, []string{"crm"})
	b.kill(id, "crm")

	res, body := b.do(http.MethodDelete, "/v1/messages/"+id, testToken, "")
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Empty(t, body)

	res, body = b.do(http.MethodGet, "/v1/messages/"+id, testToken, "")
	b.requireError(res, body, http.StatusNotFound, "message_not_found")
	res, body = b.do(http.MethodDelete, "/v1/messages/"+id, testToken, "")
	b.requireError(res, body, http.StatusNotFound, "message_not_found")

	require.NoError(t, b.client.DeleteMessage(t.Context(), keep))
	err := b.client.DeleteMessage(t.Context(), keep)
	require.True(t, admin.IsNotFound(err))

	list, err := b.client.ListMessages(t.Context(), admin.ListParams{})
	require.NoError(t, err)
	require.Empty(t, list.Messages)
}

// TestRedaction crawls every endpoint after storing secrets in a message,
// its attempts and the config, and checks the raw answers.
func TestRedaction(t *testing.T) {
	t.Parallel()
	b := setup(t)

	id := b.accept("signup", "", time.Minute, []string{"crm", "analytics"}, func(m *fanout.Message) {
		m.Header = http.Header{
			"Authorization": {secretAuth},
			"X-Api-Key":     {secretAPIKey},
			"x-signature":   {secretSignature}, // not canonical: still redacted
			"Cookie":        {secretCookie},
			"X-Request-Id":  {"visible"},
		}
	})
	// An attempt whose stored headers were not redacted (an older
	// version, a changed redact list): the API redacts again.
	b.complete(id, "crm", fanout.StateDead, fanout.Attempt{
		RequestMethod: http.MethodPost,
		RequestURL:    "https://svc:" + secretURLPass + "@crm.example.com/api/contacts",
		RequestHeader: http.Header{
			"Authorization": {secretAuth},
			"X-Crm-Key":     {secretConfigured},
			"X-Signature":   {secretSignature},
		},
		Status:         http.StatusForbidden,
		ResponseHeader: http.Header{"Set-Cookie": {secretSetCookie}},
		Class:          fanout.ClassStatus,
		Error:          "status 403",
	})

	m, err := b.client.GetMessage(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, []string{admin.RedactedValue}, m.Headers["Authorization"])
	require.Equal(t, []string{admin.RedactedValue}, m.Headers["X-Api-Key"])
	//lint:ignore SA1008 a header the message kept under the name it arrived with (lower case)
	require.Equal(t, []string{admin.RedactedValue}, m.Headers["x-signature"])
	require.Equal(t, []string{admin.RedactedValue}, m.Headers["Cookie"])
	require.Equal(t, "visible", m.Headers.Get("X-Request-Id"))
	require.Len(t, m.Attempts, 1)
	require.Equal(t, admin.RedactedValue, m.Attempts[0].RequestHeaders.Get("X-Crm-Key"))
	require.Equal(t, admin.RedactedValue, m.Attempts[0].ResponseHeaders.Get("Set-Cookie"))
	require.NotContains(t, m.Attempts[0].RequestURL, secretURLPass)

	_, err = b.client.Routes(t.Context())
	require.NoError(t, err)
	_, err = b.client.Targets(t.Context())
	require.NoError(t, err)
	_, err = b.client.ListMessages(t.Context(), admin.ListParams{})
	require.NoError(t, err)
	_, err = b.client.ReplayMessage(t.Context(), id, "")
	require.NoError(t, err)
	for _, ep := range privateEndpoints {
		b.do(ep.method, strings.ReplaceAll(ep.path, "msg_x", id), testToken, ep.body)
	}

	raw := b.rawAnswers()
	require.Contains(t, raw, id, "the crawl saw the message")
	for _, s := range allSecrets {
		require.NotContains(t, raw, s)
	}
}

func TestClientNonJSONError(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)

	c := admin.NewClient(proxy.URL+"/", testToken, proxy.Client())
	_, err := c.ListMessages(t.Context(), admin.ListParams{})
	var e *apierror.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusBadGateway, e.Status)
	require.Equal(t, "http_502", e.Code)
	require.Contains(t, e.Message, "bad gateway")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.ListMessages(ctx, admin.ListParams{})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.As(err, &e))
}
