package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hashA and hashB are SHA-256 values in hex.
const (
	hashA = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
	hashB = "b3a8e0e1f9ab1bfe3a36f231f676f78bb30a519d2b21e6c530c0eee8ebb4a5d0"
	hashC = "c775e7b757ede630cd0aa1113bd102661ab38829ca52a6422ab782862f268646"
)

// tenantsYAML is a tenants section (from the line after the config it is
// appended to): acme with key ci (hashA) and an admin token (hashC), beta
// with key ops (hashB).
var tenantsYAML = `tenants:
  acme:
    keys: [{name: ci, sha256: "` + hashA + `"}]
    admin_token_sha256: "` + hashC + `"
  beta: {keys: [{name: ops, sha256: "` + strings.ToUpper(hashB) + `"}]}
`

var jwtSection = `jwt: {jwks_url: "https://idp.example.com/jwks.json", issuer: "https://idp.example.com/", audience: fanout}
`

func TestParseSecurity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "schemas"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "signup.json"), []byte(`{"type":"object","required":["email"]}`), 0o600))
	yaml := route("async", "[crm]", "auth: api_key", "tenants: [acme]", "rate_limit: {rps: 2.5}", "schema: schemas/signup.json") +
		"  - {name: j, match: {path: /j}, mode: all, targets: [crm], auth: jwt, tenants: [from-idp], rate_limit: {rps: 100, burst: 200}}\n" +
		tenantsYAML + jwtSection
	path := filepath.Join(dir, "fanout.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := Load(path)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())

	require.Equal(t, map[string]*Tenant{
		"acme": {Name: "acme", Keys: []APIKey{{Name: "ci", SHA256: hashA}}, AdminTokenSHA256: hashC},
		"beta": {Name: "beta", Keys: []APIKey{{Name: "ops", SHA256: hashB}}},
	}, cfg.Tenants, "hashes are lower-cased")
	require.Equal(t, &JWT{
		JWKSURL: "https://idp.example.com/jwks.json", Issuer: "https://idp.example.com/", Audience: "fanout",
		TenantClaim: "tenant", Algorithms: []string{"RS256"}, Leeway: Duration(30 * time.Second),
	}, cfg.JWT, "defaults")

	r := cfg.Routes[0]
	require.Equal(t, AuthAPIKey, r.Auth)
	require.Equal(t, []string{"acme"}, r.Tenants)
	require.Equal(t, &RateLimit{RPS: 2.5, Burst: 3}, r.RateLimit, "burst defaults to rps rounded up")
	require.NotNil(t, r.CompiledSchema, "compiled at load, relative to the config file")
	require.Equal(t, filepath.Join(dir, "schemas", "signup.json"), cfg.SchemaPath(r))
	res, err := r.CompiledSchema.Validate([]byte(`{}`))
	require.NoError(t, err)
	require.NotNil(t, res)

	j := cfg.Routes[1]
	require.Equal(t, AuthJWT, j.Auth)
	require.Equal(t, []string{"from-idp"}, j.Tenants, "JWT tenants need not be declared")
	require.Equal(t, &RateLimit{RPS: 100, Burst: 200}, j.RateLimit)
	require.Nil(t, j.CompiledSchema)
}

func TestParseSecurityJWTSettings(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(route("all", "[crm]", "auth: jwt")+
		`jwt: {jwks_url: "http://127.0.0.1:9/jwks", issuer: i, audience: a, tenant_claim: org, algorithms: [ES256, EdDSA], leeway: 0s}`+"\n"), nil)
	require.NoError(t, err)
	require.Equal(t, &JWT{JWKSURL: "http://127.0.0.1:9/jwks", Issuer: "i", Audience: "a", TenantClaim: "org",
		Algorithms: []string{"ES256", "EdDSA"}}, cfg.JWT, "http to a loopback address is allowed; leeway 0 is kept")
}

