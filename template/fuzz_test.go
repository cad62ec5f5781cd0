package template_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fanouthq/fanout/template"
)

// FuzzTemplateJSON checks the JSON handling of template data: BodyValue
// never panics; a JSON body becomes a value that json re-encodes as valid
// JSON, and parsing that again gives the same encoding (no number or
// string drifts after one round trip); a body that is not JSON stays the
// same string; and templates that print, encode and escape the value
// never fail on it (their output within bounds).
//
//	go test ./template -run '^$' -fuzz FuzzTemplateJSON -fuzztime 60s
func FuzzTemplateJSON(f *testing.F) {
	for _, s := range []string{
		`{"username":"ada","token":"t-123"}`,
		`{"n":3,"f":1.5,"e":-1E-7,"big":12345678901234567890,"huge":1e400,"neg":-0}`,
		`[1,"two",null,true,{"a":[{}]}]`,
		`"a string with \u2028 and \ud800"`,
		`  {"spaces": "  "}  `,
		`{"a":1}{"b":2}`,
		`not json at all`,
		"\xff\xfe binary",
		`{"html":"<script>&</script>","slash":"a/b?c#d"}`,
		``,
		`0.1`, `1.0`, `100000000000000000000000`, `-9223372036854775808`, `9223372036854775808`,
	} {
		f.Add([]byte(s))
	}
	enc := template.MustParse("enc", `{{ json .request.body }}`, template.Options{})
	text := template.MustParse("text", `{{ .request.body }}`, template.Options{MaxOutput: 8 << 20})
	path := template.MustParse("path", `/x/{{ .request.body }}`, template.Options{Kind: template.URL, MaxOutput: 64 << 20})
	f.Fuzz(func(t *testing.T, body []byte) {
		v := template.BodyValue(body)
		data := template.Data(template.RequestValue(template.Request{Body: body}), nil)
		out, err := enc.Execute(data)
		if err != nil {
			t.Fatalf("json of %q: %v", body, err)
		}
		if !json.Valid(out) {
			t.Fatalf("json of %q is not valid JSON: %s", body, out)
		}
		if s, isString := v.(string); isString && !json.Valid(body) {
			if s != string(body) {
				t.Fatalf("a body that is not JSON changed: %q → %q", body, s)
			}
		} else if v != nil {
			again, ok := template.ParseJSON(out)
			if !ok {
				t.Fatalf("re-encoded JSON does not parse: %s", out)
			}
			out2, err := enc.Execute(template.Data(map[string]any{"body": again}, nil))
			if err != nil || string(out2) != string(out) {
				t.Fatalf("not a fixed point after one round trip:\n%s\n%s (%v)", out, out2, err)
			}
		}
		if _, err := text.Execute(data); err != nil {
			t.Fatalf("text of %q: %v", body, err)
		}
		p, err := path.Execute(data)
		if err != nil {
			t.Fatalf("path of %q: %v", body, err)
		}
		for _, c := range string(p[3:]) {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%", c) {
				t.Fatalf("unescaped %q in a URL value: %s", c, p)
			}
		}
	})
}

// FuzzTemplateExecute runs arbitrary template sources on arbitrary JSON
// bodies: Parse and Execute never panic, an execution respects its output
// bound and ends in time, and every error is an *Error.
//
//	go test ./template -run '^$' -fuzz FuzzTemplateExecute -fuzztime 60s
func FuzzTemplateExecute(f *testing.F) {
	for _, s := range []struct{ src, body string }{
		{`{"username": {{ json .request.body.username }}}`, `{"username":"ada"}`},
		{`Bearer {{ .steps.auth.body.token }}`, `{}`},
		{`{{ range $i, $e := .request.body }}{{ $i }}{{ $e | json }}{{ end }}`, `[1,2,3]`},
		{`{{ range 100000000 }}{{ end }}`, ``},
		{`{{ $x := "a" }}{{ range 64 }}{{ $x = print $x $x }}{{ end }}`, ``},
		{`{{ printf "%[1]*d" 1000000000 1 }}`, ``},
		{`{{ index .request.query "q" | default (urlquery "x y") | base64 }}`, ``},
		{`{{ with .request.body }}{{ .a.b }}{{ else }}none{{ end }}`, `{"a":{"b":[null]}}`},
		{`{{ slice .request.body.s 1 3 }} {{ len .request.body }} {{ html .request.body }} {{ js .request.body }}`, `{"s":"hello"}`},
		{`{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`, ``},
		{`{{ call .request.body }}{{ eq .request.body.n 1 }}{{ lt 1 2.5 }}`, `{"n":1}`},
		{`{"a": "{{ with $x := .request.body }}{{ $x.a }}{{ end }}", "b": [{{ range .steps.auth.body }}{{ . }}{{ end }}]}`, `{"a":"x"}`},
	} {
		f.Add(s.src, []byte(s.body))
	}
	const maxOutput = 4 << 10
	f.Fuzz(func(t *testing.T, src string, body []byte) {
		if !utf8.ValidString(src) || len(src) > 4<<10 {
			return
		}
		for _, kind := range []template.Kind{template.Text, template.URL} {
			tp, err := template.Parse("t", src, template.Options{Kind: kind, MaxOutput: maxOutput, Timeout: 500 * time.Millisecond})
			if err != nil {
				if _, ok := err.(*template.Error); !ok {
					t.Fatalf("parse error is not an *Error: %T %v", err, err)
				}
				return
			}
			// Config validation scans every body template: it must
			// not panic, and what it reports lies in the source.
			for _, h := range tp.JSONHazards(func([]string) bool { return true }) {
				if h.Offset < 0 || h.Offset >= len(src) || !strings.HasPrefix(src[h.Offset:], "{{") || len(h.Field) == 0 {
					t.Fatalf("hazard %+v in %q", h, src)
				}
			}
			data := template.Data(template.RequestValue(template.Request{
				Body:   body,
				Header: http.Header{"X-A": {"1"}},
			}), map[string]any{"auth": template.ResponseValue(200, nil, []byte(`{"token":"t"}`))})
			start := time.Now()
			out, err := tp.Execute(data)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("execution took %s", d)
			}
			if err != nil {
				if _, ok := err.(*template.Error); !ok {
					t.Fatalf("execute error is not an *Error: %T %v", err, err)
				}
				continue
			}
			if len(out) > maxOutput {
				t.Fatalf("output of %d bytes past the bound", len(out))
			}
		}
	})
}
