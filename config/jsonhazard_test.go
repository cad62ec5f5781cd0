package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWarningsJSONHazards(t *testing.T) {
	t.Parallel()
	const yaml = `targets:
  crm: {url: "http://crm.test/in"}
  auth: {url: "http://auth.test/token"}
routes:
  - name: signup
    match: {path: /signup}
    mode: all
    targets:
      - {name: crm, body: '{"user": "{{ .request.body.user }}", "admin": false}'}
  - name: quoted
    match: {path: "/quoted/{id}"}
    mode: async
    targets:
      - name: crm
        body: "{\"id\": {{ .request.path_params.id }}}"
  - name: block
    match: {path: /block}
    mode: race
    targets:
      - name: crm
        body: |
          {
            "safe": {{ json .request.body.name }},
            "note": "{{ json .request.body.note }}"
          }
  - name: steps
    match: {path: /steps}
    mode: steps
    steps:
      - {name: auth, target: auth}
      - {name: data, target: crm, after: [auth], body: '{"token": "{{ .steps.auth.body.token }}", "id": "{{ .request.id }}"}'}
`
	cfg, err := Parse("fanout.yaml", []byte(yaml), nil)
	require.NoError(t, err, "a warning does not make the config invalid")
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	require.Equal(t, []string{
		`fanout.yaml:9:38: routes[0].targets[0].body: warning: {{ .request.body.user }} puts .request.body.user between JSON quotes without json: a value with a quote adds fields (such as "admin": true); write {{ json .request.body.user }} in place of the quoted action`,
		`fanout.yaml:15:25: routes[1].targets[0].body: warning: {{ .request.path_params.id }} prints .request.path_params.id into JSON without json: a string value can add fields (such as "admin": true); write {{ json .request.path_params.id }}`,
		`fanout.yaml:24:22: routes[2].targets[0].body: warning: {{ json .request.body.note }} is between JSON quotes, but json adds its own: the output is not JSON; drop the quotes around it`,
		`fanout.yaml:31:68: routes[3].steps[1].body: warning: {{ .steps.auth.body.token }} puts .steps.auth.body.token between JSON quotes without json: a value with a quote adds fields (such as "admin": true); write {{ json .steps.auth.body.token }} in place of the quoted action`,
	}, got)

	// The documented way has no warning.
	cfg, err = Parse("fanout.yaml", []byte(`targets: {crm: {url: "http://crm.test/in"}}
routes:
  - {name: r, match: {path: "/users/{id}"}, mode: all, targets: [{name: crm, body: '{"contact": {{ json .request.body }}, "external_id": {{ json .request.path_params.id }}}'}]}
`), nil)
	require.NoError(t, err)
	require.Empty(t, cfg.Warnings())
}

func TestBodyTimeoutDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(`targets: {crm: {url: "http://crm.test/in"}}
routes:
  - {name: sync, match: {path: /sync}, mode: all, deadline: 3s, targets: [crm]}
  - {name: queued, match: {path: /queued}, mode: async, targets: [crm]}
  - {name: set, match: {path: /set}, mode: race, body_timeout: 250ms, targets: [crm]}
`), nil)
	require.NoError(t, err)
	require.Equal(t, Duration(3e9), cfg.Route("sync").BodyTimeout, "a sync route's deadline")
	require.Equal(t, Duration(30e9), cfg.Route("queued").BodyTimeout, "30s for async")
	require.Equal(t, Duration(250e6), cfg.Route("set").BodyTimeout)

	_, err = Parse("fanout.yaml", []byte(`targets: {crm: {url: "http://crm.test/in"}}
routes:
  - {name: zero, match: {path: /zero}, mode: all, body_timeout: 0s, targets: [crm]}
`), nil)
	require.EqualError(t, err, "fanout.yaml:3:65: routes[0].body_timeout: must be greater than 0, not 0s")
}
