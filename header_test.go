package fanout_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func TestHeaderEncodingKeepsEveryByte(t *testing.T) {
	t.Parallel()
	for _, h := range []http.Header{
		nil,
		{},
		{"A": {"v"}, "B": {"1", "2"}, "Empty": {""}},
		{"X-Latin1": {"caf\xe9"}, "X-Utf8": {"café ☃"}},
		{"X-Mixed": {"ok", "\xff\xfe", "é", "\x80\x00 tab\t"}, "Y": {"\xc3"}},
	} {
		b, err := fanout.EncodeHeader(h)
		require.NoError(t, err)
		back, err := fanout.DecodeHeader(b)
		require.NoError(t, err)
		require.Equal(t, h, back, "%s", b)
	}

	// The caller's header is not changed.
	h := http.Header{"X": {"a", "\xff"}}
	_, err := fanout.EncodeHeader(h)
	require.NoError(t, err)
	require.Equal(t, http.Header{"X": {"a", "\xff"}}, h)

	// A header written before the raw list existed reads as it did.
	back, err := fanout.DecodeHeader([]byte(`{"A":["é","v"],"B":null}`))
	require.NoError(t, err)
	require.Equal(t, http.Header{"A": {"é", "v"}, "B": nil}, back)

	_, err = fanout.DecodeHeader([]byte(`{"A":["v"],"\u0000raw":["A\u00007"]}`))
	require.Error(t, err, "a raw entry that points nowhere")
}
