package upstream_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

func TestSignStandardWebhookVector(t *testing.T) {
	t.Parallel()
	// The published Standard Webhooks test vector.
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		upstream.SignStandardWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)))
}

func TestStaticAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	for _, tc := range []struct {
		name   string
		auth   *config.Auth
		header string
		want   string
	}{
		{"bearer", &config.Auth{Bearer: "tok"}, "Authorization", "Bearer tok"},
		{"basic", &config.Auth{Basic: &config.BasicAuth{Username: "svc", Password: "pw"}}, "Authorization", "Basic c3ZjOnB3"},
		{"api key", &config.Auth{APIKey: &config.APIKeyAuth{Value: "k"}}, "X-Api-Key", "k"},
		{"api key header", &config.Auth{APIKey: &config.APIKeyAuth{Header: "X-Token", Value: "k2"}}, "X-Token", "k2"},
	} {
		tg, _ := newTarget(t, "t", "/", h)
		tg.Auth = tc.auth
		tg.Headers = map[string]string{"Authorization": "Bearer overridden"}
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg}, 0)
		require.NoError(t, res.Err, tc.name)
		require.Equal(t, tc.want, (<-seen).Header.Get(tc.header), tc.name)
		require.Equal(t, upstream.Redacted, res.RequestHeader.Get(tc.header), "%s: the secret is redacted in the record", tc.name)
	}
}

func TestHMACAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/", h)
	key := []byte("0123456789abcdef0123456789abcdef")
	tg.Auth = &config.Auth{HMAC: &config.HMACAuth{StandardWebhooksSecret: config.SecretList{"whsec_" + base64.StdEncoding.EncodeToString(key)}}}
	body := []byte(`{"a":1}`)
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: body, MessageID: "msg_1"}, 0)
	require.NoError(t, res.Err)
	got := (<-seen).Header
	require.Equal(t, "msg_1", got.Get("Webhook-Id"))
	ts, err := strconv.ParseInt(got.Get("Webhook-Timestamp"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), ts, 5)
	require.Equal(t, upstream.SignStandardWebhook(key, "msg_1", ts, body), got.Get("Webhook-Signature"))

	tg.Auth.HMAC.StandardWebhooksSecret = config.SecretList{"whsec_not base64!"}
	res = b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: body, MessageID: "msg_1"}, 0)
	require.Error(t, res.Err)
	require.Equal(t, fanout.ClassOther, res.Class)
	require.False(t, res.Retryable, "a bad secret does not heal by retrying")
}

// TestHMACAuthRotation signs with two secrets, as while a receiver
// rotates: the reference Standard Webhooks verifier accepts the request
// with either secret alone, and refuses a third.
func TestHMACAuthRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/", h)
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the old secret, 32 bytes long..."))
	newSecret := base64.StdEncoding.EncodeToString([]byte("the new one, without its prefix")) // whsec_ is optional
	tg.Auth = &config.Auth{HMAC: &config.HMACAuth{StandardWebhooksSecret: config.SecretList{oldSecret, newSecret}}}
	body := []byte(`{"event":"signup"}`)
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: body, MessageID: "msg_rot"}, 0)
	require.NoError(t, res.Err)
	got := (<-seen).Header

	sigs := strings.Split(got.Get("Webhook-Signature"), " ")
	require.Len(t, sigs, 2, "one signature per secret, space separated")
	for _, sig := range sigs {
		require.True(t, strings.HasPrefix(sig, "v1,"), sig)
	}
	for _, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, got), "a receiver that knows only %.10s… accepts the request", secret)
		require.ErrorIs(t, wh.Verify([]byte(`{"event":"forged"}`), got), standardwebhooks.ErrNoMatchingSignature)
	}
	other, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("a secret nobody configured")))
	require.NoError(t, err)
	require.ErrorIs(t, other.Verify(body, got), standardwebhooks.ErrNoMatchingSignature)

	// Each entry is the signature under one secret, in the configured order.
	ts, err := strconv.ParseInt(got.Get("Webhook-Timestamp"), 10, 64)
	require.NoError(t, err)
	for i, secret := range []string{oldSecret, newSecret} {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		require.NoError(t, err)
		require.Equal(t, upstream.SignStandardWebhook(key, "msg_rot", ts, body), sigs[i])
	}
}

// tokenServer is an OAuth 2.0 token endpoint for tests.
type tokenServer struct {
	srv       *httptest.Server
	fetches   atomic.Int32
	mu        sync.Mutex
	current   string
	expiresIn int
	onlyForm  bool // refuse HTTP basic client authentication
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{expiresIn: 3600}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		w.Header().Set("Content-Type", "application/json")
		if (basic && ts.onlyForm) || id != "cid" || secret != "s&cret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		n := ts.fetches.Add(1)
		ts.mu.Lock()
		ts.current = "tok" + strconv.Itoa(int(n))
		tok, exp := ts.current, ts.expiresIn
		ts.mu.Unlock()
		_, _ = io.WriteString(w, `{"access_token":"`+tok+`","token_type":"Bearer","expires_in":"`+strconv.Itoa(exp)+`","scope":"`+r.PostForm.Get("scope")+`"}`)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) valid(tok string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return "Bearer "+ts.current == tok
}

