package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseEnv(t *testing.T) {
	t.Parallel()

	vars := env(map[string]string{
		"TOKEN":   "s3cr3t",
		"EMPTY":   "",
		"HOST":    "crm.example.com",
		"TIMEOUT": "2s",
		"N":       "8",
		"PPROF":   "true",
		"SIZE":    "2MiB",
		"PCT":     "12.5",
		"TARGET":  "crm",
		"NESTED":  "${TOKEN}",
		"DOLLAR":  "a$b",
	})
	cfg, err := Parse("fanout.yaml", []byte(`
admin:
  token: "${TOKEN}"
  pprof: ${PPROF}
targets:
  crm:
    url: https://${HOST}/in
    timeout: ${TIMEOUT}
    max_in_flight: ${N}
    headers:
      X-Empty: "${EMPTY}"
      X-Literal: "$$HOME and $${TOKEN}"
      X-Dollar: "costs $5, a $ sign, $HOME"
      X-Twice: "${TOKEN}-${TOKEN}"
      X-Nested: ${NESTED}
      X-Value-Dollar: ${DOLLAR}
  other: {url: "http://other/"}
routes:
  - name: r
    match: {path: /r}
    mode: mirror
    primary: ${TARGET}
    targets: ["${TARGET}", other]
    max_body: ${SIZE}
    sample_percent: ${PCT}
`), vars)
	require.NoError(t, err)
	require.Equal(t, "s3cr3t", cfg.Admin.Token)
	require.True(t, cfg.Admin.Pprof)
	c := cfg.Targets["crm"]
	require.Equal(t, "https://crm.example.com/in", c.URL)
	require.Equal(t, "crm.example.com", c.ParsedURL.Host)
	require.Equal(t, Duration(2*time.Second), c.Timeout)
	require.Equal(t, 8, c.MaxInFlight)
	require.Equal(t, map[string]string{
		"X-Empty":        "",
		"X-Literal":      "$HOME and ${TOKEN}",
		"X-Dollar":       "costs $5, a $ sign, $HOME",
		"X-Twice":        "s3cr3t-s3cr3t",
		"X-Nested":       "${TOKEN}", // values are not expanded again
		"X-Value-Dollar": "a$b",
	}, c.Headers)
	r := cfg.Routes[0]
	require.Equal(t, "crm", r.Primary)
	require.Equal(t, []RouteTarget{{Name: "crm"}, {Name: "other"}}, r.Targets)
	require.Equal(t, Size(2<<20), r.MaxBody)
	require.Equal(t, ptr(12.5), r.SamplePercent)
}

func TestParseEnvNotInKeys(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte(crm(`headers: {"${TOKEN}": v}`)), env(map[string]string{"TOKEN": "X-Token"}))
	require.EqualError(t, err, `fanout.yaml:4:27: targets.crm.headers["${TOKEN}"]: "${TOKEN}" is not a valid header name`)
}

func TestParseEnvNilLookup(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte(`admin: {token: "${FANOUT_ADMIN_TOKEN}"}`), nil)
	require.EqualError(t, err, "fanout.yaml:1:16: admin.token: environment variable FANOUT_ADMIN_TOKEN is not set")
}

func TestParseEnvOnlyInDecodedValues(t *testing.T) {
	t.Parallel()

	// Comments and x- extension keys are not decoded, so a reference there
	// needs no variable.
	cfg, err := Parse("fanout.yaml", []byte("# token: ${NOT_SET}\nx-notes: ${NOT_SET}\nlisten: \":1\"\n"), nil)
	require.NoError(t, err)
	require.Equal(t, ":1", cfg.Listen)
}

