package admin

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// redactor is the list of header names, beyond upstream's fixed ones
// (Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key),
// whose values never leave the admin API.
type redactor []string

// messageRedactor redacts every target's redact list: a message goes to
// several targets, and a header one of them calls secret is secret for
// all.
func messageRedactor(cfg *config.Config) redactor {
	var r redactor
	for _, t := range cfg.Targets {
		if t != nil {
			r = append(r, t.Redact...)
		}
	}
	return r
}

// forTarget adds the headers configured on target: their values come from
// the config file (often ${ENV} secrets) and are never shown. The
// receiver is not changed.
func (r redactor) forTarget(t *config.Target) redactor {
	if t == nil || len(t.Headers) == 0 {
		return r
	}
	out := slices.Clip(r)
	for n := range t.Headers {
		out = append(out, n)
	}
	return out
}

// header returns a copy of h with the values of secret headers replaced
// by RedactedValue.
func (r redactor) header(h http.Header) http.Header {
	return upstream.Redact(h, r)
}

// redactURL hides a password in u's user info; a URL that does not parse
// is hidden whole, since nothing can be said about what it holds.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return RedactedValue
	}
	return u.Redacted()
}

// encodeBody embeds b in a JSON document: valid JSON as is, UTF-8 text as
// a string, anything else as a base64 string. It returns nil for an empty
// body.
func encodeBody(b []byte) (json.RawMessage, string) {
	if len(b) == 0 {
		return nil, ""
	}
	if json.Valid(b) {
		return json.RawMessage(b), EncodingJSON
	}
	s, enc := textOrBase64(b)
	raw, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return nil, ""
	}
	return raw, enc
}

// textOrBase64 returns b as a string when it is UTF-8, else base64.
func textOrBase64(b []byte) (string, string) {
	if len(b) == 0 {
		return "", ""
	}
	if utf8.Valid(b) {
		return string(b), EncodingText
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64
}
