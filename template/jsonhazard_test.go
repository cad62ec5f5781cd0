package template_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/template"
)

func TestJSONHazards(t *testing.T) {
	t.Parallel()
	tainted := func(f []string) bool { return f[0] == "request" && !(len(f) > 1 && f[1] == "id") }
	type hz struct {
		off      int
		action   string
		field    string
		inString bool
		json     bool
	}
	for src, want := range map[string][]hz{
		`{"user": "{{ .request.body.user }}", "admin": false}`:    {{10, "{{ .request.body.user }}", "request.body.user", true, false}},
		`{"n": {{ .request.body.n }}}`:                            {{6, "{{ .request.body.n }}", "request.body.n", false, false}},
		`{"user": "{{ json .request.body.user }}"}`:               {{10, "{{ json .request.body.user }}", "request.body.user", true, true}},
		`{"u": "{{ .request.body.user | printf "%s" }}"}`:         {{7, `{{ .request.body.user | printf "%s" }}`, "request.body.user", true, false}},
		`{"u": "{{ with .request.body }}{{ .user }}{{ end }}"}`:   {{31, "{{ .user }}", "request.body", true, false}},
		`{{ $u := .request.body.user }}{"u": "{{ $u }}"}`:         nil, // starts with an action: not seen as JSON
		`{"a": 1{{ $u := .request.body.user }}, "u": "{{ $u }}"}`: {{45, "{{ $u }}", "request.body.user", true, false}},
		`[{{ range .request.body.items }}"{{ . }}",{{ end }}0]`:   {{33, "{{ . }}", "request.body.items", true, false}},
		`{"q": "a\"{{ .request.body.q }}"}`:                       {{10, "{{ .request.body.q }}", "request.body.q", true, false}},
		// Safe:
		`{"user": {{ json .request.body.user }}}`:                                     nil,
		`{"user": {{ .request.body.user | json }}, "id": "{{ .request.id }}"}`:        nil,
		`{"q": "{{ urlquery .request.body.q }}", "n": {{ len .request.body.items }}}`: nil,
		`{"b": "{{ base64 .request.body.raw }}", "x": "{{ "lit" }}"}`:                 nil,
		`{"a": "x"}{{ .request.body.tail }}`:                                          {{10, "{{ .request.body.tail }}", "request.body.tail", false, false}},
		`user={{ .request.body.user }}`:                                               nil, // not JSON
	} {
		tp, err := template.Parse("body", src, template.Options{})
		require.NoError(t, err, src)
		var got []hz
		for _, h := range tp.JSONHazards(tainted) {
			field := ""
			for i, f := range h.Field {
				if i > 0 {
					field += "."
				}
				field += f
			}
			got = append(got, hz{h.Offset, h.Action, field, h.InString, h.JSON})
		}
		require.Equal(t, want, got, src)
	}
}
