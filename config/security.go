package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fanouthq/fanout/schema"
)

// This file holds the inbound security settings (docs/security.md): tenants and
// their API keys, JWT validation, and the per-route auth, tenants, rate
// limit and JSON Schema.

// AuthMode is how a route authenticates its callers.
type AuthMode string

// The route auth modes.
const (
	// AuthNone lets anyone call the route (the default, also written "").
	AuthNone AuthMode = "none"
	// AuthAPIKey requires a tenant's API key, sent as
	// "Authorization: Bearer <key>" or "X-Api-Key: <key>".
	AuthAPIKey AuthMode = "api_key"
	// AuthJWT requires a JWT ("Authorization: Bearer <jwt>") validated
	// per Config.JWT.
	AuthJWT AuthMode = "jwt"
)

// Tenant is one customer sharing a Fanout: its API keys and its own admin
// token. Messages accepted with a tenant's credential carry the tenant's
// name, and its admin token sees only those messages.
type Tenant struct {
	// Name is the key of the tenant in the tenants map: letters, digits,
	// '_', '-' and '.'.
	Name string `yaml:"-"`
	// Keys are the tenant's API keys, stored as SHA-256 hashes only
	// (`fanout keys new` makes a key and prints its entry). Default none.
	Keys []APIKey `yaml:"keys"`
	// AdminTokenSHA256 is the hex SHA-256 of a tenant-scoped admin token:
	// with it the admin API lists, shows and replays this tenant's
	// messages only. Default "": no tenant admin token.
	AdminTokenSHA256 string `yaml:"admin_token_sha256"`
}

// APIKey is one inbound API key of a tenant.
type APIKey struct {
	// Name identifies the key in logs, metrics and rate limits (never the
	// key itself). Required, unique within the tenant; letters, digits,
	// '_', '-' and '.'.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the key (64 hex digits, lower-cased by
	// Parse). Required, unique across tenants.
	SHA256 string `yaml:"sha256"`
}

// JWT configures the validation of inbound JWTs (routes with auth: jwt).
type JWT struct {
	// JWKSURL is where the signing keys are published (a JWK Set). An
	// https URL, or http to a loopback address. Required. The set is
	// fetched on first use, refreshed hourly, and again (rate-limited)
	// when a token names an unknown key id.
	JWKSURL string `yaml:"jwks_url"`
	// Issuer is the required "iss" claim. Required.
	Issuer string `yaml:"issuer"`
	// Audience must be one of the token's "aud" values. Required.
	Audience string `yaml:"audience"`
	// TenantClaim names the claim holding the caller's tenant. Default
	// "tenant".
	TenantClaim string `yaml:"tenant_claim"`
	// Algorithms are the accepted signature algorithms, among RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA
	// (never none or an HMAC one). Default [RS256].
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s;
	// 0 to 5m.
	Leeway Duration `yaml:"leeway"`
}

// RateLimit is a token bucket per caller and route.
type RateLimit struct {
	// RPS is the sustained rate, requests per second (may be fractional:
	// 0.5 is one every two seconds). Required, > 0.
	RPS float64 `yaml:"rps"`
	// Burst is the bucket size: how many requests may come at once.
	// Default (or 0): RPS rounded up, at least 1.
	Burst int `yaml:"burst"`
}

// JWT defaults.
const (
	defaultTenantClaim = "tenant"
	defaultJWTLeeway   = Duration(30 * time.Second)
	maxJWTLeeway       = Duration(5 * time.Minute)
	// maxRate bounds rps and burst: past it a limit is no limit.
	maxRate = 1_000_000
)

// JWTAlgorithms are the signature algorithms a JWT may be accepted with.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// setDefaults sets the JWT defaults.
func (j *JWT) setDefaults() {
	j.TenantClaim = defaultTenantClaim
	j.Algorithms = []string{"RS256"}
	j.Leeway = defaultJWTLeeway
}

// normalizeSecurity completes the security settings: tenant names, hashes
// lower-cased, default bursts and JWT values given as empty strings.
func (c *Config) normalizeSecurity() {
	for name, t := range c.Tenants {
		if t == nil {
			continue
		}
		t.Name = name
		t.AdminTokenSHA256 = strings.ToLower(t.AdminTokenSHA256)
		for i := range t.Keys {
			t.Keys[i].SHA256 = strings.ToLower(t.Keys[i].SHA256)
		}
	}
	if c.JWT != nil {
		c.JWT.TenantClaim = cmp.Or(c.JWT.TenantClaim, defaultTenantClaim)
	}
	for _, r := range c.Routes {
		if r != nil && r.RateLimit != nil && r.RateLimit.Burst == 0 && r.RateLimit.RPS > 0 && r.RateLimit.RPS <= maxRate {
			r.RateLimit.Burst = max(1, int(math.Ceil(r.RateLimit.RPS)))
		}
	}
}

