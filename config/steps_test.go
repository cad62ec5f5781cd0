package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stepsRoute returns threeTargets and one steps route (from line 5) at
// path /users/{id}: "name: r" is on line 6, "match" on 7, "mode: steps"
// on 8 and the extra lines from line 9, each indented to column 5.
func stepsRoute(extra ...string) string {
	var b strings.Builder
	b.WriteString(threeTargets)
	b.WriteString("routes:\n  - name: r\n    match: {path: \"/users/{id}\"}\n    mode: steps\n")
	for _, l := range extra {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func TestParseStepsAccepts(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(stepsRoute(
		"steps:",
		"  - {name: auth, target: crm, method: post, body: '{\"u\": {{ json .request.body.username }}}'}",
		"  - {name: profile, target: analytics, method: GET, path: '/p/{{ .request.path_params.id }}?q={{ index .request.query \"q\" | default \"x\" }}'}",
		"  - name: data",
		"    target: billing",
		"    after: [auth, profile]",
		"    headers: {Authorization: 'Bearer {{ .steps.auth.body.token }}', X-Seen: '{{ .steps.profile.status }} {{ index .steps.auth.headers \"X-Id\" }}'}",
		"  - {name: audit, target: crm, after: [data], body: '{{ json .steps.auth.body }}{{ .steps.data.body }}'}",
		"respond: data",
	)), nil)
	require.NoError(t, err)
	r := cfg.Routes[0]
	require.Len(t, r.Steps, 4)
	require.Equal(t, "POST", r.Steps[0].Method, "methods are upper-cased")
	require.Equal(t, []string{"auth", "profile"}, r.Steps[2].After)
	require.Empty(t, r.Targets)

	// A route target's body template, on every sync mode.
	_, err = Parse("fanout.yaml", []byte(route("all", `[{name: crm, body: '{"contact": {{ json .request.body }}}'}, analytics]`)), nil)
	require.NoError(t, err)
	_, err = Parse("fanout.yaml", []byte(route("mirror", `[{name: crm, body: '{{ json .request.body }}'}, {name: analytics, body: '{}'}]`, "primary: crm")), nil)
	require.NoError(t, err)
	_, err = Parse("fanout.yaml", []byte(route("async", `[{name: crm, body: '{"event": {{ json .request.body }}}'}, analytics]`)), nil)
	require.NoError(t, err)
	_, err = Parse("fanout.yaml", []byte(route("settled", `[{name: crm, body: '{}'}]`, "on_failure: queue")), nil)
	require.NoError(t, err)
}

func TestParseStepsErrors(t *testing.T) {
	t.Parallel()
	const ab = "steps: [{name: a, target: crm}, {name: b, target: analytics, after: [a]}]"
	runErrorCases(t, []errorCase{
		{"no steps", stepsRoute(), "6:5: routes[0].steps", "mode steps needs at least one step"},
		{"empty steps", stepsRoute("steps: []"), "9:5: routes[0].steps", "mode steps needs at least one step"},
		{"duplicate name", stepsRoute("steps: [{name: a, target: crm}, {name: a, target: crm}]"), "9:44: routes[0].steps[1].name", `step name "a" is already used by steps[0] (line 9)`},
		{"bad name", stepsRoute("steps: [{name: get-user, target: crm}]"), "9:20: routes[0].steps[0].name", `step name "get-user" may only contain letters, digits and '_'`},
		{"missing name", stepsRoute("steps: [{target: crm}]"), "9:13: routes[0].steps[0].name", "is required"},
		{"unknown target", stepsRoute("steps: [{name: a, target: crn}]"), "9:31: routes[0].steps[0].target", `unknown target "crn"; did you mean "crm"?`},
		{"missing target", stepsRoute("steps: [{name: a}]"), "9:13: routes[0].steps[0].target", "is required"},
		{"unknown after", stepsRoute("steps: [{name: auth, target: crm}, {name: b, target: crm, after: [aut]}]"), "9:71: routes[0].steps[1].after[0]", `unknown step "aut"; did you mean "auth"?`},
		{"after itself", stepsRoute("steps: [{name: a, target: crm, after: [a]}]"), "9:44: routes[0].steps[0].after[0]", "a step cannot run after itself"},
		{"after twice", stepsRoute("steps: [{name: a, target: crm}, {name: b, target: crm, after: [a, a]}]"), "9:71: routes[0].steps[1].after[1]", `step "a" is listed twice`},
		{"cycle", stepsRoute("steps: [{name: a, target: crm, after: [c]}, {name: b, target: crm, after: [a]}, {name: c, target: crm, after: [b]}]"),
			"9:", "the steps form a cycle: a → c → b → a (each runs after the next)"},
		{"respond unknown", stepsRoute(ab, "respond: c"), "10:14: routes[0].respond", `unknown step "c"`},
		{"respond on all", route("all", "[crm]", "respond: crm"), "10:14: routes[0].respond", "is only allowed with mode steps, not all"},
		{"targets on steps", stepsRoute(ab, "targets: [crm]"), "10:5: routes[0].targets", "is not used with mode steps"},
		{"respond on async steps", stepsRoute(ab, "async: true", "respond: b"), "11:14: routes[0].respond", "is not used with async: the caller gets 202"},
		{"bad method", stepsRoute("steps: [{name: a, target: crm, method: 'GE T'}]"), "9:44: routes[0].steps[0].method", `"GE T" is not a valid HTTP method`},
		{"template does not parse", stepsRoute("steps: [{name: a, target: crm, body: '{{ .request.body '}]"), "9:42: routes[0].steps[0].body", "the template does not parse: line 1: unclosed action"},
		{"unknown function", stepsRoute("steps: [{name: a, target: crm, body: '{{ toJSON .request.body }}'}]"), "9:42: routes[0].steps[0].body", `the template does not parse: line 1: function "toJSON" not defined`},
		{"define", stepsRoute(`steps: [{name: a, target: crm, body: '{{define "x"}}{{end}}'}]`), "9:42: routes[0].steps[0].body", "{{define}} and {{block}} are not supported"},
		{"unknown data", stepsRoute("steps: [{name: a, target: crm, body: '{{ .body }}'}]"), "9:42: routes[0].steps[0].body", "unknown field .body: templates see .request and .steps"},
		{"unknown request field", stepsRoute("steps: [{name: a, target: crm, body: '{{ .request.bodyy }}'}]"), "9:42: routes[0].steps[0].body", `unknown field .request.bodyy; want id, method, path, headers, query, path_params or body; did you mean "body"?`},
		{"unknown path param", stepsRoute("steps: [{name: a, target: crm, path: '/{{ .request.path_params.user }}'}]"), "9:42: routes[0].steps[0].path", ".request.path_params.user: the route's path has no {user}"},
		{"unknown step in template", stepsRoute("steps: [{name: a, target: crm}, {name: b, target: crm, after: [a], body: '{{ .steps.aa.body }}'}]"), "9:78: routes[0].steps[1].body", `.steps.aa.body: unknown step "aa"; did you mean "a"?`},
		{"step not before", stepsRoute("steps: [{name: a, target: crm}, {name: b, target: crm, body: '{{ .steps.a.body }}'}]"), "9:66: routes[0].steps[1].body", `.steps.a.body: step "b" does not run after step "a"; add it to after`},
		{"own response", stepsRoute("steps: [{name: a, target: crm, body: '{{ .steps.a.body }}'}]"), "9:42: routes[0].steps[0].body", ".steps.a.body: a step cannot use its own response"},
		{"unknown response field", stepsRoute("steps: [{name: a, target: crm}, {name: b, target: crm, after: [a], body: '{{ .steps.a.json }}'}]"), "9:78: routes[0].steps[1].body", "unknown field .steps.a.json; want status, headers or body"},
		{"header not canonical", stepsRoute("steps: [{name: a, target: crm, body: '{{ .request.headers.authorization }}'}]"), "9:42: routes[0].steps[0].body", "header names are canonical: write .request.headers.Authorization"},
		{"path not absolute", stepsRoute("steps: [{name: a, target: crm, path: 'users'}]"), "9:42: routes[0].steps[0].path", `must start with "/" or "?"`},
		{"host header", stepsRoute("steps: [{name: a, target: crm, headers: {host: x}}]"), "9:52: routes[0].steps[0].headers.host", "Host is set by Fanout"},
		{"header line break", stepsRoute(`steps: [{name: a, target: crm, headers: {X-A: "a\nb"}}]`), "9:51: routes[0].steps[0].headers.X-A", "must not contain control characters"},
		{"secret bad pointer", stepsRoute("steps: [{name: a, target: crm, secret: [/ok, '/a~2b']}]"), "9:50: routes[0].steps[0].secret[1]", `"/a~2b" is not a valid JSON pointer: '~' must be followed by 0 or 1`},
		{"secret neither", stepsRoute("steps: [{name: a, target: crm, secret: ['access token']}]"), "9:45: routes[0].steps[0].secret[0]", `"access token" is neither a JSON pointer (it would start with "/") nor a valid header name`},
		{"secret empty", stepsRoute("steps: [{name: a, target: crm, secret: ['']}]"), "9:45: routes[0].steps[0].secret[0]", "is empty: give a JSON pointer"},
		{"target body field", route("async", `[{name: crm, body: '{{ .request.path_params.id }}'}]`), "9:33: routes[0].targets[0].body", ".request.path_params.id: the route's path has no {id}"},
		{"steps in a target body", route("all", `[{name: crm, body: '{{ .steps.a.body }}'}]`), "9:33: routes[0].targets[0].body", ".steps.a.body: only the templates of a steps route see .steps"},
		{"target body does not parse", route("all", `[{name: crm, body: '{{ json }'}]`), "9:33: routes[0].targets[0].body", "the template does not parse"},
	})
}
