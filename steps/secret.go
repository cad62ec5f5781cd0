package steps

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fanouthq/fanout/config"
)

// Secret values of step responses (docs/security.md, "Step responses").
// A step's response often carries what a later step needs to authenticate
// (a token). The later steps get the real value; everywhere the message is
// shown — stored attempts, admin API answers, the sync envelope, logs —
// each occurrence of the value reads "[REDACTED]". A step's secret values
// are the ones its `secret` list names, plus every field of its response
// that a later step's header template reads: step headers are redacted
// like a target's configured headers, so what goes into them is secret
// too.

// Redacted replaces a secret value.
const Redacted = "[REDACTED]"

// MinSecretLen is the length under which a value is not masked: replacing
// every "1" or "ok" of an answer would hide everything and protect
// nothing.
const MinSecretLen = 4

// secretRef is one secret value of a step's response: a header, or the
// value at a JSON pointer into the body (nil pointer: the whole body).
type secretRef struct {
	header  string   // canonical; "" for a body value
	pointer []string // reference tokens, unescaped
}

// parseSecret parses one entry of a step's secret list: a JSON pointer
// when it starts with "/", else a header name.
func parseSecret(s string) (secretRef, error) {
	if !strings.HasPrefix(s, "/") {
		return secretRef{header: textproto.CanonicalMIMEHeaderKey(s)}, nil
	}
	p, err := config.ParseJSONPointer(s)
	if err != nil {
		return secretRef{}, err
	}
	return secretRef{pointer: p}, nil
}

// headerSecrets adds to each step the fields of its response that a later
// step's header templates read: {{ .steps.auth.body.token }} makes the
// body's /token of step auth secret, {{ .steps.auth.headers.X }} its
// header X.
func (r *Route) headerSecrets(index map[string]int) {
	for _, s := range r.Steps {
		for _, h := range s.header {
			for _, ref := range h.t.Refs() {
				if len(ref) < 3 || ref[0] != "steps" {
					continue
				}
				j, ok := index[ref[1]]
				if !ok {
					continue
				}
				var sec secretRef
				switch {
				case ref[2] == "body":
					sec.pointer = slices.Clone(ref[3:])
					if sec.pointer == nil {
						sec.pointer = []string{}
					}
				case ref[2] == "headers" && len(ref) > 3:
					sec.header = textproto.CanonicalMIMEHeaderKey(ref[3])
				default:
					continue
				}
				owner := r.Steps[j]
				if !slices.ContainsFunc(owner.secrets, func(o secretRef) bool {
					return o.header == sec.header && slices.Equal(o.pointer, sec.pointer)
				}) {
					owner.secrets = append(owner.secrets, sec)
				}
			}
		}
	}
}

// HasSecrets reports whether some step of r has secret values.
func (r *Route) HasSecrets() bool {
	return slices.ContainsFunc(r.Steps, func(s *Step) bool { return len(s.secrets) > 0 })
}

// AddSecrets adds to m the secret values of s's response (h, body).
func (s *Step) AddSecrets(m *Mask, h http.Header, body []byte) {
	if len(s.secrets) == 0 {
		return
	}
	var doc any
	parsed := false
	for _, sec := range s.secrets {
		if sec.header != "" {
			for _, v := range h.Values(sec.header) {
				m.Add(v)
			}
			continue
		}
		if len(sec.pointer) == 0 {
			m.Add(string(body))
		}
		if !parsed {
			parsed = true
			d := json.NewDecoder(bytes.NewReader(body))
			d.UseNumber()
			if d.Decode(&doc) != nil {
				doc = nil
			}
		}
		if v, ok := lookup(doc, sec.pointer); ok {
			addLeaves(m, v)
		}
	}
}

// lookup returns the value at pointer in doc, a decoded JSON document.
func lookup(doc any, pointer []string) (any, bool) {
	v := doc
	for _, tok := range pointer {
		switch n := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = n[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			v = n[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// addLeaves adds every scalar in v: a secret object hides each of its
// values.
func addLeaves(m *Mask, v any) {
	switch n := v.(type) {
	case map[string]any:
		for _, e := range n {
			addLeaves(m, e)
		}
	case []any:
		for _, e := range n {
			addLeaves(m, e)
		}
	case string:
		m.Add(n)
	case json.Number:
		m.Add(n.String())
	}
}

// Mask replaces secret values wherever they occur. The zero Mask masks
// nothing.
type Mask struct {
	values []string // longest first, so that a value is masked before its parts
}

// Add adds a secret value, with the forms it takes inside a JSON string
// and a URL. Values shorter than MinSecretLen are ignored.
func (m *Mask) Add(v string) {
	if len(v) < MinSecretLen {
		return
	}
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	for _, f := range forms {
		if !slices.Contains(m.values, f) {
			m.values = append(m.values, f)
		}
	}
	slices.SortStableFunc(m.values, func(a, b string) int { return len(b) - len(a) })
}

// Empty reports whether m masks nothing.
func (m *Mask) Empty() bool { return m == nil || len(m.values) == 0 }

// String returns s with every secret value replaced by Redacted.
func (m *Mask) String(s string) string {
	if m.Empty() {
		return s
	}
	for _, v := range m.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Bytes returns b with every secret value replaced by Redacted; b itself
// when it holds none.
func (m *Mask) Bytes(b []byte) []byte {
	if m.Empty() {
		return b
	}
	for _, v := range m.values {
		if bytes.Contains(b, []byte(v)) {
			b = bytes.ReplaceAll(b, []byte(v), []byte(Redacted))
		}
	}
	return b
}

// Header returns h with every secret value in its values replaced; h
// itself when it holds none, else a copy.
func (m *Mask) Header(h http.Header) http.Header {
	if m.Empty() || h == nil {
		return h
	}
	var out http.Header
	for k, vs := range h {
		for i, v := range vs {
			if mv := m.String(v); mv != v {
				if out == nil {
					out = h.Clone()
				}
				out[k][i] = mv
			}
		}
	}
	if out == nil {
		return h
	}
	return out
}