func TestParseRouteTargetForms(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
targets:
  a: {url: "http://a/"}
  b: {url: "http://b/"}
  c: {url: "http://c/"}
routes:
  - name: flow
    match: {path: /flow}
    mode: all
    targets: [a, {name: b, optional: true}, {name: c, optional: false}]
  - name: block
    match: {path: /block}
    mode: all
    require: 2
    targets:
      - a
      - name: b
        optional: true
      - name: c
`), nil)
	require.NoError(t, err)
	want := []RouteTarget{{Name: "a"}, {Name: "b", Optional: true}, {Name: "c"}}
	require.Equal(t, want, cfg.Routes[0].Targets)
	require.Equal(t, want, cfg.Routes[1].Targets)
	require.Equal(t, 2, cfg.Routes[1].Require)
}

func TestParseAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
x-retry: &retry {initial: 100ms, max: 5s}
x-target: &target
  timeout: 2s
  retry: *retry
  headers: {X-Team: growth}
targets:
  a: {<<: *target, url: "http://a/"}
  b:
    <<: *target
    url: http://b/
    timeout: 3s
  c:
    <<: [{timeout: 4s}, *target]
    url: http://c/
routes:
  - &route {name: r1, match: {path: /a}, mode: async, targets: [a, b]}
  - {<<: *route, name: r2, match: {path: /b}}
`), nil)
	require.NoError(t, err)

	a, b, c := cfg.Targets["a"], cfg.Targets["b"], cfg.Targets["c"]
	require.Equal(t, Duration(2*time.Second), a.Timeout)
	require.Equal(t, Duration(100*time.Millisecond), a.Retry.Initial)
	require.Equal(t, Duration(5*time.Second), a.Retry.Max)
	require.Equal(t, 10, a.Retry.MaxAttempts, "defaults under a merged mapping")
	require.Equal(t, map[string]string{"X-Team": "growth"}, a.Headers)
	require.Equal(t, Duration(3*time.Second), b.Timeout, "the mapping's own key wins")
	require.Equal(t, Duration(4*time.Second), c.Timeout, "the first merged mapping wins")
	require.Equal(t, Duration(100*time.Millisecond), c.Retry.Initial)

	r2 := cfg.Routes[1]
	require.Equal(t, "r2", r2.Name)
	require.Equal(t, "/b", r2.Match.Path)
	require.Equal(t, ModeAsync, r2.Mode)
	require.Equal(t, []RouteTarget{{Name: "a"}, {Name: "b"}}, r2.Targets)
}

func TestParseMergeErrors(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte("x-t: &t {timeout: 2s, timout: 3s}\ntargets:\n  a: {<<: *t, url: \"http://a/\"}\n"), nil)
	require.EqualError(t, err, `fanout.yaml:1:23: targets.a.timout: unknown key "timout"; did you mean "timeout"?`,
		"an unknown key in a merged mapping is reported where it is written")

	_, err = Parse("fanout.yaml", []byte("targets:\n  a: {<<: [1], url: \"http://a/\"}\n"), nil)
	require.EqualError(t, err, "fanout.yaml:2:11: targets.a: a merge key (<<) must be followed by a mapping or a list of mappings")

	// A mapping that merges itself is read once.
	cfg, err := Parse("fanout.yaml", []byte("admin: &a {token: t, <<: *a}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "t", cfg.Admin.Token)
}

func TestParseAliasErrorsPointAtTheUse(t *testing.T) {
	t.Parallel()

	// The same aliased list is wrong for one route only.
	_, err := Parse("fanout.yaml", []byte(`targets: {a: {url: "http://a/"}}
x-two: &one [a]
routes:
  - {name: r1, match: {path: /1}, mode: all, targets: *one}
  - {name: r2, match: {path: /2}, mode: mirror, primary: a, targets: *one}
`), nil)
	require.EqualError(t, err, `fanout.yaml:5:61: routes[1].targets: mode mirror needs at least one target besides the primary "a"`)
}

func TestParseIgnoresOnlyTopLevelExtensionKeys(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte("admin: {x-note: hi}\n"), nil)
	require.EqualError(t, err, `fanout.yaml:1:9: admin.x-note: unknown key "x-note"`)
}

func TestParseStepsRoute(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
targets:
  authapi: {url: "http://auth/"}
  userdata: {url: "http://users/"}
routes:
  - name: signup-with-auth
    match: {method: POST, path: /signup}
    mode: steps
    steps:
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.username }}}'}
      - {name: data, target: userdata, after: [auth],
         headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
    respond: data
`), nil)
	require.NoError(t, err)
	r := cfg.Routes[0]
	require.Equal(t, ModeSteps, r.Mode)
	require.Equal(t, "data", r.Respond)
	require.Equal(t, []*Step{
		{Name: "auth", Target: "authapi", Body: `{"username": {{ json .request.body.username }}}`},
		{Name: "data", Target: "userdata", After: []string{"auth"}, Headers: map[string]string{"Authorization": "Bearer {{ .steps.auth.body.token }}"}},
	}, r.Steps)
}

func TestClosest(t *testing.T) {
	t.Parallel()

	keys := []string{"name", "match", "mode", "targets", "max_body", "sample_percent", "max_response_body"}
	for in, want := range map[string]string{
		"modee":          "mode",
		"mdoe":           "mode",
		"Mode":           "mode",
		"tagets":         "targets",
		"sample_precent": "sample_percent",
		"samplePercent":  "sample_percent",
		"max-body":       "max_body",
		"maxbody":        "max_body",
		"body":           "",
		"color":          "",
		"":               "",
	} {
		require.Equal(t, want, closest(in, keys), in)
	}
	require.Empty(t, closest("x", nil))
}
