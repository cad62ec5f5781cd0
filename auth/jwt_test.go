package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestJWTVerify(t *testing.T) {
	t.Parallel()
	rs, es, ed := newRSA("rs"), newEC(t, "es"), newEd(t, "ed")
	other := signer{kid: "rs", alg: "RS256", key: rsaKey2()} // same kid, key not published
	is := newIssuer(t, rs, es, ed)
	j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{})
	ctx := context.Background()

	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey().Public())
	require.NoError(t, err)
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("acme")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	// Algorithm confusion: an HS256 token whose secret is the issuer's
	// public key.
	hsTok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("acme"))
	hsTok.Header["kid"] = "rs"
	confused, err := hsTok.SignedString(pubDER)
	require.NoError(t, err)
	valid := rs.sign(t, claims("acme"))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+testIssuer+`","aud":"fanout","exp":9999999999,"tenant":"evil"}`)) + "." + parts[2]
	noKid := signer{alg: "ES256", key: es.key}

	for _, tc := range []struct {
		name   string
		token  string
		status int // 0: accepted
		tenant string
	}{
		{"RS256", valid, 0, "acme"},
		{"ES256", es.sign(t, claims("beta")), 0, "beta"},
		{"EdDSA", ed.sign(t, claims("acme")), 0, "acme"},
		{"no kid: every key of the algorithm is tried", noKid.sign(t, claims("acme")), 0, "acme"},
		{"audience list", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} })), 0, "acme"},
		{"no tenant claim", rs.sign(t, claims("")), 0, ""},
		{"expired within leeway", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })), 0, "acme"},
		{"expired", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), 401, ""},
		{"no exp", rs.sign(t, claims("acme", func(c jwt.MapClaims) { delete(c, "exp") })), 401, ""},
		{"not valid yet", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), 401, ""},
		{"issued in the future", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })), 401, ""},
		{"wrong issuer", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" })), 401, ""},
		{"no issuer", rs.sign(t, claims("acme", func(c jwt.MapClaims) { delete(c, "iss") })), 401, ""},
		{"wrong audience", rs.sign(t, claims("acme", func(c jwt.MapClaims) { c["aud"] = "billing" })), 401, ""},
		{"no audience", rs.sign(t, claims("acme", func(c jwt.MapClaims) { delete(c, "aud") })), 401, ""},
		{"alg none", noneTok, 401, ""},
		{"HS256 with the public key as secret", confused, 401, ""},
		{"key not in the set under a known kid", other.sign(t, claims("acme")), 401, ""},
		{"kid of a key of another type", signer{kid: "es", alg: "RS256", key: rsaKey()}.sign(t, claims("acme")), 401, ""},
		{"tampered payload", tampered, 401, ""},
		{"tenant claim not a string", rs.sign(t, claims("", func(c jwt.MapClaims) { c["tenant"] = 42 })), 403, ""},
		{"tenant claim with odd characters", rs.sign(t, claims("acme/../x")), 403, ""},
		{"tenant claim too long", rs.sign(t, claims(strings.Repeat("a", 65))), 403, ""},
		{"empty", "", 401, ""},
		{"one segment", "abc", 401, ""},
		{"two segments", "a.b", 401, ""},
		{"four segments", valid + ".x", 401, ""},
		{"not base64", "!!.??.**", 401, ""},
		{"too long", strings.Repeat("a", auth.MaxCredentialLen+1), 401, ""},
	} {
		id, err := j.Verify(ctx, tc.token)
		require.Equal(t, tc.status, statusOf(t, err), "%s: %v", tc.name, err)
		if tc.status == 0 {
			require.Equal(t, tc.tenant, id.Tenant, tc.name)
			require.Equal(t, "user-1", id.Subject, tc.name)
		}
	}
	require.EqualValues(t, 1, is.hits.Load(), "one fetch served every token; no unknown kid was seen")
}

func TestJWTPinnedAlgorithms(t *testing.T) {
	t.Parallel()
	rs, es := newRSA("rs"), newEC(t, "es")
	is := newIssuer(t, rs, es)
	j := newJWT(t, jwtConfig(is.srv.URL, "RS256"), auth.KeySetOptions{})
	_, err := j.Verify(context.Background(), rs.sign(t, claims("acme")))
	require.NoError(t, err)
	_, err = j.Verify(context.Background(), es.sign(t, claims("acme")))
	require.Equal(t, 401, statusOf(t, err), "ES256 is not in the list, though the key set has the key")

	for _, bad := range []string{"none", "HS256", "RS1", ""} {
		_, err := auth.NewJWT(jwtConfig(is.srv.URL, bad), auth.KeySetOptions{})
		require.Error(t, err, bad)
	}
}