func TestParseAPIKeyQuery(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(crm(`auth: {api_key: {query: api_key, value: k}}`)), nil)
	require.NoError(t, err)
	require.Equal(t, &APIKeyAuth{Query: "api_key", Value: "k"}, cfg.Targets["crm"].Auth.APIKey, "no default header with a query")
	cfg, err = Parse("fanout.yaml", []byte(crm(`auth: {api_key: {value: k}}`)), nil)
	require.NoError(t, err)
	require.Equal(t, &APIKeyAuth{Header: "X-Api-Key", Value: "k"}, cfg.Targets["crm"].Auth.APIKey)
}

func TestParseSecurityErrors(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"unknown auth", route("async", "[crm]", "auth: apikey"), "10:11: routes[0].auth", `must be none, api_key or jwt, not "apikey"; did you mean "api_key"?`},
		{"api_key without keys", route("async", "[crm]", "auth: api_key"), "10:11: routes[0].auth", "needs at least one key under tenants"},
		{"jwt without settings", route("async", "[crm]", "auth: jwt"), "10:11: routes[0].auth", "needs the top-level jwt settings"},
		{"tenants without auth", route("async", "[crm]", "tenants: [acme]") + tenantsYAML, "10:5: routes[0].tenants", "needs auth api_key or jwt"},
		{"unknown tenant", route("async", "[crm]", "auth: api_key", "tenants: [acmee]") + tenantsYAML, "11:15: routes[0].tenants[0]", `unknown tenant "acmee"; did you mean "acme"?`},
		{"tenant without keys", route("async", "[crm]", "auth: api_key", "tenants: [gamma]") + tenantsYAML + "  gamma: {}\n", "11:15: routes[0].tenants[0]", `tenant "gamma" has no keys`},
		{"tenant twice", route("async", "[crm]", "auth: api_key", "tenants: [acme, acme]") + tenantsYAML, "11:21: routes[0].tenants[1]", "listed twice"},
		{"bad tenant name in a route", route("async", "[crm]", "auth: jwt", "tenants: [a/b]") + jwtSection, "11:15: routes[0].tenants[0]", "may only contain"},
		{"rps zero", route("async", "[crm]", "rate_limit: {rps: 0}"), "10:23: routes[0].rate_limit.rps", "must be greater than 0"},
		{"rps missing", route("async", "[crm]", "rate_limit: {burst: 5}"), "10:5: routes[0].rate_limit.rps", "must be greater than 0"},
		{"rps negative", route("async", "[crm]", "rate_limit: {rps: -1, burst: 1}"), "10:23: routes[0].rate_limit.rps", "must be greater than 0"},
		{"burst negative", route("async", "[crm]", "rate_limit: {rps: 1, burst: -1}"), "10:33: routes[0].rate_limit.burst", "must be from 1"},
		{"rps too high", route("async", "[crm]", "rate_limit: {rps: 1e9, burst: 1}"), "10:23: routes[0].rate_limit.rps", "at most 1000000"},
		{"rate_limit unknown key", route("async", "[crm]", "rate_limit: {rps: 1, brust: 2}"), "10:26: routes[0].rate_limit.brust", `did you mean "burst"?`},
		{"schema empty", route("async", "[crm]", `schema: ""`), "10:13: routes[0].schema", "must be the path of a JSON Schema file"},
		{"schema missing", route("async", "[crm]", "schema: /nonexistent/s.json"), "10:13: routes[0].schema", "does not exist"},
		{"schema is a device", route("async", "[crm]", "schema: /dev/zero"), "10:13: routes[0].schema", "not a regular file"},
		{"tenant name", route("async", "[crm]") + "tenants:\n  \"a b\": {}\n", "11:3: tenants[\"a b\"]", "may only contain"},
		{"unknown tenant key", route("async", "[crm]") + "tenants:\n  acme: {key: []}\n", "11:10: tenants.acme.key", `did you mean "keys"?`},
		{"key without name", route("async", "[crm]") + "tenants:\n  acme: {keys: [{sha256: \"" + hashA + "\"}]}\n", "11:17: tenants.acme.keys[0].name", "is required"},
		{"key without hash", route("async", "[crm]") + "tenants:\n  acme: {keys: [{name: ci}]}\n", "11:17: tenants.acme.keys[0].sha256", "is required"},
		{"key in clear", route("async", "[crm]") + "tenants:\n  acme: {keys: [{name: ci, sha256: fo_secret}]}\n", "11:36: tenants.acme.keys[0].sha256", "never the key"},
		{"hash not hex", route("async", "[crm]") + "tenants:\n  acme: {keys: [{name: ci, sha256: \"" + strings.Repeat("z", 64) + "\"}]}\n", "11:36: tenants.acme.keys[0].sha256", "64 hex digits"},
		{"key name twice", route("async", "[crm]") + "tenants:\n  acme: {keys: [{name: ci, sha256: \"" + hashA + "\"}, {name: ci, sha256: \"" + hashB + "\"}]}\n", "11:112: tenants.acme.keys[1].name", "already used"},
		{"hash twice across tenants", route("async", "[crm]") + "tenants:\n  a: {keys: [{name: x, sha256: \"" + hashA + "\"}]}\n  b: {admin_token_sha256: \"" + hashA + "\"}\n", "12:27: tenants.b.admin_token_sha256", "already used by tenants.a.keys[0].sha256"},
		{"admin token not a hash", route("async", "[crm]") + "tenants:\n  a: {admin_token_sha256: secret}\n", "11:27: tenants.a.admin_token_sha256", "64 hex digits"},
		{"jwt without issuer", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/jwks\", audience: a}\n", "10:1: jwt.issuer", "is required"},
		{"jwt without audience", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/jwks\", issuer: i}\n", "10:1: jwt.audience", "is required"},
		{"jwt without jwks_url", route("async", "[crm]") + "jwt: {issuer: i, audience: a}\n", "10:1: jwt.jwks_url", "is required"},
		{"jwks over http", route("async", "[crm]") + "jwt: {jwks_url: \"http://idp.example.com/jwks\", issuer: i, audience: a}\n", "10:17: jwt.jwks_url", "must be an https URL"},
		{"jwks not a URL", route("async", "[crm]") + "jwt: {jwks_url: \"idp/jwks\", issuer: i, audience: a}\n", "10:17: jwt.jwks_url", "absolute http"},
		{"alg none", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, algorithms: [none]}\n", "10:69: jwt.algorithms[0]", "unsigned"},
		{"alg HS256", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, algorithms: [RS256, HS256]}\n", "10:76: jwt.algorithms[1]", "HMAC"},
		{"alg unknown", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, algorithms: [RS257]}\n", "10:69: jwt.algorithms[0]", `did you mean "RS256"?`},
		{"alg twice", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, algorithms: [RS256, RS256]}\n", "10:76: jwt.algorithms[1]", "listed twice"},
		{"no algorithms", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, algorithms: []}\n", "10:56: jwt.algorithms", "at least one"},
		{"leeway too long", route("async", "[crm]") + "jwt: {jwks_url: \"https://i/j\", issuer: i, audience: a, leeway: 1h}\n", "10:64: jwt.leeway", "must be from 0s to 5m"},
		{"admin token reused by a tenant", "admin: {token: abc}\n" + route("async", "[crm]") + "tenants:\n  a: {admin_token_sha256: \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}\n", "1:16: admin.token", "also tenants.a.admin_token_sha256"},
		{"api_key header and query", crm(`auth: {api_key: {header: X-K, query: k, value: v}}`), "4:12: targets.crm.auth.api_key", "not both"},
		{"api_key bad query name", crm(`auth: {api_key: {query: "a&b", value: v}}`), "4:29: targets.crm.auth.api_key.query", "not a valid query parameter name"},
	})
}

func TestParseSchemaErrorNamesTheSchemaKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"type": 5}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"type": `), 0o600))
	yaml := route("async", "[crm]", "schema: bad.json") + "  - {name: s, match: {path: /s}, mode: async, targets: [crm], schema: broken.json}\n"
	path := filepath.Join(dir, "fanout.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	_, err := Load(path)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, 2, "%v", err)
	require.True(t, strings.HasPrefix(list[0].Error(), path+":10:13: routes[0].schema: JSON Schema bad.json: "), list[0].Error())
	require.True(t, strings.HasPrefix(list[1].Error(), path+":11:71: routes[1].schema: JSON Schema broken.json: "), list[1].Error())
	require.Contains(t, list[1].Msg, "not valid JSON")
}
