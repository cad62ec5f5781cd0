package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/server"
	"github.com/fanouthq/fanout/sqlite"
)

// startLogged starts a server on cfg's SQLite store (shut down at the end
// of the test), returning the store too, whose debug-level JSON log goes
// to the returned buffer.
func startLogged(t *testing.T, cfg *config.Config) (*server.Server, *sqlite.Store, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, cfg.Store.DSN, sqlite.Options{Logger: logger})
	require.NoError(t, err)
	srv, err := server.Start(ctx, cfg, server.Options{Logger: logger, Store: st})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(sctx))
	})
	return srv, st, logs
}

// jsonCaller returns a func that sends one JSON request with headers h
// and returns the status and the whole body.
func jsonCaller(t *testing.T) func(method, url, body string, h map[string]string) (int, []byte) {
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	return func(method, url, body string, h map[string]string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
}

// lockedBuffer collects every log line of the server.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretsNeverLeak runs real traffic through a whole server (sync and
// async routes, the durable queue on a SQLite file, the admin API) with
// secrets in the inbound headers, in the targets' config and in the
// targets' answers, then looks for every secret in every log line, in
// every stored attempt and in every admin API answer (docs/security.md).
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	tenantKey, tenantHash := auth.NewKey()
	adminToken := "admin-token-secret-0001"
	whsec := base64.StdEncoding.EncodeToString([]byte("webhook-signing-secret-32-bytes!"))
	env := map[string]string{
		"ADMIN_TOKEN":   adminToken,
		"CRM_SECRET":    "oauth-client-secret-0002",
		"WHSEC":         "whsec_" + whsec,
		"LEGACY_PW":     "legacy-password-secret-0003",
		"BEARER":        "bearer-token-secret-0004",
		"PARTNER_TOKEN": "partner-header-secret-0005",
		"QUERY_KEY":     "query-key-secret-0006",
	}
	secrets := map[string]string{
		"tenant key":                  tenantKey,
		"admin token":                 adminToken,
		"cookie":                      "cookie-secret-0007",
		"pass-through Authorization":  "pass-through-secret-0008",
		"oauth token":                 "oauth-access-token-secret",
		"Set-Cookie of a target":      "response-cookie-secret-0009",
		"X-Api-Key of a client":       "client-x-api-key-secret-0010",
		"basic auth, base64":          base64.StdEncoding.EncodeToString([]byte("svc:" + env["LEGACY_PW"])),
		"webhook secret, base64 part": whsec,
	}
	for k, v := range env {
		if k != "WHSEC" {
			secrets["env "+k] = v
		}
	}

	// The targets: every one answers with a Set-Cookie; partner and bearer
	// fail their first attempt so that failed attempts are logged (sync
	// and async) and stored.
	var tokens atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+secrets["oauth token"]+`-`+string(rune('0'+n))+`","expires_in":3600}`)
	}))
	t.Cleanup(tokenSrv.Close)
	var partnerCalls, bearerCalls atomic.Int32
	targetSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Set-Cookie", "session="+secrets["Set-Cookie of a target"])
		if strings.HasPrefix(r.URL.Path, "/partner") && partnerCalls.Add(1) == 1 ||
			strings.HasPrefix(r.URL.Path, "/bearer") && bearerCalls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "try again")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(targetSrv.Close)

	dir := t.TempDir()
	yaml := `listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0", token: "${ADMIN_TOKEN}"}
store: {driver: sqlite, dsn: "` + filepath.Join(dir, "fanout.db") + `"}
x-retry: &retry {initial: 10ms, max: 20ms}
targets:
  crm:
    url: ` + targetSrv.URL + `/crm
    auth: {oauth2_client_credentials: {token_url: "` + tokenSrv.URL + `", client_id: fanout, client_secret: "${CRM_SECRET}"}}
    retry: *retry
  hooks:
    url: ` + targetSrv.URL + `/hooks
    auth: {hmac: {standard_webhooks_secret: "${WHSEC}"}}
    retry: *retry
  legacy:
    url: ` + targetSrv.URL + `/legacy
    auth: {basic: {username: svc, password: "${LEGACY_PW}"}}
    retry: *retry
  bearer:
    url: ` + targetSrv.URL + `/bearer
    auth: {bearer: "${BEARER}"}
    retry: *retry
  partner:
    url: ` + targetSrv.URL + `/partner
    headers: {X-Partner-Token: "${PARTNER_TOKEN}"}
    auth: {api_key: {query: key, value: "${QUERY_KEY}"}}
    retry: *retry
routes:
  - {name: sync, match: {path: /sync}, mode: all, targets: [crm, legacy, bearer], auth: api_key, tenants: [acme]}
  - {name: async, match: {path: /async}, mode: async, targets: [crm, hooks, legacy, bearer, partner], auth: api_key}
  - {name: open, match: {path: /open}, mode: async, targets: [crm, partner]}
tenants:
  acme: {keys: [{name: ci, sha256: "` + tenantHash + `"}]}
`
	cfg, err := config.Parse("fanout.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)

	ctx := context.Background()
	srv, st, logs := startLogged(t, cfg)
	call := jsonCaller(t)

	data := "http://" + srv.DataAddr()
	admin := "http://" + srv.AdminAddr()
	cookie := "sid=" + secrets["cookie"]

	status, body := call("POST", data+"/sync", `{"n":1}`, map[string]string{"X-Api-Key": tenantKey, "Cookie": cookie})
	require.Equal(t, 200, status, "%s", body)
	status, body = call("POST", data+"/async", `{"n":2}`, map[string]string{"Authorization": "Bearer " + tenantKey, "Cookie": cookie,
		"X-Api-Key": secrets["X-Api-Key of a client"]})
	require.Equal(t, 401, status, "X-Api-Key comes first, and that one is no tenant key: %s", body)
	status, body = call("POST", data+"/async", `{"n":2}`, map[string]string{"Authorization": "Bearer " + tenantKey, "Cookie": cookie})
	require.Equal(t, 202, status, "%s", body)
	var accepted struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &accepted))
	status, body = call("POST", data+"/open", `{"n":3}`, map[string]string{"Authorization": "Bearer " + secrets["pass-through Authorization"],
		"Cookie": cookie, "X-Api-Key": secrets["X-Api-Key of a client"]})
	require.Equal(t, 202, status, "%s", body)
	var open struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &open))

	// Wait for every delivery to succeed (partner after a retry).
	adminGet := func(path string) []byte {
		t.Helper()
		status, body := call("GET", admin+path, "", map[string]string{"Authorization": "Bearer " + adminToken})
		require.Equal(t, 200, status, "%s: %s", path, body)
		return body
	}
	for _, id := range []string{accepted.ID, open.ID} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var md struct {
				Deliveries []struct{ State string } `json:"deliveries"`
			}
			require.NoError(t, json.Unmarshal(adminGet("/v1/messages/"+id), &md))
			done := len(md.Deliveries) > 0
			for _, d := range md.Deliveries {
				done = done && d.State == string(fanout.StateSucceeded)
			}
			if done {
				break
			}
			require.False(t, time.Now().After(deadline), "deliveries of %s did not succeed: %+v", id, md)
			<-time.After(20 * time.Millisecond) // a poll interval, not a synchronisation
		}
	}
	require.GreaterOrEqual(t, partnerCalls.Load(), int32(3), "partner failed once and then succeeded twice")

	// Everything an operator or a tenant can see.
	var seen []string
	seen = append(seen, logs.String())
	for _, p := range []string{"/v1/messages", "/v1/messages?tenant=acme", "/v1/messages/" + accepted.ID, "/v1/messages/" + open.ID, "/v1/routes", "/v1/targets"} {
		seen = append(seen, string(adminGet(p)))
	}
	var attempts int
	for _, id := range []string{accepted.ID, open.ID} {
		md, err := st.GetMessage(ctx, id)
		require.NoError(t, err)
		for _, a := range md.Attempts {
			attempts++
			b, err := json.Marshal(a)
			require.NoError(t, err)
			seen = append(seen, string(b))
		}
		if id == accepted.ID {
			require.Equal(t, "acme", md.Message.Tenant)
			require.Empty(t, md.Message.Header.Get("Authorization"), "the credential that authenticated is not stored")
			b, err := json.Marshal(md.Message)
			require.NoError(t, err)
			require.NotContains(t, string(b), tenantKey)
			// The Cookie is the targets': kept for delivery, redacted
			// wherever it is shown.
			require.Equal(t, cookie, md.Message.Header.Get("Cookie"))
		} else {
			// Without auth the Authorization header is the targets' and
			// is kept for delivery; it is redacted wherever it is shown.
			require.Equal(t, "Bearer "+secrets["pass-through Authorization"], md.Message.Header.Get("Authorization"))
		}
	}
	require.GreaterOrEqual(t, attempts, 8)
	all := strings.Join(seen, "\n")
	require.Contains(t, all, `"tenant":"acme"`, "the tenant is shown")
	require.Contains(t, all, "[REDACTED]")
	for what, secret := range secrets {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("%s leaked: …%s…", what, all[max(0, i-200):min(len(all), i+len(secret)+50)])
		}
	}
	require.Contains(t, logs.String(), `"msg":"attempt failed"`, "a failed sync attempt was logged")
	require.Contains(t, logs.String(), `"msg":"delivery attempt failed"`, "a failed delivery was logged")
}
