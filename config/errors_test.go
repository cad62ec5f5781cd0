package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// threeTargets starts a config with three valid targets; lines 1-4.
const threeTargets = `targets:
  crm: {url: "https://crm.example.com/in"}
  analytics: {url: "http://127.0.0.1:18082/events"}
  billing: {url: "https://billing.example.com/in"}
`

// route returns threeTargets and one route (from line 5) with the given
// mode and targets, then extra lines: "name: r" is on line 6,
// "match: {path: /r}" on line 7, "mode" on 8, "targets" on 9 and the
// extra lines from line 10, each indented to column 5.
func route(mode, targets string, extra ...string) string {
	var b strings.Builder
	b.WriteString(threeTargets)
	b.WriteString("routes:\n  - name: r\n    match: {path: /r}\n")
	fmt.Fprintf(&b, "    mode: %s\n    targets: %s\n", mode, targets)
	for _, l := range extra {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// crm starts a config with one target, crm, whose url is on line 3; extra
// lines follow from line 4, indented to column 5.
func crm(extra ...string) string {
	s := "targets:\n  crm:\n    url: https://crm.example.com/in\n"
	for _, l := range extra {
		s += "    " + l + "\n"
	}
	return s
}

// errorCase is a config with exactly one problem: at is
// "line:col: field" and msg a substring of the message.
type errorCase struct {
	name string
	yaml string
	at   string
	msg  string
}

func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse("fanout.yaml", []byte(tc.yaml), nil)
			require.Nil(t, cfg)
			var list ErrorList
			require.ErrorAs(t, err, &list, "config:\n%s", tc.yaml)
			require.Len(t, list, 1, "want one error, got:\n%v", err)
			prefix := "fanout.yaml:" + tc.at
			if !strings.HasSuffix(tc.at, ":") {
				prefix += ": "
			}
			require.True(t, strings.HasPrefix(list[0].Error(), prefix), "want prefix %q, got:\n%v", prefix, err)
			require.Contains(t, list[0].Msg, tc.msg)
		})
	}
}

func TestParseErrorsTopLevel(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"listen not host:port", `listen: nowhere`, "1:9: listen", `must be host:port, such as ":8080" or "127.0.0.1:8080", not "nowhere"`},
		{"listen port out of range", `listen: ":99999"`, "1:9: listen", `port "99999" must be a number from 0 to 65535`},
		{"listen not a string", `listen: [":80"]`, "1:9: listen", `must be a string, not a list`},
		{"admin listen", `admin: {listen: localhost}`, "1:17: admin.listen", `must be host:port, such as ":8080" or "127.0.0.1:8080", not "localhost" (or "off")`},
		{"admin listen same as listen", "listen: \":9000\"\nadmin: {listen: \":9000\"}", "2:17: admin.listen", `must differ from listen (":9000")`},
		{"admin pprof not a bool", `admin: {pprof: maybe}`, "1:16: admin.pprof", `must be true or false, not "maybe"`},
		{"store driver", `store: {driver: mysql, dsn: x}`, "1:17: store.driver", `must be sqlite or postgres, not "mysql"`},
		{"store dsn empty", `store: {driver: postgres, dsn: ""}`, "1:32: store.dsn", `is required with driver postgres`},
		{"store timeout", `store: {timeout: 0s}`, "1:18: store.timeout", `must be greater than 0, not 0s`},
		{"store timeout negative", "store:\n  driver: postgres\n  dsn: x\n  timeout: -1s", "4:12: store.timeout", `invalid duration "-1s": must not be negative`},
		{"log level", `log: {level: verbose}`, "1:14: log.level", `must be debug, info, warn or error, not "verbose"`},
		{"log format typo", `log: {format: jsno}`, "1:15: log.format", `must be json, text or auto, not "jsno"; did you mean "json"?`},
		{"retention", `delivery: {retention: 0s}`, "1:23: delivery.retention", `must be greater than 0, not 0s`},
		{"dedup window", `delivery: {dedup_window: 0d}`, "1:26: delivery.dedup_window", `must be greater than 0, not 0s`},
		{"lease timeout", `delivery: {lease_timeout: 0s}`, "1:27: delivery.lease_timeout", `must be greater than 0`},
		{"heartbeat timeout", `delivery: {heartbeat_timeout: 1s}`, "1:31: delivery.heartbeat_timeout", `must be at least 2s (two heartbeats), not 1s`},
		{"shutdown timeout", `shutdown_timeout: 0s`, "1:19: shutdown_timeout", `must be greater than 0`},
		{"shutdown timeout not a duration", `shutdown_timeout: 30`, "1:19: shutdown_timeout", `invalid duration "30": missing unit`},
		{"targets not a mapping", `targets: [crm]`, "1:10: targets", `must be a mapping (key: value), not a list`},
		{"routes not a list", `routes: {name: r}`, "1:9: routes", `must be a list, not a mapping`},
		{"route not a mapping", `routes: [r]`, "1:10: routes[0]", `must be a mapping (key: value), not "r"`},
		{"config not a mapping", `just a string`, "1:1:", `a config must be a mapping of keys such as listen, targets and routes, not "just a string"`},
		{"key not a string", `{[a]: b}`, "1:2:", `a key must be a string, not a list`},
		{"unknown key", `listn: ":80"`, "1:1: listn", `unknown key "listn"; did you mean "listen"?`},
		{"unknown key far from any", `color: blue`, "1:1: color", `unknown key "color"`},
		{"unknown nested key", `admin: {tokn: x}`, "1:9: admin.tokn", `unknown key "tokn"; did you mean "token"?`},
		{"duplicate key", "listen: \":80\"\nlisten: \":81\"", "2:1: listen", `duplicate key "listen" (first at line 1)`},
	})
}

