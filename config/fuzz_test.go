package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or hang, that a config
// it accepts passes Validate, that every problem it reports names the
// file, a line and a column, and that it is deterministic.
//
//	go test ./config -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	seeds := []string{
		specExample,
		"",
		"listen: \":8080\"\n",
		route("all", "[crm, {name: analytics, optional: true}]", "require: 1", "fail_fast: true"),
		route("mirror", "[crm, analytics]", "primary: crm", "sample_percent: 50", "durable: false"),
		route("race", "[crm, analytics]", "hedge_after: 50ms"),
		route("settled", "[crm, billing]", "on_failure: queue", "content_type: json", "max_body: 1.5MiB"),
		route("steps", "[crm]", "steps: []"),
		stepsRoute("steps: [{name: a, target: crm, body: '{{ json .request.body }}'}, {name: b, target: analytics, after: [a], path: '/x/{{ .request.path_params.id }}', headers: {Authorization: 'Bearer {{ .steps.a.body.token }}'}}]", "respond: b"),
		stepsRoute("steps: [{name: a, target: crm, after: [b]}, {name: b, target: crm, after: [a], body: '{{ .steps.c }}'}]", "respond: c", "async: true"),
		route("all", `[{name: crm, body: '{"c": {{ json .request.body }}}'}, analytics]`),
		route("mirror", "[crm]", "primary: billing", "sample_percent: .nan"),
		route("all", "[crm, crm, ghost]", "require: 9", "modee: x"),
		crm("timeout: 1d12h", "retry: {initial: 2m, max: 1m, retry_status: [99, 500]}", `headers: {X-Api-Key: "${KEY}", "X Bad": "a\nb"}`),
		crm("auth: {bearer: t, basic: {username: u}}", "auth: {hmac: {standard_webhooks_secret: whsec_AAAA}}"),
		crm(`auth: {oauth2_client_credentials: {token_url: "https://a/t", client_id: c, client_secret: "${S}", scopes: [a, "b c"]}}`),
		"x-a: &a {timeout: 2s}\ntargets:\n  t: {<<: *a, url: \"http://t/\"}\n  u: {<<: [*a, {url: x}]}\n",
		"routes:\n  - &r {name: r, match: {path: \"/u/{id}/{rest...}\", host: h.example}, mode: async, targets: [t]}\n  - *r\n",
		"a: &a {b: *a}\n",
		"admin: &a {token: t, <<: *a}\n",
		"store: {driver: postgres}\nlog: {level: loud, format: xml}\ndelivery: {retention: 0s, lease_timeout: 1ns}\n",
		"listen: a: b\n",
		"targets:\n  crm: {url: x\n",
		"---\nlisten: x\n---\n",
		"- 1\n- 2\n",
		"{[a]: b, ? {c: d} : e}\n",
		"admin: {token: \"${A}${B\"}\n",
		"routes: [~, {}, [], x]\ntargets: {a: ~, b: [], c: x}\n",
		"%YAML 1.2\n---\nlisten: !!binary aGk=\n",
		// Inbound security (security.go).
		route("async", "[crm]", "auth: api_key", "tenants: [acme, beta]", "rate_limit: {rps: 0.5}", "schema: /dev/null") +
			"tenants:\n  acme: {keys: [{name: ci, sha256: \"" + strings.Repeat("ab", 32) + "\"}], admin_token_sha256: \"${A1}\"}\n  beta: ~\n",
		route("all", "[crm]", "auth: jwt", "tenants: [x]", "rate_limit: {rps: 1e9, burst: -1}") +
			"jwt: {jwks_url: \"http://idp/jwks\", issuer: i, audience: a, algorithms: [none, HS256, RS256], leeway: 1h}\n",
		crm(`auth: {api_key: {header: X-K, query: "a&b", value: "${KEY}"}}`),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lookup := func(name string) (string, bool) {
		// Some variables are set, one of them to an empty value.
		switch {
		case name == "EMPTY":
			return "", true
		case strings.HasPrefix(name, "A") || name == "KEY" || name == "S":
			return "v-" + name, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, lookup)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config and nil error")
			}
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses:\n%v\ninput:\n%s", verr, data)
			}
			return
		}
		if cfg != nil {
			t.Fatal("a config with an error")
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
		}
		for _, e := range list {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Col < 1 || e.Msg == "" {
				t.Fatalf("error without file, position or message: %#v", e)
			}
		}
		_, again := Parse("fuzz.yaml", data, lookup)
		if again == nil || again.Error() != err.Error() {
			t.Fatalf("not deterministic:\n%v\nthen:\n%v", err, again)
		}
	})
}