func TestJWTKeyRotation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a, b := newRSA("a"), newEC(t, "b")
	is := newIssuer(t, a)
	j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{Now: clk.now, UnknownKIDInterval: time.Minute})
	ctx := context.Background()

	_, err := j.Verify(ctx, a.sign(t, claims("acme")))
	require.NoError(t, err)
	require.EqualValues(t, 1, is.hits.Load())

	// The issuer rotates to b: the first token signed with b refreshes
	// the set.
	is.set(t, b)
	_, err = j.Verify(ctx, b.sign(t, claims("acme")))
	require.NoError(t, err)
	require.EqualValues(t, 2, is.hits.Load())

	// a was withdrawn: its tokens fail, and made-up key ids cannot make
	// Fanout refetch within the interval.
	_, err = j.Verify(ctx, a.sign(t, claims("acme")))
	require.Equal(t, 401, statusOf(t, err))
	for i := range 50 {
		_, err = j.Verify(ctx, signer{kid: fmt.Sprint("made-up-", i), alg: "ES256", key: b.key}.sign(t, claims("acme")))
		require.Equal(t, 401, statusOf(t, err))
	}
	require.EqualValues(t, 2, is.hits.Load(), "unknown key ids are rate-limited")
	_, err = j.Verify(ctx, b.sign(t, claims("acme")))
	require.NoError(t, err, "known keys keep working")

	// After the interval an unknown kid may refresh again: the issuer
	// published a third key meanwhile.
	c := newEd(t, "c")
	is.set(t, b, c)
	clk.advance(time.Minute)
	_, err = j.Verify(ctx, c.sign(t, claims("acme")))
	require.NoError(t, err)
	require.EqualValues(t, 3, is.hits.Load())
}

func TestJWTKeySetRefreshAndOutage(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newRSA("a")
	is := newIssuer(t, a)
	j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{Now: clk.now, RefreshInterval: time.Hour})
	ctx := context.Background()
	tok := func() string {
		return a.sign(t, claims("acme", func(c jwt.MapClaims) { c["exp"] = clk.now().Add(time.Hour).Unix() }))
	}

	_, err := j.Verify(ctx, tok())
	require.NoError(t, err)
	clk.advance(59 * time.Minute)
	_, err = j.Verify(ctx, tok())
	require.NoError(t, err)
	require.EqualValues(t, 1, is.hits.Load(), "fresh keys are not fetched again")

	// Stale and the issuer is down: the old keys keep serving, and the
	// failed fetch is not retried at once.
	clk.advance(2 * time.Minute)
	is.serve(http.StatusInternalServerError, "oops")
	for range 5 {
		_, err = j.Verify(ctx, tok())
		require.NoError(t, err, "stale keys serve while the issuer is down")
	}
	require.EqualValues(t, 2, is.hits.Load())

	// The issuer is back: the next refresh after the back-off succeeds.
	is.serve(http.StatusOK, "")
	clk.advance(5 * time.Second)
	_, err = j.Verify(ctx, tok())
	require.NoError(t, err)
	require.EqualValues(t, 3, is.hits.Load())
	_, err = j.Verify(ctx, tok())
	require.NoError(t, err)
	require.EqualValues(t, 3, is.hits.Load())
}

func TestJWTKeySetUnavailable(t *testing.T) {
	t.Parallel()
	a := newRSA("a")
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusBadGateway, "bad gateway"},
		{"not JSON", http.StatusOK, "<html>"},
		{"no keys", http.StatusOK, `{"keys":[]}`},
		{"only a symmetric key", http.StatusOK, `{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`},
		{"only encryption keys", http.StatusOK, strings.Replace(`{"keys":[`+string(a.jwk(t))+`]}`, `"use":"sig"`, `"use":"enc"`, 1)},
		{"too large", http.StatusOK, `{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			is := newIssuer(t, a)
			is.serve(tc.status, tc.body)
			j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{Now: clk.now})
			_, err := j.Verify(context.Background(), a.sign(t, claims("acme")))
			require.Equal(t, http.StatusServiceUnavailable, statusOf(t, err))
			var ae *auth.Error
			require.ErrorAs(t, err, &ae)
			require.Equal(t, "auth_unavailable", ae.APIError().Code)
			require.NotEmpty(t, ae.APIError().Header.Get("Retry-After"))
			_, err = j.Verify(context.Background(), a.sign(t, claims("acme")))
			require.Equal(t, http.StatusServiceUnavailable, statusOf(t, err))
			require.EqualValues(t, 1, is.hits.Load(), "a failed fetch is not retried at once")

			is.serve(http.StatusOK, "")
			clk.advance(5 * time.Second)
			_, err = j.Verify(context.Background(), a.sign(t, claims("acme")))
			require.NoError(t, err)
		})
	}

	// An issuer that cannot be reached at all.
	is := newIssuer(t, a)
	url := is.srv.URL
	is.srv.Close()
	j := newJWT(t, jwtConfig(url), auth.KeySetOptions{})
	_, err := j.Verify(context.Background(), a.sign(t, claims("acme")))
	require.Equal(t, http.StatusServiceUnavailable, statusOf(t, err))
}

func TestJWTKeySetFetchedOnceForConcurrentRequests(t *testing.T) {
	t.Parallel()
	a := newRSA("a")
	is := newIssuer(t, a)
	j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{})
	tok := a.sign(t, claims("acme"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := j.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, is.hits.Load())

	// A verifier of a reloaded config takes the key set over.
	j2 := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{})
	j2.Reuse(j)
	_, err := j2.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.EqualValues(t, 1, is.hits.Load())
	require.Same(t, j.KeySet(), j2.KeySet())
}
