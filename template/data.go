package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// The keys of the data templates see. Config validation refuses a template
// that names another one.
const (
	// KeyRequest is the inbound request: .request.
	KeyRequest = "request"
	// KeySteps holds the results of the steps that ran before: .steps.NAME
	// (steps routes only).
	KeySteps = "steps"
)

// RequestFields are the fields of .request, as RequestValue sets them.
var RequestFields = []string{"id", "method", "path", "headers", "query", "path_params", "body"}

// ResponseFields are the fields of .steps.NAME, as ResponseValue sets
// them.
var ResponseFields = []string{"status", "headers", "body"}

// Request is what templates see of the inbound request.
type Request struct {
	// ID is the message id (msg_…): .request.id.
	ID string
	// Method is the inbound method: .request.method.
	Method string
	// Path is the inbound path without the query: .request.path.
	Path string
	// Header gives .request.headers: each canonical name (Content-Type,
	// X-Api-Key) with its first value.
	Header http.Header
	// Query gives .request.query: each parameter with its first value.
	Query url.Values
	// PathParams gives .request.path_params: the values of the route
	// path's {name} segments.
	PathParams map[string]string
	// Body gives .request.body; see BodyValue.
	Body []byte
}

// RequestValue returns the .request value of r.
func RequestValue(r Request) map[string]any {
	params := make(map[string]any, len(r.PathParams))
	for k, v := range r.PathParams {
		params[k] = v
	}
	query := make(map[string]any, len(r.Query))
	for k, vs := range r.Query {
		if len(vs) > 0 {
			query[k] = vs[0]
		}
	}
	return map[string]any{
		"id":          r.ID,
		"method":      r.Method,
		"path":        r.Path,
		"headers":     HeaderValue(r.Header),
		"query":       query,
		"path_params": params,
		"body":        BodyValue(r.Body),
	}
}

// ResponseValue returns the .steps.NAME value of a step's response:
// status, headers (as HeaderValue) and body (as BodyValue).
func ResponseValue(status int, h http.Header, body []byte) map[string]any {
	return map[string]any{
		"status":  status,
		"headers": HeaderValue(h),
		"body":    BodyValue(body),
	}
}

// HeaderValue maps each canonical header name of h to its first value.
// Names with a '-' are reached with index: {{ index .request.headers
// "X-Api-Key" }}.
func HeaderValue(h http.Header) map[string]any {
	m := make(map[string]any, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			m[textproto.CanonicalMIMEHeaderKey(k)] = vs[0]
		}
	}
	return m
}

// BodyValue returns a body as templates see it: nil when it is empty (or
// only white space), the parsed value when it is JSON (whatever its
// Content-Type), else the body as a string. Parsed JSON holds maps
// (map[string]any), lists ([]any), strings, booleans, nil and numbers:
// an integer that fits in 64 bits is an int64, a number with a fraction or
// an exponent a float64, and an integer too large for int64 (or a number
// too large for float64, or -0, whose sign an int64 would lose) a
// json.Number with its exact digits.
func BodyValue(body []byte) any {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if v, ok := ParseJSON(body); ok {
		return v
	}
	return string(body)
}

// ParseJSON parses one JSON document with the numbers of BodyValue. It
// reports false when b is not exactly one JSON value.
func ParseJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return numbers(v), true
}

// numbers replaces the json.Numbers of v, in place, as ParseJSON
// describes.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		return number(v)
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}

func number(n json.Number) any {
	if !strings.ContainsAny(string(n), ".eE") {
		if i, err := n.Int64(); err == nil && (i != 0 || n[0] != '-') {
			return i
		}
		return n // a big integer, or -0: keep every digit (and the sign)
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n
}

// Data returns the root value of a template's data: {"request": request}
// and, when steps is not nil, "steps": steps (the results of the steps
// that ran before, by name, each a ResponseValue).
func Data(request map[string]any, steps map[string]any) map[string]any {
	d := map[string]any{KeyRequest: request}
	if steps != nil {
		d[KeySteps] = steps
	}
	return d
}
