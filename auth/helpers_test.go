package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// signer is a signing key of the test issuer.
type signer struct {
	kid string
	alg string
	key crypto.Signer
}

// rsaKey is generated once: RSA key generation is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newRSA(kid string) signer { return signer{kid: kid, alg: "RS256", key: rsaKey()} }

func newEC(t *testing.T, kid string) signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signer{kid: kid, alg: "ES256", key: k}
}

func newEd(t *testing.T, kid string) signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return signer{kid: kid, alg: "EdDSA", key: k}
}

// jwk is the public JWK of s.
func (s signer) jwk(t testing.TB) json.RawMessage {
	j, err := jwkset.NewJWKFromKey(s.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: s.kid, USE: jwkset.UseSig}})
	require.NoError(t, err)
	raw, err := json.Marshal(j.Marshal())
	require.NoError(t, err)
	return raw
}

// sign makes a token with claims, signed by s.
func (s signer) sign(t testing.TB, claims jwt.MapClaims) string {
	m := jwt.GetSigningMethod(s.alg)
	tok := jwt.NewWithClaims(m, claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.key)
	require.NoError(t, err)
	return out
}

// issuer is a test JWKS endpoint whose keys can be rotated.
type issuer struct {
	srv     *httptest.Server
	hits    atomic.Int32
	mu      sync.Mutex
	keys    []json.RawMessage
	status  int
	rawBody string // when set, served instead of the keys
}

func newIssuer(t testing.TB, keys ...signer) *issuer {
	is := &issuer{status: http.StatusOK}
	is.set(t, keys...)
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(is.status)
		if is.rawBody != "" {
			_, _ = w.Write([]byte(is.rawBody))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": is.keys})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// set replaces the published keys (a rotation).
func (is *issuer) set(t testing.TB, keys ...signer) {
	raws := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		raws[i] = k.jwk(t)
	}
	is.mu.Lock()
	is.keys = raws
	is.mu.Unlock()
}

func (is *issuer) serve(status int, body string) {
	is.mu.Lock()
	is.status, is.rawBody = status, body
	is.mu.Unlock()
}

const (
	testIssuer   = "https://idp.example.com/"
	testAudience = "fanout"
)

func jwtConfig(url string, algs ...string) *config.JWT {
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256", "EdDSA"}
	}
	return &config.JWT{JWKSURL: url, Issuer: testIssuer, Audience: testAudience, TenantClaim: "tenant",
		Algorithms: algs, Leeway: config.Duration(30 * time.Second)}
}

// claims returns valid claims for tenant, changed by mods.
func claims(tenant string, mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if tenant != "" {
		c["tenant"] = tenant
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func newJWT(t *testing.T, cfg *config.JWT, opts auth.KeySetOptions) *auth.JWT {
	t.Helper()
	j, err := auth.NewJWT(cfg, opts)
	require.NoError(t, err)
	return j
}

// statusOf returns the HTTP status of an auth error, 0 for nil.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ae *auth.Error
	require.ErrorAs(t, err, &ae)
	return ae.Status
}
