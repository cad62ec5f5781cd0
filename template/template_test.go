package template_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/template"
)

// testData is the data of the seeds' scenario: the inbound signup and the
// auth step's answer.
func testData() map[string]any {
	req := template.RequestValue(template.Request{
		ID:         "msg_01",
		Method:     http.MethodPost,
		Path:       "/users/42/signup",
		Header:     http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"k1", "k2"}, "Accept": {"*/*"}},
		Query:      url.Values{"q": {"a/b c&d"}, "empty": {""}},
		PathParams: map[string]string{"id": "42"},
		Body:       []byte(`{"username":"ada","n":3,"big":12345678901234567890,"f":1.5,"tags":["x","y"],"o":{"a":null},"html":"<b>&"}`),
	})
	auth := template.ResponseValue(200, http.Header{"X-Id": {"7"}}, []byte(`{"token":"t-123"}`))
	text := template.ResponseValue(201, nil, []byte("plain text"))
	return template.Data(req, map[string]any{"auth": auth, "text": text})
}

func TestExecute(t *testing.T) {
	t.Parallel()
	data := testData()
	for _, tc := range []struct{ src, want string }{
		{`{"username": {{ json .request.body.username }}}`, `{"username": "ada"}`},
		{`Bearer {{ .steps.auth.body.token }}`, `Bearer t-123`},
		{`{{ .steps.auth.status }} {{ index .steps.auth.headers "X-Id" }} {{ .steps.text.body }}`, `200 7 plain text`},
		{`{{ .request.body.n }} {{ .request.body.f }} {{ .request.body.big }} [{{ .request.body.o.a }}]`, `3 1.5 12345678901234567890 []`},
		{`{{ json .request.body.big }} {{ json .request.body.o }} {{ json .request.body.tags }}`, `12345678901234567890 {"a":null} ["x","y"]`},
		{`{{ .request.body.tags }} {{ .request.body.o }}`, `["x","y"] {"a":null}`},
		{`{{ json .request.body.html }}`, `"<b>&"`},
		{`{{ .request.id }} {{ .request.method }} {{ .request.path }} {{ .request.path_params.id }}`, `msg_01 POST /users/42/signup 42`},
		{`{{ index .request.headers "X-Api-Key" }} {{ index .request.headers "Content-Type" }} {{ .request.headers.Accept }}`, `k1 application/json */*`},
		{`{{ .request.query.q }}`, `a/b c&d`},
		{`{{ urlquery .request.query.q }} {{ base64 "ada:pw" }}`, `a%2Fb+c%26d YWRhOnB3`},
		{`{{ index .request.query "page" | default "1" }} {{ .request.query.empty | default "none" }} {{ default "x" .request.body.n }}`, `1 none 3`},
		{`{{ if eq .request.body.n 3 }}three{{ end }} {{ len .request.body.tags }}`, `three 2`},
		{`{{ range $i, $t := .request.body.tags }}{{ $i }}={{ $t }};{{ end }}`, `0=x;1=y;`},
		{`{{ with .request.body }}{{ .username }}{{ end }}`, `ada`},
		{`{{ printf "%s-%03d" .request.body.username .request.body.n }}`, `ada-003`},
		{`{{ html .request.body.html }} {{ js "it's" }}`, `&lt;b&gt;&amp; it\'s`},
		{``, ``},
	} {
		tp, err := template.Parse("body", tc.src, template.Options{})
		require.NoError(t, err, tc.src)
		out, err := tp.Execute(data)
		require.NoError(t, err, tc.src)
		require.Equal(t, tc.want, string(out), tc.src)
	}
}

func TestExecuteURLEscapesEveryValue(t *testing.T) {
	t.Parallel()
	data := testData()
	for _, tc := range []struct{ src, want string }{
		{`/users/{{ .request.path_params.id }}/orders`, `/users/42/orders`},
		{`/search?q={{ .request.query.q }}&u={{ .request.body.username }}`, `/search?q=a%2Fb%20c%26d&u=ada`},
		{`/q?raw={{ urlquery .request.query.q }}`, `/q?raw=a%2Fb+c%26d`}, // not escaped twice
		{`/{{ "." }}/{{ ".." }}/{{ "..." }}`, `/%2E/%2E%2E/...`},
		{`/{{ .request.body.tags }}`, `/%5B%22x%22%2C%22y%22%5D`},
		{`/ü/{{ "ü" }}`, `/ü/%C3%BC`}, // literal text is the config's
	} {
		tp, err := template.Parse("path", tc.src, template.Options{Kind: template.URL})
		require.NoError(t, err, tc.src)
		out, err := tp.Execute(data)
		require.NoError(t, err, tc.src)
		require.Equal(t, tc.want, string(out), tc.src)
	}
}

func TestExecuteErrors(t *testing.T) {
	t.Parallel()
	data := testData()
	for _, tc := range []struct{ src, want string }{
		{`Bearer {{ .steps.auth.body.tokn }}`, `template headers.Authorization: {{.steps.auth.body.tokn}}: map has no entry for key "tokn"`},
		{"line one\n{{ .steps.nope.body }}", `template headers.Authorization: line 2: {{.steps.nope.body}}: map has no entry for key "nope"`},
		{`{{ .steps.text.body.token }}`, `can't evaluate field token`},
		{`{{ .request.headers.Authorization }}`, `map has no entry for key "Authorization"`},
		{`{{ json }}`, `wrong number of args for json`},
		{`{{ printf "%0999999d" 1 }}`, `a width or precision above 999 is not allowed`},
		{`{{ printf "%*d" 5 1 }}`, `a width or precision above 999 is not allowed`},
	} {
		tp, err := template.Parse("headers.Authorization", tc.src, template.Options{})
		require.NoError(t, err, tc.src)
		_, err = tp.Execute(data)
		var te *template.Error
		require.ErrorAs(t, err, &te, tc.src)
		require.Equal(t, "headers.Authorization", te.Name)
		require.Contains(t, err.Error(), tc.want, tc.src)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{`{{ .request.body `, `template body: line 1: unclosed action`},
		{"ok\n{{ nope .x }}", `template body: line 2: function "nope" not defined`},
		{`{{ call .f }}`, `template body: call is not available`},
		{`{{ define "x" }}a{{ end }}`, `template body: {{define}} and {{block}} are not supported`},
		{`{{ block "x" . }}a{{ end }}`, `template body: {{define}} and {{block}} are not supported`},
		{`{{ template "x" }}`, `template body: {{template}} is not supported`},
	} {
		_, err := template.Parse("body", tc.src, template.Options{})
		var te *template.Error
		require.ErrorAs(t, err, &te, tc.src)
		require.Equal(t, tc.want, err.Error(), tc.src)
	}
}