// security checks the tenants and the JWT settings.
func (v *validator) security() {
	c := v.c
	var root fieldPath
	tp := root.key("tenants")
	hashes := map[string]string{} // hash → the field that has it
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		p := tp.key(name)
		if !validName(name) {
			v.add(p, "tenant name %q may only contain letters, digits, '_', '-' and '.'", name)
		}
		t := c.Tenants[name]
		if t == nil {
			continue // "acme:" declares a tenant with nothing else (a JWT tenant)
		}
		names := map[string]int{}
		for i, k := range t.Keys {
			kp := p.key("keys").index(i)
			switch first, dup := names[k.Name]; {
			case k.Name == "":
				v.add(kp.key("name"), "is required")
			case !validName(k.Name):
				v.add(kp.key("name"), "key name %q may only contain letters, digits, '_', '-' and '.'", k.Name)
			case dup:
				v.add(kp.key("name"), "key name %q is already used by keys[%d]", k.Name, first)
			default:
				names[k.Name] = i
			}
			v.sha256(kp.key("sha256"), k.SHA256, true, hashes)
		}
		v.sha256(p.key("admin_token_sha256"), t.AdminTokenSHA256, false, hashes)
	}
	if c.Admin.Token != "" {
		sum := sha256.Sum256([]byte(c.Admin.Token))
		if other, dup := hashes[hex.EncodeToString(sum[:])]; dup {
			v.add(root.key("admin").key("token"), "the admin token is also %s; every key and token must be different", other)
		}
	}
	if c.JWT != nil {
		v.jwt(root.key("jwt"), c.JWT)
	}
}

