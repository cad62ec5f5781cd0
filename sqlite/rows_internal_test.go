package sqlite

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEncodeHeaderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, h := range []http.Header{
		{},
		{"Content-Type": {"application/json"}},
		{"B": {"2", "3"}, "A": {"1"}, "C": {}, "D": nil, "X-Forwarded-For": {"127.0.0.1"}},
		{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "User-Agent": {"wrk"}},
		{"Quote": {`a"b`}},
		{"Html": {"<a&b>"}},
		{"Ctl": {"a\tb"}},
		{"Utf8": {"héllo"}},
		{"Sep": {"a\u2028b"}},
		{"Back": {`a\b`}},
	} {
		want, err := json.Marshal(h)
		require.NoError(t, err)
		got, err := encodeHeader(h)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		back, err := decodeHeader(got)
		require.NoError(t, err)
		require.Equal(t, len(h), len(back))
	}
	got, err := encodeHeader(nil)
	require.NoError(t, err)
	require.Nil(t, got)

	// A value that is not UTF-8 is not what json.Marshal writes (that
	// would be U+FFFD): its bytes come back as they were.
	bad := http.Header{"Bad": {"\xff", "ok"}}
	got, err = encodeHeader(bad)
	require.NoError(t, err)
	back, err := decodeHeader(got)
	require.NoError(t, err)
	require.Equal(t, bad, back)
}

func TestDecodeHeaderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`, `{"A":["1"]}`, `{"A":["1","2"],"B":[],"C":null}`, `{"A":["x"],"A":["y"]}`,
		`{"A":["a\"b"]}`, `{"A":["\u003c"]}`, `{"A":["héllo"]}`, `{ "A": ["1"] }`,
		`{"A":["1"]`, `{"A":["1"],}`, `{"A":"1"}`, `{"A":[1]}`, `[]`, `{"A":["1"]}x`, `{"A":nul}`,
		`{"A":["1",]}`, `{"A":[,"1"]}`, `{"A"["1"]}`, `{`, `{"`, `{"A":[`, `{"A":["1"`, `{"A":["1",`,
	} {
		var want http.Header
		werr := json.Unmarshal([]byte(in), &want)
		got, gerr := decodeHeader([]byte(in))
		if werr != nil {
			require.Error(t, gerr, "%s", in)
			continue
		}
		require.NoError(t, gerr, "%s", in)
		require.Equal(t, want, got, "%s", in)
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	h, err := encodeHeader(http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        {"wrk"},
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {"127.0.0.1:8080"},
		"X-Forwarded-Proto": {"http"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeHeader(b *testing.B) {
	h := http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        {"wrk"},
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {"127.0.0.1:8080"},
		"X-Forwarded-Proto": {"http"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}
