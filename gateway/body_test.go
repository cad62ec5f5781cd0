package gateway

import (
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCheckJSONRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body   string
		offset int64
	}{
		{"{\"user\":\"a\xffb\"}", 11},
		{"{\"k\xc3\":1}", 4},
		{"[\"\xed\xa0\x80\"]", 3}, // a UTF-16 surrogate written as UTF-8
		{"\"\xf4\x90\x80\x80\"", 2},
	} {
		e := checkJSON([]byte(tc.body))
		require.NotNil(t, e, "%q", tc.body)
		require.Equal(t, http.StatusBadRequest, e.Status)
		require.Equal(t, "invalid_json", e.Code)
		require.Equal(t, tc.offset, e.Details["offset"], "%q", tc.body)
	}
	for _, ok := range []string{`{"user":"ada é 日本 🎉"}`, `"\ud800"`, `[]`} {
		require.Nil(t, checkJSON([]byte(ok)), ok)
	}
}

// FuzzCheckJSON holds the JSON body check of content_type: json routes to
// RFC 8259: a body passes exactly when it is JSON and UTF-8; a refused one
// gets invalid_json with an offset inside the body.
//
//	go test ./gateway -run '^$' -fuzz FuzzCheckJSON -fuzztime 60s
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "{\"a\":\"\xff\"}", `[`, ``, " ", `"\u0000"`, "\"\xc3\xa9\"", `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := checkJSON(body)
		want := json.Valid(body) && utf8.Valid(body)
		if want != (e == nil) {
			t.Fatalf("checkJSON(%q) = %v; JSON and UTF-8: %v", body, e, want)
		}
		if e == nil {
			return
		}
		off, _ := e.Details["offset"].(int64)
		if e.Code != "invalid_json" || e.Status != http.StatusBadRequest || off < 0 || off > int64(len(body)) {
			t.Fatalf("checkJSON(%q) = %+v", body, e)
		}
	})
}