// sha256 checks a hex SHA-256 value and that no other key or token has it.
func (v *validator) sha256(p fieldPath, h string, required bool, seen map[string]string) {
	switch {
	case h == "":
		if required {
			v.add(p, "is required (the hex SHA-256 of the key; `fanout keys new` prints one)")
		}
		return
	case len(h) != 64 || !isHex(h):
		v.add(p, "must be the 64 hex digits of a SHA-256; store the hash, never the key (`fanout keys hash` prints it)")
		return
	}
	if other, dup := seen[h]; dup {
		v.add(p, "the same hash is already used by %s; every key and token must be different", other)
		return
	}
	seen[h] = p.String()
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func (v *validator) jwt(p fieldPath, j *JWT) {
	up := p.key("jwks_url")
	v.httpURL(up, j.JWKSURL)
	if u, err := url.Parse(j.JWKSURL); err == nil && u.Scheme == "http" && u.Host != "" && !loopback(u.Hostname()) {
		v.add(up, "must be an https URL (http is only allowed to a loopback address): keys fetched in clear could be replaced on the way")
	}
	if j.Issuer == "" {
		v.add(p.key("issuer"), "is required: without it a token of any issuer trusted by the key set would do")
	}
	if j.Audience == "" {
		v.add(p.key("audience"), "is required: without it a token issued for another service would do")
	}
	if j.TenantClaim == "" {
		v.add(p.key("tenant_claim"), "must not be empty")
	}
	ap := p.key("algorithms")
	if len(j.Algorithms) == 0 {
		v.add(ap, "must list at least one algorithm (%s)", orList(JWTAlgorithms))
	}
	for i, a := range j.Algorithms {
		switch {
		case slices.Contains(JWTAlgorithms, a):
			if slices.Index(j.Algorithms, a) < i {
				v.add(ap.index(i), "%s is listed twice", a)
			}
		case strings.EqualFold(a, "none"):
			v.add(ap.index(i), "\"none\" would accept unsigned tokens; list signature algorithms (%s)", orList(JWTAlgorithms))
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			v.add(ap.index(i), "%s is an HMAC algorithm, which a public key set cannot verify (and which would let a public key be used as a secret); list %s", a, orList(JWTAlgorithms))
		default:
			v.oneOf(ap.index(i), a, JWTAlgorithms...)
		}
	}
	if j.Leeway < 0 || j.Leeway > maxJWTLeeway {
		v.add(p.key("leeway"), "must be from 0s to %s, not %s", maxJWTLeeway, j.Leeway)
	}
}

// loopback reports whether host is localhost or a loopback IP address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// routeSecurity checks a route's auth, tenants, rate_limit and schema.
func (v *validator) routeSecurity(p fieldPath, r *Route) {
	c := v.c
	ap := p.key("auth")
	switch r.Auth {
	case "", AuthNone:
	case AuthAPIKey:
		if !slices.ContainsFunc(slices.Collect(maps.Values(c.Tenants)), (*Tenant).canHaveKeys) {
			v.add(ap, "auth api_key needs at least one key under tenants (`fanout keys new` makes one), or a tenant with an admin_token_sha256 to create its own (POST /v1/keys)")
		}
	case AuthJWT:
		if c.JWT == nil {
			v.add(ap, "auth jwt needs the top-level jwt settings (jwks_url, issuer, audience)")
		}
	default:
		v.oneOf(ap, string(r.Auth), string(AuthNone), string(AuthAPIKey), string(AuthJWT))
	}
	tp := p.key("tenants")
	if len(r.Tenants) > 0 && (r.Auth == "" || r.Auth == AuthNone) {
		v.add(tp, "needs auth api_key or jwt: without authentication a caller has no tenant")
	}
	seen := map[string]int{}
	for i, name := range r.Tenants {
		ep := tp.index(i)
		switch first, dup := seen[name]; {
		case !validName(name):
			v.add(ep, "tenant name %q may only contain letters, digits, '_', '-' and '.'", name)
		case dup:
			v.add(ep, "tenant %q is listed twice (also tenants[%d])", name, first)
		case r.Auth == AuthAPIKey && c.Tenants[name] == nil:
			// JWT tenants come from the token and need not be declared;
			// an API key's tenant must be.
			msg := fmt.Sprintf("unknown tenant %q", name)
			if s := closest(name, slices.Sorted(maps.Keys(c.Tenants))); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			v.add(ep, "%s", msg)
		case r.Auth == AuthAPIKey && !c.Tenants[name].canHaveKeys():
			v.add(ep, "tenant %q has no keys and no admin_token_sha256 to create one, so it cannot call a route with auth api_key", name)
		default:
			seen[name] = i
		}
	}
	if rl := r.RateLimit; rl != nil {
		rp := p.key("rate_limit")
		if !(rl.RPS > 0 && rl.RPS <= maxRate) {
			v.add(rp.key("rps"), "must be greater than 0 and at most %d, not %v", maxRate, rl.RPS)
		}
		if rl.Burst < 0 || rl.Burst > maxRate || rl.Burst == 0 && rl.RPS > 0 && rl.RPS <= maxRate {
			v.add(rp.key("burst"), "must be from 1 to %d, not %d", maxRate, rl.Burst)
		}
	}
	if r.Schema == "" && v.inFile(p.key("schema")) {
		v.add(p.key("schema"), "must be the path of a JSON Schema file, or left out")
	}
}

// SchemaPath returns the path of the route's schema file: Schema itself
// when absolute, else relative to the directory of the config file (the
// working directory for a config that was not read from a file).
func (c *Config) SchemaPath(r *Route) string {
	if r.Schema == "" || filepath.IsAbs(r.Schema) || c.File == "" {
		return r.Schema
	}
	return filepath.Join(filepath.Dir(c.File), r.Schema)
}

// compileSchemas compiles the JSON Schema of every route that has one and
// keeps it in Route.CompiledSchema; a schema that cannot be read or
// compiled is a problem at the line of its schema key. Routes whose
// schema value failed to decode are skipped.
func (c *Config) compileSchemas(skip map[string]bool) ErrorList {
	v := &validator{c: c, skip: skip}
	for i, r := range c.Routes {
		if r == nil || r.Schema == "" {
			continue
		}
		s, err := schema.Compile(c.SchemaPath(r))
		if err != nil {
			v.add(fieldPath(nil).key("routes").index(i).key("schema"), "JSON Schema %s: %v", r.Schema, err)
			continue
		}
		r.CompiledSchema = s
	}
	return v.errs
}

// canHaveKeys reports whether t has API keys in the config or may create
// its own with its admin token (self-service keys, POST /v1/keys).
func (t *Tenant) canHaveKeys() bool {
	return t != nil && (len(t.Keys) > 0 || t.AdminTokenSHA256 != "")
}
