package template

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	texttemplate "text/template"
)

// funcs returns the template functions bound to b. The names of
// text/template built-ins that build strings (print, printf, println,
// html, js, urlquery) are replaced by versions that count what they build;
// call is disabled.
func (b *budget) funcs() texttemplate.FuncMap {
	return texttemplate.FuncMap{
		"json":     b.json,
		"urlquery": b.urlquery,
		"base64":   b.base64,
		"default":  defaultValue,
		"print":    b.print,
		"printf":   b.printf,
		"println":  b.println,
		"html":     b.html,
		"js":       b.js,
		"call":     callDisabled,
		fnText:     b.text,
		fnURL:      b.url,
		fnTick:     b.tick,
	}
}

// json encodes v as compact JSON: a string quoted, nil as null.
func (b *budget) json(v any) (string, error) {
	s, err := encodeJSON(v)
	if err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return s, b.charge(len(s))
}

// urlquery formats its arguments, joins them and query-escapes the result
// (a space becomes '+').
func (b *budget) urlquery(args ...any) (string, error) {
	s, err := b.join(args)
	if err != nil {
		return "", err
	}
	s = url.QueryEscape(s)
	return s, b.charge(len(s))
}

// base64 formats v and encodes it in standard base64, with padding.
func (b *budget) base64(v any) (string, error) {
	s, err := Format(v)
	if err != nil {
		return "", err
	}
	s = base64.StdEncoding.EncodeToString([]byte(s))
	return s, b.charge(len(s))
}

// defaultValue returns v, or def when v is empty: nil, false, 0, "", or an
// empty list or map. With index it gives optional values:
// {{ index .request.query "page" | default "1" }}.
func defaultValue(def, v any) any {
	if empty(v) {
		return def
	}
	return v
}

// empty reports whether v is nil or the zero value of its kind, or an
// empty list or map.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.String:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return rv.IsZero()
}

func (b *budget) print(args ...any) (string, error) {
	s := fmt.Sprint(args...)
	return s, b.charge(len(s))
}

func (b *budget) println(args ...any) (string, error) {
	s := fmt.Sprintln(args...)
	return s, b.charge(len(s))
}

// printf is fmt.Sprintf without widths or precisions above 999.
func (b *budget) printf(format string, args ...any) (string, error) {
	if err := checkFormat(format); err != nil {
		return "", err
	}
	s := fmt.Sprintf(format, args...)
	return s, b.charge(len(s))
}

func (b *budget) html(args ...any) (string, error) {
	s, err := b.join(args)
	if err != nil {
		return "", err
	}
	s = texttemplate.HTMLEscapeString(s)
	return s, b.charge(len(s))
}

func (b *budget) js(args ...any) (string, error) {
	s, err := b.join(args)
	if err != nil {
		return "", err
	}
	s = texttemplate.JSEscapeString(s)
	return s, b.charge(len(s))
}

// join formats args and concatenates them.
func (b *budget) join(args []any) (string, error) {
	if len(args) == 1 {
		return Format(args[0])
	}
	var sb strings.Builder
	for _, a := range args {
		s, err := Format(a)
		if err != nil {
			return "", err
		}
		sb.WriteString(s)
	}
	return sb.String(), nil
}

var errCall = errors.New("call is not available")

func callDisabled(any, ...any) (any, error) { return nil, errCall }

// text is the formatter every printing action of a Text template ends
// with.
func (b *budget) text(v any) (string, error) {
	s, err := Format(v)
	if err != nil {
		return "", err
	}
	return s, b.charge(len(s))
}

// url is the formatter and escaper every printing action of a URL template
// ends with.
func (b *budget) url(v any) (string, error) {
	s, err := Format(v)
	if err != nil {
		return "", err
	}
	s = EscapeURLValue(s)
	return s, b.charge(len(s))
}

// Format returns v as a template prints it: a string as it is, nil as "",
// a number or a boolean as in JSON, a map or a list as compact JSON.
func Format(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return formatInt(v), nil
	case json.Number:
		return v.String(), nil
	case float64:
		return encodeJSON(v)
	case []byte:
		return string(v), nil
	case fmt.Stringer:
		return v.String(), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return formatInt(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.String:
		return rv.String(), nil
	}
	return encodeJSON(v)
}

// encodeJSON encodes v as compact JSON without HTML escaping. A float that
// JSON cannot hold (NaN, ±Inf) is an error.
func encodeJSON(v any) (string, error) {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return "", fmt.Errorf("%v is not a JSON number", f)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// EscapeURLValue percent-encodes every byte of s but the unreserved
// characters of RFC 3986 (letters, digits, '-', '.', '_', '~'), and the
// dots of "." and "..", so that s is one path segment or one query value.
func EscapeURLValue(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			out = append(out, c)
			continue
		}
		out = append(out, '%', hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