func TestParseErrorsTargets(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"url missing", "targets:\n  crm:\n    timeout: 5s\n", "2:3: targets.crm.url", "is required"},
		{"url missing, empty target", "targets:\n  crm:\n", "2:3: targets.crm.url", "is required"},
		{"url relative", "targets:\n  crm: {url: /in}\n", "2:14: targets.crm.url", `must be an absolute http:// or https:// URL, not "/in"`},
		{"url scheme", "targets:\n  crm: {url: ftp://x}\n", "2:14: targets.crm.url", `must be an absolute http:// or https:// URL, not "ftp://x"`},
		{"url without host", "targets:\n  crm: {url: \"http:///in\"}\n", "2:14: targets.crm.url", `must include a host`},
		{"url unparsable", "targets:\n  crm: {url: \"http://[::1\"}\n", "2:14: targets.crm.url", `"http://[::1" is not a valid URL: missing ']' in host`},
		{"target name", "targets:\n  crm/v2: {url: \"http://x/\"}\n", `2:3: targets["crm/v2"]`, `target name "crm/v2" may only contain letters, digits, '_', '-' and '.'`},
		{"duplicate target", "targets:\n  crm: {url: \"http://a/\"}\n  crm: {url: \"http://b/\"}\n", "3:3: targets.crm", `duplicate key "crm" (first at line 2)`},
		{"target not a mapping", "targets:\n  crm: http://a/\n", "2:8: targets.crm", `must be a mapping (key: value), not "http://a/"`},
		{"unknown target key", crm("timout: 5s"), "4:5: targets.crm.timout", `unknown key "timout"; did you mean "timeout"?`},
		{"method", crm(`method: "GE T"`), "4:13: targets.crm.method", `"GE T" is not a valid HTTP method`},
		{"header name", crm(`headers: {"X Bad": v}`), `4:24: targets.crm.headers["X Bad"]`, `"X Bad" is not a valid header name`},
		{"header value", crm(`headers: {X-A: "a\nb"}`), "4:20: targets.crm.headers.X-A", `the value must not contain control characters`},
		{"headers not a mapping", crm(`headers: [X-A]`), "4:14: targets.crm.headers", `must be a mapping (key: value), not a list`},
		{"timeout zero", crm("timeout: 0s"), "4:14: targets.crm.timeout", "must be greater than 0, not 0s"},
		{"timeout invalid", crm("timeout: soon"), "4:14: targets.crm.timeout", `invalid duration "soon"`},
		{"timeout negative", crm("timeout: -5s"), "4:14: targets.crm.timeout", `invalid duration "-5s": must not be negative`},
		{"retry initial above max", crm("retry: {initial: 2m, max: 1m}"), "4:22: targets.crm.retry.initial", "must not exceed max (2m > 1m)"},
		{"retry initial zero", crm("retry: {initial: 0s}"), "4:22: targets.crm.retry.initial", "must be greater than 0"},
		{"retry max zero", crm("retry: {max: 0s}"), "4:18: targets.crm.retry.max", "must be greater than 0"},
		{"retry max_attempts", crm("retry: {max_attempts: 0}"), "4:27: targets.crm.retry.max_attempts", "must be at least 1, not 0"},
		{"retry sync_max_attempts", crm("retry: {sync_max_attempts: 0}"), "4:32: targets.crm.retry.sync_max_attempts", "must be at least 1, not 0"},
		{"retry max_age", crm("retry: {max_age: 0s}"), "4:22: targets.crm.retry.max_age", "must be greater than 0"},
		{"retry_status range", crm("retry: {retry_status: [500, 99]}"), "4:33: targets.crm.retry.retry_status[1]", "must be an HTTP status from 100 to 599, not 99"},
		{"retry_status not an int", crm("retry: {retry_status: [5xx]}"), "4:28: targets.crm.retry.retry_status[0]", `must be an integer, not "5xx"`},
		{"retry unknown key", crm("retry: {intial: 1s}"), "4:13: targets.crm.retry.intial", `unknown key "intial"; did you mean "initial"?`},
		{"retry_all_4xx not a bool", crm("retry: {retry_all_4xx: 1}"), "4:28: targets.crm.retry.retry_all_4xx", `must be true or false, not "1"`},
		{"max_in_flight zero", crm("max_in_flight: 0"), "4:20: targets.crm.max_in_flight", "must be at least 1, not 0"},
		{"max_in_flight not an int", crm("max_in_flight: lots"), "4:20: targets.crm.max_in_flight", `must be an integer, not "lots"`},
		{"redact", crm(`redact: ["a b"]`), "4:14: targets.crm.redact[0]", `"a b" is not a valid header name`},
		{"auth empty", crm("auth: {}"), "4:5: targets.crm.auth", "must set one of bearer, basic, api_key, oauth2_client_credentials or hmac"},
		{"auth twice", crm("auth: {bearer: t, basic: {username: u}}"), "4:5: targets.crm.auth", "must set only one of bearer, basic, api_key, oauth2_client_credentials or hmac, not bearer and basic"},
		{"auth unknown kind", crm("auth: {jwt: x, bearer: t}"), "4:12: targets.crm.auth.jwt", `unknown key "jwt"`},
		{"basic username", crm("auth: {basic: {password: p}}"), "4:12: targets.crm.auth.basic.username", "is required"},
		{"api_key value", crm("auth: {api_key: {header: X-Key}}"), "4:12: targets.crm.auth.api_key.value", "is required"},
		{"api_key header", crm(`auth: {api_key: {header: "X Key", value: v}}`), "4:30: targets.crm.auth.api_key.header", `"X Key" is not a valid header name`},
		{"oauth2 token_url", crm("auth: {oauth2_client_credentials: {token_url: /token, client_id: c, client_secret: s}}"), "4:51: targets.crm.auth.oauth2_client_credentials.token_url", `must be an absolute http:// or https:// URL, not "/token"`},
		{"oauth2 client_secret", crm(`auth: {oauth2_client_credentials: {token_url: "https://a/t", client_id: c}}`), "4:12: targets.crm.auth.oauth2_client_credentials.client_secret", "is required"},
		{"oauth2 scope", crm(`auth: {oauth2_client_credentials: {token_url: "https://a/t", client_id: c, client_secret: s, scopes: ["a b"]}}`), "4:107: targets.crm.auth.oauth2_client_credentials.scopes[0]", `"a b" is not a valid OAuth 2.0 scope`},
		{"hmac secret", crm(`auth: {hmac: {standard_webhooks_secret: "whsec_!!!"}}`), "4:45: targets.crm.auth.hmac.standard_webhooks_secret", "must be base64"},
		{"hmac secret list", crm(`auth: {hmac: {standard_webhooks_secret: [whsec_AAAA, "!!!"]}}`), "4:58: targets.crm.auth.hmac.standard_webhooks_secret[1]", "must be base64"},
		{"hmac secret list of one", crm(`auth: {hmac: {standard_webhooks_secret: ["!!!"]}}`), "4:19: targets.crm.auth.hmac.standard_webhooks_secret", "must be base64"},
		{"hmac secret list empty", crm(`auth: {hmac: {standard_webhooks_secret: []}}`), "4:19: targets.crm.auth.hmac.standard_webhooks_secret", "is required"},
		{"hmac secret twice", crm(`auth: {hmac: {standard_webhooks_secret: [whsec_AAAA, AAAA]}}`), "4:58: targets.crm.auth.hmac.standard_webhooks_secret[1]", "is the same secret as [0]"},
		{"hmac secret mapping", crm(`auth: {hmac: {standard_webhooks_secret: {a: b}}}`), "4:45: targets.crm.auth.hmac.standard_webhooks_secret", "must be a secret or a list of secrets, not a mapping"},
		{"hmac secret list item", crm(`auth: {hmac: {standard_webhooks_secret: [whsec_AAAA, [x]]}}`), "4:58: targets.crm.auth.hmac.standard_webhooks_secret[1]", "must be a string, not a list"},
	})
}

