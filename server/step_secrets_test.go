package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// TestStepSecretsNeverLeak runs a steps route, sync and async, whose auth
// step fetches a token that the data step sends as Authorization, and
// whose data target echoes what it got. The data target must receive the
// real token; no admin API answer, stored attempt, sync answer or log line
// may show it, nor the values the auth step's secret list names; the
// headers Fanout adds to a step call (Content-Type, Fanout-Step) are shown
// as they are (docs/security.md, "Step responses").
func TestStepSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"access token (read by a header template)": "step-access-token-4711",
		"refresh token (secret: /refresh_token)":   "step-refresh-token-0815",
		"session header (secret: X-Session)":       "step-session-header-2342",
		"admin token":                              "admin-token-step-secrets",
	}
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Session", secrets["session header (secret: X-Session)"])
		_, _ = io.WriteString(w, `{"access_token":"`+secrets["access token (read by a header template)"]+
			`","refresh_token":"`+secrets["refresh token (secret: /refresh_token)"]+`","expires_in":3600}`)
	}))
	t.Cleanup(authSrv.Close)
	var mu sync.Mutex
	var got []string // the Authorization headers the data target received
	dataSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]string{"you_sent": r.Header.Get("Authorization"), "session": r.Header.Get("X-Upstream-Session")})
		_, _ = w.Write(b)
	}))
	t.Cleanup(dataSrv.Close)

	dir := t.TempDir()
	steps := `
    steps:
      - {name: auth, target: authapi, body: '{"user": {{ json .request.body.user }}}', secret: [/refresh_token, X-Session]}
      - {name: data, target: userdata, after: [auth], headers: {Authorization: "Bearer {{ .steps.auth.body.access_token }}", X-Upstream-Session: "{{ index .steps.auth.headers \"X-Session\" }}"}}`
	yaml := `listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0", token: "` + secrets["admin token"] + `"}
store: {driver: sqlite, dsn: "` + filepath.Join(dir, "fanout.db") + `"}
targets:
  authapi: {url: "` + authSrv.URL + `/token"}
  userdata: {url: "` + dataSrv.URL + `/users"}
routes:
  - name: signup
    match: {path: /signup}
    mode: steps` + steps + `
  - name: signup-async
    match: {path: /signup-async}
    mode: steps
    async: true` + steps + `
`
	cfg, err := config.Parse("fanout.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)

	ctx := context.Background()
	srv, st, logs := startLogged(t, cfg)
	call := jsonCaller(t)
	data := "http://" + srv.DataAddr()
	admin := "http://" + srv.AdminAddr()
	adminGet := func(path string) []byte {
		t.Helper()
		status, body := call("GET", admin+path, "", map[string]string{"Authorization": "Bearer " + secrets["admin token"]})
		require.Equal(t, 200, status, "%s: %s", path, body)
		return body
	}

	var seen []string
	status, syncBody := call("POST", data+"/signup", `{"user":"ada"}`, nil)
	require.Equal(t, 200, status, "%s", syncBody)
	seen = append(seen, string(syncBody)) // the envelope shows both steps' responses
	status, body := call("POST", data+"/signup-async", `{"user":"ada"}`, nil)
	require.Equal(t, 202, status, "%s", body)
	var accepted struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &accepted))

	deadline := time.Now().Add(15 * time.Second)
	for {
		var md struct {
			Deliveries []struct{ State string } `json:"deliveries"`
		}
		require.NoError(t, json.Unmarshal(adminGet("/v1/messages/"+accepted.ID), &md))
		done := len(md.Deliveries) == 2
		for _, d := range md.Deliveries {
			done = done && d.State == string(fanout.StateSucceeded)
		}
		if done {
			break
		}
		require.False(t, time.Now().After(deadline), "the steps of %s did not succeed: %+v", accepted.ID, md)
		<-time.After(20 * time.Millisecond) // a poll interval, not a synchronisation
	}

	// The later step got the real values.
	mu.Lock()
	require.Equal(t, []string{"Bearer " + secrets["access token (read by a header template)"], "Bearer " + secrets["access token (read by a header template)"]}, got)
	mu.Unlock()

	// Every admin answer.
	detail := adminGet("/v1/messages/" + accepted.ID)
	for _, p := range []string{"/v1/messages", "/v1/messages?route=signup-async", "/v1/routes", "/v1/targets", "/v1/stats"} {
		seen = append(seen, string(adminGet(p)))
	}
	seen = append(seen, string(detail))
	md, err := st.GetMessage(ctx, accepted.ID)
	require.NoError(t, err)
	require.Len(t, md.Attempts, 2)
	for _, a := range md.Attempts {
		b, err := json.Marshal(a)
		require.NoError(t, err)
		seen = append(seen, string(b))
	}
	seen = append(seen, logs.String())
	all := strings.Join(seen, "\n")
	for what, secret := range secrets {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("%s leaked: …%s…", what, all[max(0, i-200):min(len(all), i+len(secret)+50)])
		}
	}

	// What is no secret is shown as it is.
	var view struct {
		Attempts []struct {
			Target          string      `json:"target"`
			RequestHeaders  http.Header `json:"request_headers"`
			ResponseHeaders http.Header `json:"response_headers"`
			ResponseBody    string      `json:"response_body"`
		} `json:"attempts"`
	}
	require.NoError(t, json.Unmarshal(detail, &view))
	require.Len(t, view.Attempts, 2)
	for _, a := range view.Attempts {
		require.Equal(t, "application/json", a.ResponseHeaders.Get("Content-Type"), "%s", a.Target)
		switch a.Target {
		case "authapi":
			require.Equal(t, "application/json", a.RequestHeaders.Get("Content-Type"), "a body template's Content-Type is no secret")
			require.Equal(t, "auth", a.RequestHeaders.Get("Fanout-Step"))
			require.Equal(t, "[REDACTED]", a.ResponseHeaders.Get("X-Session"))
			require.JSONEq(t, `{"access_token":"[REDACTED]","refresh_token":"[REDACTED]","expires_in":3600}`, a.ResponseBody)
		case "userdata":
			require.Equal(t, "data", a.RequestHeaders.Get("Fanout-Step"))
			require.Equal(t, "[REDACTED]", a.RequestHeaders.Get("Authorization"))
			require.Equal(t, "[REDACTED]", a.RequestHeaders.Get("X-Upstream-Session"), "a step's configured header")
			require.JSONEq(t, `{"you_sent":"Bearer [REDACTED]","session":"[REDACTED]"}`, a.ResponseBody)
		default:
			t.Fatalf("unexpected attempt to %s", a.Target)
		}
	}
	require.Contains(t, string(syncBody), `Bearer [REDACTED]`, "the sync envelope shows the data step's answer, masked")
	require.Contains(t, string(syncBody), `"expires_in":3600`)
}