func TestExecuteBounds(t *testing.T) {
	t.Parallel()
	data := testData()
	opts := template.Options{MaxOutput: 1 << 10, MaxIterations: 1000, Timeout: time.Minute}
	for _, tc := range []struct{ name, src, want string }{
		{"output", `{{ range 600 }}ab{{ end }}`, "the output is larger than 1024 bytes"},
		{"iterations", `{{ range 1000000000 }}{{ end }}`, "the template runs more than 1000 loop iterations"},
		{"nested iterations", `{{ range 100 }}{{ range 100 }}{{ end }}{{ end }}`, "the template runs more than 1000 loop iterations"},
		{"string doubling", `{{ $x := "ab" }}{{ range 40 }}{{ $x = printf "%s%s" $x $x }}{{ end }}`, "the template builds more than 8192 bytes of strings"},
		{"json doubling", `{{ $x := "ab" }}{{ range 40 }}{{ $x = json (print $x $x) }}{{ end }}`, "the template builds more than 8192 bytes of strings"},
	} {
		tp, err := template.Parse("body", tc.src, opts)
		require.NoError(t, err, tc.name)
		_, err = tp.Execute(data)
		require.ErrorContains(t, err, tc.want, tc.name)
	}

	// Time: a loop with no output, stopped by the clock.
	tp, err := template.Parse("body", `{{ range 100000000 }}{{ end }}`, template.Options{MaxIterations: 1 << 30, Timeout: time.Millisecond})
	require.NoError(t, err)
	_, err = tp.Execute(data)
	require.ErrorContains(t, err, "the template ran longer than 1ms")

	// The template works again after a failed execution.
	tp, err = template.Parse("body", `{{ range .request.body.tags }}{{ . }}{{ end }}`, template.Options{MaxIterations: 2})
	require.NoError(t, err)
	out, err := tp.Execute(data)
	require.NoError(t, err)
	require.Equal(t, "xy", string(out))
}

func TestRefs(t *testing.T) {
	t.Parallel()
	tp, err := template.Parse("body", `{{ .request.body.a }}{{ with .steps.auth }}{{ .body.token }}{{ end }}`+
		`{{ range .request.body.list }}{{ .x }}{{ $.steps.b.status }}{{ end }}{{ index .request.headers "X-A" }}{{ .request.body.a }}`, template.Options{})
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"request", "body", "a"},
		{"steps", "auth"},
		{"request", "body", "list"},
		{"steps", "b", "status"},
		{"request", "headers"},
	}, tp.Refs())
}

func TestExecuteConcurrently(t *testing.T) {
	t.Parallel()
	tp, err := template.Parse("body", `{{ range .request.body.tags }}{{ . }}{{ end }}-{{ .request.body.username }}`, template.Options{MaxIterations: 2})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			data := testData()
			if i%2 == 0 {
				// Three tags: over the iteration bound.
				data["request"].(map[string]any)["body"].(map[string]any)["tags"] = []any{"a", "b", "c"}
			}
			for range 50 {
				out, err := tp.Execute(data)
				if i%2 == 0 {
					if err == nil {
						t.Errorf("no error over the bound: %s", out)
					}
					continue
				}
				if err != nil || string(out) != "xy-ada" {
					t.Errorf("got %q, %v", out, err)
				}
			}
		})
	}
	wg.Wait()
}

func TestBodyValue(t *testing.T) {
	t.Parallel()
	require.Nil(t, template.BodyValue(nil))
	require.Nil(t, template.BodyValue([]byte(" \n")))
	require.Equal(t, "not json", template.BodyValue([]byte("not json")))
	require.Equal(t, `{"a":1} trailing`, template.BodyValue([]byte(`{"a":1} trailing`)))
	require.Equal(t, "text", template.BodyValue([]byte(`"text"`)))
	require.Equal(t, map[string]any{
		"i": int64(-7), "f": 0.5, "e": 1e3, "big": json.Number("98765432109876543210"), "huge": json.Number("1e400"),
		"l": []any{true, nil},
	}, template.BodyValue([]byte(`{"i":-7,"f":0.5,"e":1E3,"big":98765432109876543210,"huge":1e400,"l":[true,null]}`)))
}

func TestEscapeURLValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":              "",
		"abc-._~XYZ09":  "abc-._~XYZ09",
		"a b/c?d#e&f=g": "a%20b%2Fc%3Fd%23e%26f%3Dg",
		"..":            "%2E%2E",
		"é":             "%C3%A9",
		"%2F":           "%252F",
	} {
		require.Equal(t, want, template.EscapeURLValue(in), in)
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	_, err := template.Parse("x", "{{", template.Options{})
	var te *template.Error
	require.True(t, errors.As(err, &te))
	require.True(t, strings.HasPrefix(err.Error(), "template x: "))
}