func TestParseErrorsRoutes(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"name missing", threeTargets + "routes:\n  - match: {path: /r}\n    mode: all\n    targets: [crm]\n", "6:5: routes[0].name", "is required"},
		{"name invalid", threeTargets + "routes:\n  - name: \"my route\"\n    match: {path: /r}\n    mode: all\n    targets: [crm]\n", "6:11: routes[0].name", `route name "my route" may only contain letters, digits, '_', '-' and '.'`},
		{"name duplicate", route("all", "[crm]") + "  - name: r\n    match: {path: /other}\n    mode: all\n    targets: [crm]\n", "10:11: routes[1].name", `route name "r" is already used by routes[0] (line 6)`},
		{"mode missing", threeTargets + "routes:\n  - name: r\n    match: {path: /r}\n    targets: [crm]\n", "6:5: routes[0].mode", "is required (async, all, settled, race, mirror or steps)"},
		{"mode unknown", route("fanout", "[crm]"), "8:11: routes[0].mode", `must be async, all, settled, race, mirror or steps, not "fanout"`},
		{"mode typo", route("mirorr", "[crm, analytics]"), "8:11: routes[0].mode", `did you mean "mirror"?`},
		{"targets on steps", route("steps", "[crm]", "steps: [{name: auth, target: crm}]", "respond: auth"), "9:5: routes[0].targets", "is not used with mode steps: each step names its target"},
		{"steps key on another mode", route("all", "[crm]", "steps: []"), "10:5: routes[0].steps", "is only allowed with mode steps, not all"},
		{"unknown key", route("all", "[crm]", "modee: all"), "10:5: routes[0].modee", `unknown key "modee"; did you mean "mode"?`},
		{"unknown key camelCase", route("all", "[crm]", "maxBody: 1MiB"), "10:5: routes[0].maxBody", `unknown key "maxBody"; did you mean "max_body"?`},
		{"duplicate key", route("all", "[crm]", "mode: race"), "10:5: routes[0].mode", `duplicate key "mode" (first at line 8)`},
		{"targets empty", route("all", "[]"), "9:5: routes[0].targets", "must list at least one target"},
		{"targets missing", threeTargets + "routes:\n  - name: r\n    match: {path: /r}\n    mode: all\n", "6:5: routes[0].targets", "must list at least one target"},
		{"targets not a list", route("all", "crm"), "9:14: routes[0].targets", `must be a list, not "crm"`},
		{"target unknown", route("all", "[crm, crmm]"), "9:20: routes[0].targets[1]", `unknown target "crmm"; did you mean "crm"?`},
		{"target listed twice", route("all", "[crm, crm]"), "9:20: routes[0].targets[1]", `target "crm" is listed twice (also targets[0])`},
		{"target is a list", route("all", "[[crm]]"), "9:15: routes[0].targets[0]", `must be a target name or a mapping {name: ..., optional: true}, not a list`},
		{"target unknown key", route("all", "[{name: crm, opt: true}]"), "9:27: routes[0].targets[0].opt", `unknown key "opt"`},
		{"target name missing", route("all", "[{optional: true}]"), "9:15: routes[0].targets[0]", "the target name is required"},
		{"optional on race", route("race", "[crm, {name: analytics, optional: true}]"), "9:48: routes[0].targets[1].optional", "is only allowed with mode all, not race"},
		{"require on settled", route("settled", "[crm, analytics]", "require: 1"), "10:14: routes[0].require", "is only allowed with mode all, not settled"},
		{"require zero", route("all", "[crm, analytics]", "require: 0"), "10:14: routes[0].require", "must be at least 1, not 0"},
		{"require negative", route("all", "[crm, analytics]", "require: -1"), "10:14: routes[0].require", "must be at least 1, not -1"},
		{"require too many", route("all", "[crm, analytics]", "require: 3"), "10:14: routes[0].require", "is 3 but the route has 2 target(s)"},
		{"fail_fast on settled", route("settled", "[crm]", "fail_fast: true"), "10:16: routes[0].fail_fast", "is only allowed with mode all, not settled"},
		{"fail_fast not a bool", route("all", "[crm]", "fail_fast: yes"), "10:16: routes[0].fail_fast", `must be true or false, not "yes"`},
		{"hedge_after on all", route("all", "[crm]", "hedge_after: 50ms"), "10:18: routes[0].hedge_after", "is only allowed with mode race, not all"},
		{"primary missing", route("mirror", "[crm, analytics]"), "6:5: routes[0].primary", "is required with mode mirror"},
		{"primary not listed", route("mirror", "[crm, analytics]", "primary: billing"), "10:14: routes[0].primary", `"billing" is not one of the route's targets`},
		{"mirror without copies", route("mirror", "[crm]", "primary: crm"), "9:5: routes[0].targets", `mode mirror needs at least one target besides the primary "crm"`},
		{"primary on race", route("race", "[crm]", "primary: crm"), "10:14: routes[0].primary", "is only allowed with mode mirror, not race"},
		{"sample_percent on all", route("all", "[crm]", "sample_percent: 50"), "10:21: routes[0].sample_percent", "is only allowed with mode mirror, not all"},
		{"sample_percent range", route("mirror", "[crm, analytics]", "primary: crm", "sample_percent: 150"), "11:21: routes[0].sample_percent", "must be from 0 to 100, not 150"},
		{"sample_percent negative", route("mirror", "[crm, analytics]", "primary: crm", "sample_percent: -0.5"), "11:21: routes[0].sample_percent", "must be from 0 to 100, not -0.5"},
		{"sample_percent not a number", route("mirror", "[crm, analytics]", "primary: crm", "sample_percent: half"), "11:21: routes[0].sample_percent", `must be a number, not "half"`},
		{"sample_percent NaN", route("mirror", "[crm, analytics]", "primary: crm", "sample_percent: NaN"), "11:21: routes[0].sample_percent", `must be a number, not "NaN"`},
		{"durable on async", route("async", "[crm]", "durable: true"), "10:14: routes[0].durable", "is only allowed with mode mirror, not async"},
		{"on_failure value", route("all", "[crm]", "on_failure: retry"), "10:17: routes[0].on_failure", `must be "queue" or left out, not "retry"`},
		{"on_failure on race", route("race", "[crm]", "on_failure: queue"), "10:17: routes[0].on_failure", "is only allowed with mode all and settled, not race"},
		{"content_type", route("all", "[crm]", "content_type: xml"), "10:19: routes[0].content_type", `must be "json" or left out, not "xml"`},
		{"max_body zero", route("all", "[crm]", "max_body: 0"), "10:15: routes[0].max_body", "must be greater than 0, not 0"},
		{"max_body invalid", route("all", "[crm]", "max_body: 1 megabyte"), "10:15: routes[0].max_body", `invalid size "1 megabyte"`},
		{"max_response_body invalid", route("all", "[crm]", "max_response_body: -1"), "10:24: routes[0].max_response_body", `invalid size "-1": must not be negative`},
		{"deadline zero", route("all", "[crm]", "deadline: 0s"), "10:15: routes[0].deadline", "must be greater than 0, not 0s"},
		{"match missing", threeTargets + "routes:\n  - name: r\n    mode: all\n    targets: [crm]\n", "6:5: routes[0].match.path", "is required"},
		{"match method", route("all", "[crm]", "match: {method: \"BAD METHOD\", path: /m}")[:0] + threeTargets + "routes:\n  - name: r\n    match: {method: \"BAD METHOD\", path: /r}\n    mode: all\n    targets: [crm]\n", "7:21: routes[0].match.method", `"BAD METHOD" is not a valid HTTP method`},
		{"match unknown key", strings.Replace(route("all", "[crm]"), "{path: /r}", "{path: /r, methd: GET}", 1), "7:23: routes[0].match.methd", `unknown key "methd"; did you mean "method"?`},
		{"path missing", strings.Replace(route("all", "[crm]"), "{path: /r}", "{method: PUT}", 1), "7:5: routes[0].match.path", "is required"},
		{"path relative", strings.Replace(route("all", "[crm]"), "{path: /r}", "{path: r}", 1), "7:19: routes[0].match.path", `must start with "/", not "r"`},
		{"path partial wildcard", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/users/id{id}"}`, 1), "7:19: routes[0].match.path", `segment "id{id}": a wildcard must be a whole segment, {name} or {name...}`},
		{"path wildcard name", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/users/{1id}"}`, 1), "7:19: routes[0].match.path", `wildcard name "1id" must be letters, digits and '_', not starting with a digit`},
		{"path empty wildcard", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/users/{}"}`, 1), "7:19: routes[0].match.path", `wildcard name "" must be`},
		{"path rest not last", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/files/{p...}/x"}`, 1), "7:19: routes[0].match.path", `a {name...} wildcard must be the last segment`},
		{"path wildcard twice", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/a/{x}/{x}"}`, 1), "7:19: routes[0].match.path", `wildcard name "x" is used twice`},
		{"path empty segment", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: /a//b}`, 1), "7:19: routes[0].match.path", `must not contain an empty segment ("//")`},
		{"path dot segment", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: /a/../b}`, 1), "7:19: routes[0].match.path", `must not contain a ".." segment`},
		{"path query", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/a?b=1"}`, 1), "7:19: routes[0].match.path", `must not contain '?'`},
		{"host port", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: /r, host: "api.example.com:8443"}`, 1), "7:29: routes[0].match.host", `must be a host name without a port, not "api.example.com:8443"`},
		{"host scheme", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: /r, host: "https://api.example.com"}`, 1), "7:29: routes[0].match.host", `must be a host name without a scheme`},
		{"host invalid", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: /r, host: "api..example.com"}`, 1), "7:29: routes[0].match.host", `"api..example.com" is not a valid host name`},
		{"duplicate match", strings.Replace(route("all", "[crm]"), "{path: /r}", `{path: "/users/{id}"}`, 1) + "  - name: r2\n    match: {method: post, path: \"/users/{name}\"}\n    mode: async\n    targets: [crm]\n", "11:5: routes[1].match", `route "r" already matches POST /users/{name} (line 7)`},
	})
}

func TestParseSyntaxErrors(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"unterminated flow mapping", "targets:\n  crm: {url: x\nroutes: []\n", "2:1:", "invalid YAML: did not find expected ',' or '}'"},
		{"unquoted wildcard in a flow mapping", "listen: \":80\"\nroutes:\n  - {name: r, match: {path: /users/{id}}}\n", "3:1:", "invalid YAML: did not find expected ',' or '}'"},
		{"bad indentation", "admin:\n  listen: \":1\"\n token: x\n", "3:1:", "invalid YAML: did not find expected key"},
		{"mapping in a scalar", "listen: a: b\n", "1:1:", "invalid YAML: mapping values are not allowed in this context"},
		{"mapping in a scalar, later line", "listen: \":80\"\nstore: a: b\n", "2:1:", "invalid YAML: mapping values are not allowed in this context"},
		{"tab", "admin:\n\tlisten: x\n", "2:1:", "invalid YAML: found character that cannot start any token"},
		{"unknown anchor", "listen: \":80\"\nadmin: *nope\n", "2:8:", "invalid YAML: unknown anchor 'nope' referenced"},
		{"several documents", "listen: \":80\"\n---\nlisten: \":81\"\n", "2:1:", "the file holds several YAML documents"},
	})
}

func TestParseEnvErrors(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{"missing variable", crm(`headers: {X-Api-Key: "${ANALYTICS_KEY}"}`), "4:26: targets.crm.headers.X-Api-Key", "environment variable ANALYTICS_KEY is not set"},
		{"missing variable in a duration", crm("timeout: ${CRM_TIMEOUT}"), "4:14: targets.crm.timeout", "environment variable CRM_TIMEOUT is not set"},
		{"missing variable in a route target", route("all", `["${T}"]`), "9:15: routes[0].targets[0]", "environment variable T is not set"},
		{"unterminated", `admin: {token: "${TOKEN"}`, "1:16: admin.token", `unterminated "${" (write "$$" for a literal "$")`},
		{"invalid name", `admin: {token: "${TO-KEN}"}`, "1:16: admin.token", `invalid environment variable name "TO-KEN"`},
		{"empty name", `admin: {token: "x${}y"}`, "1:16: admin.token", `invalid environment variable name ""`},
	})

	// Every missing variable is reported, each once.
	_, err := Parse("fanout.yaml", []byte(`admin: {token: "${A}:${B}:${A}"}`), nil)
	require.EqualError(t, err, "fanout.yaml:1:16: admin.token: environment variable A is not set\n"+
		"fanout.yaml:1:16: admin.token: environment variable B is not set")
}

func TestParseErrorsAreNotRepeated(t *testing.T) {
	t.Parallel()

	// A value that cannot be decoded is reported once, not again by the
	// validation of what it left behind.
	_, err := Parse("fanout.yaml", []byte(route("all", "crm")), nil)
	require.EqualError(t, err, `fanout.yaml:9:14: routes[0].targets: must be a list, not "crm"`)

	_, err = Parse("fanout.yaml", []byte(crm(`headers: {X-Api-Key: "${KEY}"}`)+"    redact: ${R}\n"), nil)
	require.EqualError(t, err, "fanout.yaml:4:26: targets.crm.headers.X-Api-Key: environment variable KEY is not set\n"+
		"fanout.yaml:5:13: targets.crm.redact: must be a list, not \"${R}\"")
}

func TestParseTooManyErrors(t *testing.T) {
	t.Parallel()

	var b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&b, "unknown%d: x\n", i)
	}
	_, err := Parse("fanout.yaml", []byte(b.String()), nil)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, maxErrors+1)
	require.Equal(t, "fanout.yaml:201:1: too many errors; stopping here", list[maxErrors].Error())
}

func TestParseAliasExpansionIsBounded(t *testing.T) {
	t.Parallel()

	// Each alias expands to a whole route: a small file, many values.
	var b strings.Builder
	b.WriteString("targets: {a: {url: 'http://a/'}}\nx-route: &r {name: r, match: {method: POST, path: /r, host: h}, mode: all, targets: [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a]}\nroutes: [")
	for i := range 12_000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("*r")
	}
	b.WriteString("]\n")
	_, err := Parse("fanout.yaml", []byte(b.String()), nil)
	require.ErrorContains(t, err, "the file is too large or its aliases expand to too many values")
}

func TestErrorsAs(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte("listen: x\n"), nil)
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, Error{File: "fanout.yaml", Line: 1, Col: 9, Field: "listen", Msg: `must be host:port, such as ":8080" or "127.0.0.1:8080", not "x"`}, *e)
}

func TestParseDeepNesting(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte("routes: "+strings.Repeat("[", 100_000)), nil)
	require.EqualError(t, err, "fanout.yaml:1:1: invalid YAML: exceeded max depth of 10000")
}