func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := newTokenServer(t)
	var hits atomic.Int32
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !ts.valid(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, r.Header.Get("Authorization"))
	})
	tg.Auth = &config.Auth{OAuth2ClientCredentials: &config.OAuth2ClientCredentials{
		TokenURL: ts.srv.URL, ClientID: "cid", ClientSecret: "s&cret", Scopes: []string{"a", "b"},
	}}
	ctx := context.Background()

	// Concurrent first requests share one fetch.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
			if res.Err != nil {
				t.Error(res.Err)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, ts.fetches.Load(), "the token is cached")
	res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
	require.NoError(t, res.Err)
	require.Equal(t, "Bearer tok1", string(res.Body))
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("Authorization"))

	// The token is revoked at the endpoint: a 401 refreshes it once.
	ts.mu.Lock()
	ts.current = "revoked"
	ts.mu.Unlock()
	hits.Store(0)
	res = b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
	require.NoError(t, res.Err)
	require.Equal(t, "Bearer tok2", string(res.Body))
	require.EqualValues(t, 2, hits.Load(), "one retry after the refresh")
	require.EqualValues(t, 2, ts.fetches.Load())

	// Through Do as well.
	ts.mu.Lock()
	ts.current = "revoked"
	ts.mu.Unlock()
	resp, err := b.client.Do(ctx, upstream.Request{Target: tg})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "Bearer tok3", string(body))
}

func TestOAuth2ExpiryAndClientAuthStyle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := newTokenServer(t)
	ts.onlyForm = true
	ts.expiresIn = 10 // inside the refresh margin: every use refreshes
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		if !ts.valid(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	tg.Auth = &config.Auth{OAuth2ClientCredentials: &config.OAuth2ClientCredentials{TokenURL: ts.srv.URL, ClientID: "cid", ClientSecret: "s&cret"}}
	for range 3 {
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg}, 0)
		require.NoError(t, res.Err)
	}
	require.EqualValues(t, 3, ts.fetches.Load(), "a token about to expire is replaced")

	// A token endpoint that refuses the client fails the attempt, retryably.
	tg.Auth.OAuth2ClientCredentials = &config.OAuth2ClientCredentials{TokenURL: ts.srv.URL, ClientID: "cid", ClientSecret: "wrong"}
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg}, 0)
	require.ErrorContains(t, res.Err, "the oauth2 token endpoint answered 401 (invalid_client)")
	require.Equal(t, fanout.ClassOther, res.Class)
	require.True(t, res.Retryable)
	require.Zero(t, res.Status, "the target was not called")
}

// TestOAuth2ForcedRefreshOnce counts the requests to a real token endpoint:
// a 401 from the target makes exactly one new token fetch and one resend
// per attempt (never a loop), and many attempts refused at once share that
// one fetch.
func TestOAuth2ForcedRefreshOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := newTokenServer(t)
	var refuse atomic.Bool
	var hits atomic.Int32
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if refuse.Load() || !ts.valid(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, r.Header.Get("Authorization"))
	})
	tg.Auth = &config.Auth{OAuth2ClientCredentials: &config.OAuth2ClientCredentials{TokenURL: ts.srv.URL, ClientID: "cid", ClientSecret: "s&cret"}}
	ctx := context.Background()

	// A target that refuses every token: one refresh, one resend, then the
	// 401 is the attempt's answer.
	refuse.Store(true)
	res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 0)
	require.Equal(t, http.StatusUnauthorized, res.Status, "%v", res.Err)
	require.EqualValues(t, 2, hits.Load(), "the first send and one resend")
	require.EqualValues(t, 2, ts.fetches.Load(), "the first token and one forced refresh")
	res = b.client.Exchange(ctx, upstream.Request{Target: tg}, 0)
	require.Equal(t, http.StatusUnauthorized, res.Status)
	require.EqualValues(t, 4, hits.Load())
	require.EqualValues(t, 3, ts.fetches.Load(), "the refused token was dropped; one more refresh, not a loop")

	// The target accepts the current token: no fetch.
	refuse.Store(false)
	res = b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
	require.NoError(t, res.Err)
	require.Equal(t, "Bearer tok3", string(res.Body))
	require.EqualValues(t, 3, ts.fetches.Load())

	// The endpoint revokes it; concurrent attempts all get a 401 for it
	// and share one refresh.
	ts.mu.Lock()
	ts.current = "revoked"
	ts.mu.Unlock()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
			if res.Err != nil || string(res.Body) != "Bearer tok4" {
				t.Errorf("got %q, %v; want the refreshed token", res.Body, res.Err)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 4, ts.fetches.Load(), "one refresh for every attempt refused with the revoked token")
}
