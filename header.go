package fanout

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// headerRawKey lists, in an encoded header, the values that were not
// UTF-8. No header name holds a NUL byte (names are HTTP tokens), so it
// never collides with one.
const headerRawKey = "\x00raw"

// EncodeHeader returns h as the JSON the stores keep ({"Name":["v1",
// "v2"]}), nil for a nil header. A JSON string holds only UTF-8, and
// HTTP lets a value carry any byte from 0x80 up (obs-text, Latin-1 say):
// such a value is written with each byte as the character of that number
// (U+0080–U+00FF) and listed as "Name\x00index" under headerRawKey, so
// that DecodeHeader gives back the exact bytes the caller sent. A header
// whose values are all UTF-8 is plain JSON, as json.Marshal writes it.
func EncodeHeader(h http.Header) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	var raw []string
	for k, vs := range h {
		for i, v := range vs {
			if !utf8.ValidString(v) {
				raw = append(raw, k+"\x00"+strconv.Itoa(i))
			}
		}
	}
	if raw != nil {
		c := make(http.Header, len(h)+1)
		for k, vs := range h {
			c[k] = vs
		}
		for _, r := range raw {
			k, i := splitRaw(r)
			if &c[k][0] == &h[k][0] {
				c[k] = append([]string(nil), h[k]...) // h is the caller's
			}
			c[k][i] = bytesAsRunes(c[k][i])
		}
		c[headerRawKey] = raw
		h = c
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	return b, nil
}

// DecodeHeader reverses EncodeHeader.
func DecodeHeader(b []byte) (http.Header, error) {
	if b == nil {
		return nil, nil
	}
	var h http.Header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode header: %w", err)
	}
	raw, ok := h[headerRawKey]
	if !ok {
		return h, nil
	}
	delete(h, headerRawKey)
	for _, r := range raw {
		k, i := splitRaw(r)
		if i < 0 || i >= len(h[k]) {
			return nil, fmt.Errorf("decode header: raw value %q: no such value", r)
		}
		v, ok := runesAsBytes(h[k][i])
		if !ok {
			return nil, fmt.Errorf("decode header: raw value %q: not bytes", r)
		}
		h[k][i] = v
	}
	return h, nil
}

// splitRaw splits a headerRawKey entry into the name and the index; the
// index is -1 when it is malformed.
func splitRaw(r string) (string, int) {
	at := strings.LastIndexByte(r, 0)
	if at < 0 {
		return r, -1
	}
	i, err := strconv.Atoi(r[at+1:])
	if err != nil {
		return r[:at], -1
	}
	return r[:at], i
}

// bytesAsRunes writes each byte of s as the rune of that number.
func bytesAsRunes(s string) string {
	b := make([]byte, 0, 2*len(s))
	for i := range len(s) {
		b = utf8.AppendRune(b, rune(s[i]))
	}
	return string(b)
}

// runesAsBytes reverses bytesAsRunes; ok is false when s holds a rune
// above U+00FF.
func runesAsBytes(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}
