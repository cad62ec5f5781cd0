package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// keyed is a config with tenants acme (key ci) and beta (key ops).
type keyed struct {
	cfg          *config.Config
	acme, beta   string // the keys
	acmeH, betaH string // their hashes
}

func withTenants(cfg *config.Config) *keyed {
	k := &keyed{cfg: cfg}
	k.acme, k.acmeH = auth.NewKey()
	k.beta, k.betaH = auth.NewKey()
	cfg.Tenants = map[string]*config.Tenant{
		"acme": {Name: "acme", Keys: []config.APIKey{{Name: "ci", SHA256: k.acmeH}}},
		"beta": {Name: "beta", Keys: []config.APIKey{{Name: "ops", SHA256: k.betaH}}},
	}
	return k
}

func (b *bundle) send(t *testing.T, path, body string, h map[string]string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	return b.do(t, req)
}

func TestAPIKeyAuth(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	only := route("only", "all", "/only", "crm")
	only.Auth, only.Tenants = config.AuthAPIKey, []string{"acme"}
	only.MaxBody = 16
	anyTenant := route("any", "settled", "/any", "crm")
	anyTenant.Auth = config.AuthAPIKey
	queued := route("queued", "async", "/queued", "crm")
	queued.Auth = config.AuthAPIKey
	open := route("open", "async", "/open", "crm")
	k := withTenants(newConfig([]*target{crm}, only, anyTenant, queued, open))
	b := setup(t, k.cfg)

	// Refused before the body is read: a body past max_body gets 401,
	// not 413, and the target is never called.
	big := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name   string
		h      map[string]string
		status int
		code   string
	}{
		{"no key", nil, 401, "unauthorized"},
		{"unknown key", map[string]string{"X-Api-Key": "fo_unknown"}, 401, "unauthorized"},
		{"the hash, not the key", map[string]string{"Authorization": "Bearer " + k.acmeH}, 401, "unauthorized"},
		{"malformed", map[string]string{"Authorization": "Bearer two words"}, 401, "unauthorized"},
		{"another tenant", map[string]string{"X-Api-Key": k.beta}, 403, "forbidden"},
	} {
		r := b.send(t, "/only", big, tc.h)
		require.Equal(t, tc.status, r.Status, tc.name)
		require.Equal(t, tc.code, r.errorCode(t), tc.name)
		if tc.status == 401 {
			require.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="fanout"`), tc.name)
		}
	}
	require.Zero(t, crm.hits.Load())

	// Bearer: accepted, and the key does not reach the target.
	r := b.send(t, "/only", `{"a":1}`, map[string]string{"Authorization": "Bearer " + k.acme, "Cookie": "c=1"})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	got := crm.next(t)
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, "c=1", got.Header.Get("Cookie"), "other headers are forwarded")

	// X-Api-Key: the Authorization header is the target's, and passes.
	r = b.send(t, "/any", `{}`, map[string]string{"X-Api-Key": k.beta, "Authorization": "Basic dTpw"})
	require.Equal(t, 200, r.Status)
	got = crm.next(t)
	require.Empty(t, got.Header.Get("X-Api-Key"))
	require.Equal(t, "Basic dTpw", got.Header.Get("Authorization"))

	// Async: the message carries the tenant, not the key; the
	// idempotency key is scoped to the tenant.
	r = b.send(t, "/queued", `{}`, map[string]string{"X-Api-Key": k.acme, "Idempotency-Key": "k1"})
	require.Equal(t, 202, r.Status)
	p := <-b.enq.got
	require.Equal(t, "acme", p.Message.Tenant)
	require.Equal(t, "acme/k1", p.Message.IdempotencyKey)
	require.Empty(t, p.Message.Header.Get("X-Api-Key"))
	r = b.send(t, "/queued", `{}`, map[string]string{"X-Api-Key": k.beta, "Idempotency-Key": "k1"})
	require.Equal(t, 202, r.Status, "beta's k1 is not acme's k1")
	p = <-b.enq.got
	require.Equal(t, "beta", p.Message.Tenant)
	require.Equal(t, "beta/k1", p.Message.IdempotencyKey)

	// A route without auth keeps the headers and has no tenant.
	r = b.send(t, "/open", `{}`, map[string]string{"X-Api-Key": k.acme, "Idempotency-Key": "k1"})
	require.Equal(t, 202, r.Status)
	p = <-b.enq.got
	require.Empty(t, p.Message.Tenant)
	require.Equal(t, "k1", p.Message.IdempotencyKey)
	require.Equal(t, k.acme, p.Message.Header.Get("X-Api-Key"), "auth none: not Fanout's credential")

	// The log names tenant and key, never the key itself.
	logs := b.logs.String()
	for _, secret := range []string{k.acme, k.beta} {
		require.NotContains(t, logs, secret)
	}
	var refused, admitted int
	for _, l := range b.logs.lines(t, "request") {
		switch l["route"] {
		case "only":
			if l["status"] == float64(401) || l["status"] == float64(403) {
				refused++
				require.NotEmpty(t, l["refused"])
			} else {
				admitted++
				require.Equal(t, "acme", l["tenant"])
				require.Equal(t, "ci", l["key"])
			}
		}
	}
	require.Equal(t, 5, refused)
	require.Equal(t, 1, admitted)
}

// jwtIssuer is a JWKS endpoint with rotating EC keys.
type jwtIssuer struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	is := &jwtIssuer{keys: map[string]*ecdsa.PrivateKey{}}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jwkset.JWKSMarshal
		for kid, k := range is.keys {
			j, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgES256}})
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			set.Keys = append(set.Keys, j.Marshal())
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// rotate publishes only a new key, kid, and returns it.
func (is *jwtIssuer) rotate(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	is.mu.Lock()
	is.keys = map[string]*ecdsa.PrivateKey{kid: k}
	is.mu.Unlock()
}

func (is *jwtIssuer) token(t *testing.T, kid, tenant string) string {
	is.mu.Lock()
	k := is.keys[kid]
	is.mu.Unlock()
	require.NotNil(t, k)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.test/", "aud": "fanout", "sub": "svc", "org": tenant,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	require.NoError(t, err)
	return s
}

func TestJWTAuth(t *testing.T) {
	t.Parallel()
	is := newJWTIssuer(t)
	is.rotate(t, "k1")
	crm := newTarget(t, "crm", nil)
	rt := route("jwt", "all", "/jwt", "crm")
	rt.Auth, rt.Tenants = config.AuthJWT, []string{"acme"}
	cfg := newConfig([]*target{crm}, rt)
	cfg.JWT = &config.JWT{JWKSURL: is.srv.URL, Issuer: "https://idp.test/", Audience: "fanout", TenantClaim: "org",
		Algorithms: []string{"ES256"}, Leeway: config.Duration(30 * time.Second)}
	b := setup(t, cfg)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	r := b.send(t, "/jwt", `{}`, bearer(is.token(t, "k1", "acme")))
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Empty(t, crm.next(t).Header.Get("Authorization"), "the token is not forwarded")
	r = b.send(t, "/jwt", `{}`, bearer(is.token(t, "k1", "beta")))
	require.Equal(t, 403, r.Status)
	require.Equal(t, "forbidden", r.errorCode(t))
	r = b.send(t, "/jwt", `{}`, nil)
	require.Equal(t, 401, r.Status)
	require.Equal(t, `Bearer realm="fanout"`, r.Header.Get("WWW-Authenticate"))
	r = b.send(t, "/jwt", `{}`, bearer("eyJhbGciOiJub25lIn0.eyJvcmciOiJhY21lIn0."))
	require.Equal(t, 401, r.Status, "alg none")
	require.Equal(t, `Bearer realm="fanout", error="invalid_token"`, r.Header.Get("WWW-Authenticate"))
	require.EqualValues(t, 1, is.hits.Load())

	// The issuer rotates its key: no restart, one refetch.
	is.rotate(t, "k2")
	r = b.send(t, "/jwt", `{}`, bearer(is.token(t, "k2", "acme")))
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.EqualValues(t, 2, is.hits.Load())

	// A reload with the same key set URL keeps the fetched keys.
	require.NoError(t, b.gw.Load(cfg))
	r = b.send(t, "/jwt", `{}`, bearer(is.token(t, "k2", "acme")))
	require.Equal(t, 200, r.Status)
	require.EqualValues(t, 2, is.hits.Load())

	// The issuer is gone and Fanout never had its keys: 503, not 401.
	gone := newJWTIssuer(t)
	gone.rotate(t, "g")
	tok := gone.token(t, "g", "acme")
	cfg2 := newConfig([]*target{crm}, rt)
	cfg2.JWT = &config.JWT{JWKSURL: gone.srv.URL, Issuer: "https://idp.test/", Audience: "fanout", TenantClaim: "org", Algorithms: []string{"ES256"}}
	gone.srv.Close()
	require.NoError(t, b.gw.Load(cfg2))
	r = b.send(t, "/jwt", `{}`, bearer(tok))
	require.Equal(t, 503, r.Status)
	require.Equal(t, "auth_unavailable", r.errorCode(t))
	require.NotEmpty(t, r.Header.Get("Retry-After"))
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	keyedRoute := route("keyed", "async", "/keyed", "crm")
	keyedRoute.Auth = config.AuthAPIKey
	keyedRoute.RateLimit = &config.RateLimit{RPS: 0.01, Burst: 2} // one per 100s after the burst
	shared := route("shared", "async", "/shared", "crm")
	shared.RateLimit = &config.RateLimit{RPS: 0.01, Burst: 1}
	k := withTenants(newConfig([]*target{crm}, keyedRoute, shared))
	b := setup(t, k.cfg)
	acme := map[string]string{"X-Api-Key": k.acme}

	require.Equal(t, 202, b.send(t, "/keyed", `{}`, acme).Status)
	require.Equal(t, 202, b.send(t, "/keyed", `{}`, acme).Status)
	r := b.send(t, "/keyed", `{}`, acme)
	require.Equal(t, 429, r.Status)
	require.Equal(t, "rate_limited", r.errorCode(t))
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 100, secs, 1, "whole seconds, rounded up")
	require.Equal(t, 202, b.send(t, "/keyed", `{}`, map[string]string{"X-Api-Key": k.beta}).Status, "per key")
	require.Equal(t, 401, b.send(t, "/keyed", `{}`, nil).Status, "auth comes first")

	// Without auth, one bucket for the route.
	require.Equal(t, 202, b.send(t, "/shared", `{}`, nil).Status)
	require.Equal(t, 429, b.send(t, "/shared", `{}`, acme).Status)

	// A reload that keeps the limit keeps the buckets; a new limit
	// starts afresh.
	require.NoError(t, b.gw.Load(k.cfg))
	require.Equal(t, 429, b.send(t, "/keyed", `{}`, acme).Status)
	keyedRoute.RateLimit = &config.RateLimit{RPS: 0.01, Burst: 3}
	require.NoError(t, b.gw.Load(k.cfg))
	require.Equal(t, 202, b.send(t, "/keyed", `{}`, acme).Status)
	require.Len(t, b.enq.calls(), 5)
}

func TestSchemaValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "signup.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
	  "type": "object", "required": ["email"],
	  "properties": {"email": {"type": "string", "format": "email"}, "tags": {"type": "array", "items": {"type": "string"}}}
	}`), 0o600))
	crm := newTarget(t, "crm", nil)
	rt := route("signup", "all", "/signup", "crm")
	rt.Schema = path // a config built in code: the gateway compiles it
	b := setup(t, newConfig([]*target{crm}, rt))

	r := b.post(t, "/signup", `{"email":"a@example.com","tags":["x"]}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)

	r = b.post(t, "/signup", `{"email":"nope","tags":["x",2]}`)
	require.Equal(t, 422, r.Status)
	require.Equal(t, "schema_validation_failed", r.errorCode(t))
	details := r.json(t)["error"].(map[string]any)["details"].(map[string]any)
	var locs []string
	for _, e := range details["errors"].([]any) {
		m := e.(map[string]any)
		locs = append(locs, m["instance_location"].(string))
		require.NotEmpty(t, m["message"])
		require.NotContains(t, m["message"], dir)
	}
	require.Equal(t, []string{"/email", "/tags/1"}, locs)

	r = b.post(t, "/signup", `{}`)
	require.Equal(t, 422, r.Status)
	require.Contains(t, string(r.Body), `"instance_location":""`)

	// A schema implies JSON.
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/signup", strings.NewReader(`email=a`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = b.do(t, req)
	require.Equal(t, 415, r.Status)
	r = b.post(t, "/signup", `{"email":`)
	require.Equal(t, 400, r.Status)
	require.Equal(t, "invalid_json", r.errorCode(t))
	require.EqualValues(t, 1, crm.hits.Load(), "only the valid body reached the target")

	// A schema that does not compile refuses the config.
	bad := route("bad", "all", "/bad", "crm")
	bad.Schema = filepath.Join(dir, "missing.json")
	require.Error(t, b.gw.Load(newConfig([]*target{crm}, bad)))
}

// tokenEndpoint is an OAuth 2.0 token endpoint that counts its tokens.
type tokenEndpoint struct {
	srv     *httptest.Server
	issued  atomic.Int32
	current atomic.Value // string
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	te := &tokenEndpoint{}
	te.current.Store("")
	te.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || !ok || id != "fanout" || secret != "s3cret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		tok := "tok-" + strconv.Itoa(int(te.issued.Add(1)))
		te.current.Store(tok)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+tok+`","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(te.srv.Close)
	return te
}

func TestOutboundAuthEndToEnd(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	var rejectNext, rejectAll atomic.Bool
	oauth := newTarget(t, "oauth", func(w http.ResponseWriter, r *http.Request, n int) {
		if rejectAll.Load() || rejectNext.CompareAndSwap(true, false) || r.Header.Get("Authorization") != "Bearer "+te.current.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	oauth.cfg.Auth = &config.Auth{OAuth2ClientCredentials: &config.OAuth2ClientCredentials{
		TokenURL: te.srv.URL, ClientID: "fanout", ClientSecret: "s3cret", Scopes: []string{"events.write"}}}
	oauth.cfg.Retry.SyncMaxAttempts = 1 // the refresh-and-retry is not a retry of the policy

	whKey := []byte("0123456789abcdef0123456789abcdef")
	hooks := newTarget(t, "hooks", nil)
	hooks.cfg.Auth = &config.Auth{HMAC: &config.HMACAuth{StandardWebhooksSecret: config.SecretList{"whsec_" + base64.StdEncoding.EncodeToString(whKey)}}}

	query := newTarget(t, "query", func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("api_key") != "qk" || r.URL.Query().Get("v") != "1" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	query.cfg.URL += "?v=1"
	query.cfg.ParsedURL.RawQuery = "v=1"
	query.cfg.Auth = &config.Auth{APIKey: &config.APIKeyAuth{Query: "api_key", Value: "qk"}}

	basic := newTarget(t, "basic", func(w http.ResponseWriter, r *http.Request, n int) {
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	basic.cfg.Auth = &config.Auth{Basic: &config.BasicAuth{Username: "svc", Password: "pw"}}

	rt := route("fan", "all", "/fan", "oauth", "hooks", "query", "basic")
	b := setup(t, newConfig([]*target{oauth, hooks, query, basic}, rt))

	for i := range 3 {
		r := b.post(t, "/fan", `{"n":1}`)
		require.Equal(t, 200, r.Status, "request %d: %s", i, r.Body)
	}
	require.EqualValues(t, 1, te.issued.Load(), "the token is cached across requests")
	for range 3 {
		// Standard Webhooks: the receiver can check the signature.
		s := hooks.next(t)
		ts, err := strconv.ParseInt(s.Header.Get("Webhook-Timestamp"), 10, 64)
		require.NoError(t, err)
		require.InDelta(t, time.Now().Unix(), ts, 60)
		require.True(t, strings.HasPrefix(s.Header.Get("Webhook-Id"), "msg_"))
		require.Equal(t, upstream.SignStandardWebhook(whKey, s.Header.Get("Webhook-Id"), ts, []byte(s.Body)), s.Header.Get("Webhook-Signature"))
	}

	// The target answers 401 once: one forced refresh, one retry, success.
	rejectNext.Store(true)
	r := b.post(t, "/fan", `{"n":2}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.EqualValues(t, 2, te.issued.Load())
	require.Equal(t, float64(1), r.result(t, "oauth")["attempts"], "the refresh retry is part of the attempt")

	// A target that keeps answering 401 is not retried in a loop.
	rejectAll.Store(true)
	oauthHitsBefore := oauth.hits.Load()
	r = b.post(t, "/fan", `{"n":3}`)
	require.Equal(t, 502, r.Status)
	require.Equal(t, float64(401), r.result(t, "oauth")["status"])
	require.EqualValues(t, 2, oauth.hits.Load()-oauthHitsBefore, "the request and one retry after the refresh")
	require.EqualValues(t, 3, te.issued.Load())
	require.NotContains(t, b.logs.String(), "tok-", "tokens never reach the log")
	require.NotContains(t, b.logs.String(), "s3cret")
}
