package steps_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/steps"
)

func compile(t *testing.T, st ...*config.Step) *steps.Route {
	t.Helper()
	u, err := url.Parse("http://127.0.0.1:1/")
	require.NoError(t, err)
	cfg := &config.Config{Targets: map[string]*config.Target{"api": {Name: "api", URL: u.String(), ParsedURL: u}}}
	r, err := steps.Compile(cfg, &config.Route{Name: "r", Mode: config.ModeSteps, Steps: st})
	require.NoError(t, err)
	return r
}

// TestSecretValues: a step's secrets are what its secret list names and
// what later steps' header templates read; they are masked in every form
// they are shown in, and the values are found at their pointers.
func TestSecretValues(t *testing.T) {
	t.Parallel()
	r := compile(t,
		&config.Step{Name: "auth", Target: "api", Secret: []string{"/keys/1", "/a~1b", "X-Session"}},
		&config.Step{Name: "data", Target: "api", After: []string{"auth"},
			Headers: map[string]string{"Authorization": "Bearer {{ .steps.auth.body.token }}"}},
	)
	require.True(t, r.HasSecrets())
	body := []byte(`{"token":"tok/en\"1234","keys":["public-key","secret-key-2",{"n":12345}],"a/b":"slash-key","ok":true,"id":"abc"}`)
	m := &steps.Mask{}
	r.Steps[0].AddSecrets(m, http.Header{"X-Session": {"sess-0001"}}, body)
	r.Steps[1].AddSecrets(m, nil, []byte(`{"token":"not-secret-here"}`)) // nothing reads data's response

	out := string(m.Bytes(body))
	require.JSONEq(t, `{"token":"[REDACTED]","keys":["public-key","[REDACTED]",{"n":12345}],"a/b":"[REDACTED]","ok":true,"id":"abc"}`, out,
		"the JSON-escaped form is masked too; /keys/1 is one element")
	require.Equal(t, "Bearer [REDACTED]; raw [REDACTED]", m.String(`Bearer tok%2Fen%221234; raw tok/en"1234`), "the percent-encoded and raw forms")
	require.Equal(t, "s=[REDACTED]", m.String("s=sess-0001"), "a secret header's value")
	require.Equal(t, "not-secret-here", m.String("not-secret-here"))

	h := http.Header{"Content-Type": {"application/json"}, "X-Echo": {"sess-0001"}}
	masked := m.Header(h)
	require.Equal(t, "application/json", masked.Get("Content-Type"))
	require.Equal(t, "[REDACTED]", masked.Get("X-Echo"))
	require.Equal(t, "sess-0001", h.Get("X-Echo"), "the header given is not changed")

	short := &steps.Mask{}
	short.Add("abc")
	require.True(t, short.Empty(), "values shorter than MinSecretLen are not masked")
}

// TestRenderConfiguredHeaders: the headers Fanout adds to a step call are
// not among the configured ones, which the record redacts.
func TestRenderConfiguredHeaders(t *testing.T) {
	t.Parallel()
	r := compile(t, &config.Step{Name: "auth", Target: "api", Body: `{"u":1}`, Headers: map[string]string{"X-Token": "t"}})
	call, err := r.Steps[0].Render(steps.Inbound{Method: http.MethodPost}, map[string]any{})
	require.NoError(t, err)
	require.Equal(t, "application/json", call.Target.Headers["Content-Type"])
	require.Equal(t, "auth", call.Target.Headers[steps.HeaderStep])
	require.Equal(t, []string{"X-Token"}, call.Configured)
}
