package auth

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"slices"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fanouthq/fanout/config"
)

// JWT verifies inbound JWTs per the config's jwt settings. It is safe for
// concurrent use.
type JWT struct {
	cfg    config.JWT
	keys   *KeySet
	parser *jwt.Parser
}

// NewJWT returns a verifier for cfg whose key set is fetched with opts.
// The key set is not fetched until the first token arrives.
func NewJWT(cfg *config.JWT, opts KeySetOptions) (*JWT, error) {
	if cfg == nil {
		return nil, errors.New("no jwt settings")
	}
	switch {
	case cfg.JWKSURL == "":
		return nil, errors.New("jwt: no jwks_url")
	case cfg.Issuer == "":
		return nil, errors.New("jwt: no issuer")
	case cfg.Audience == "":
		return nil, errors.New("jwt: no audience")
	case len(cfg.Algorithms) == 0:
		return nil, errors.New("jwt: no algorithms")
	}
	for _, a := range cfg.Algorithms {
		if !knownAlg(a) {
			return nil, errors.New("jwt: algorithm " + a + " is not allowed")
		}
	}
	j := &JWT{cfg: *cfg, keys: NewKeySet(cfg.JWKSURL, opts)}
	j.cfg.Algorithms = append([]string(nil), cfg.Algorithms...)
	if j.cfg.TenantClaim == "" {
		j.cfg.TenantClaim = "tenant"
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(j.cfg.Algorithms),
		jwt.WithIssuer(j.cfg.Issuer),
		jwt.WithAudience(j.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(j.cfg.Leeway.D()),
		// One encoding per token: no variant of a valid token (base64
		// with stray trailing bits) is valid too.
		jwt.WithStrictDecoding(),
	}
	if opts.Now != nil {
		popts = append(popts, jwt.WithTimeFunc(opts.Now))
	}
	j.parser = jwt.NewParser(popts...)
	return j, nil
}

// knownAlg reports whether a is one of config.JWTAlgorithms.
func knownAlg(a string) bool { return slices.Contains(config.JWTAlgorithms, a) }

// KeySet returns the verifier's key set.
func (j *JWT) KeySet() *KeySet { return j.keys }

// Reuse takes prev's key set when it is of the same URL, so that a config
// reload does not fetch the keys again. Call it before j is used.
func (j *JWT) Reuse(prev *JWT) {
	if prev != nil && prev.keys.URL() == j.keys.URL() {
		j.keys = prev.keys
	}
}

// Verify checks a compact JWS token and returns who it names: the tenant
// claim and the subject. A refused token is an *Error: 401, or 503 when
// the key set cannot be fetched.
func (j *JWT) Verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > MaxCredentialLen {
		return Identity{}, invalid("token too long", "the token is not valid")
	}
	var unavailable bool
	claims := jwt.MapClaims{}
	_, err := j.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := j.keys.Key(ctx, kid, t.Method.Alg())
		if err != nil {
			unavailable = errors.Is(err, errKeySetNotReady)
			return nil, err
		}
		if len(keys) == 1 {
			return keys[0], nil
		}
		return jwt.VerificationKeySet{Keys: toVerificationKeys(keys)}, nil
	})
	switch {
	case unavailable:
		return Identity{}, &Error{Status: http.StatusServiceUnavailable, Reason: "JWK set unavailable",
			Message: "the token cannot be checked now: the issuer's key set is unavailable"}
	case err != nil:
		return Identity{}, invalid(tokenReason(err), "the token is not valid")
	}
	id := Identity{}
	id.Subject, _ = claims["sub"].(string)
	switch v := claims[j.cfg.TenantClaim].(type) {
	case nil:
	case string:
		if !ValidTenant(v) {
			return Identity{}, &Error{Status: http.StatusForbidden, Reason: "the tenant claim is not a valid tenant name",
				Message: "the token's tenant may not use this route"}
		}
		id.Tenant = v
	default:
		return Identity{}, &Error{Status: http.StatusForbidden, Reason: "the tenant claim is not a string",
			Message: "the token's tenant may not use this route"}
	}
	return id, nil
}

func toVerificationKeys(keys []crypto.PublicKey) []jwt.VerificationKey {
	out := make([]jwt.VerificationKey, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

// tokenReason says in a few words why a token was refused, for the log.
func tokenReason(err error) string {
	switch {
	case errors.Is(err, errUnknownKID):
		return "token signed with an unknown key id"
	case errors.Is(err, errNoUsableKey):
		return "no key fits the token's algorithm"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified"
	}
	return "invalid token"
}

// maxTenantLen bounds a tenant name taken from a token.
const maxTenantLen = 64

// ValidTenant reports whether s can be a tenant name: 1 to 64 letters,
// digits, '_', '-' and '.', as tenant names in the config are.
func ValidTenant(s string) bool {
	if s == "" || len(s) > maxTenantLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
