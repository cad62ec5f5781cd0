package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendCompactJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1}`:                    `{"a":1}`,
		"{\"a\":1}\n":                `{"a":1}`,
		"  [1, 2]  ":                 `[1, 2]`,
		"{\n  \"a\": [1,\n 2]\n}\n":  `{"a":[1,2]}`,
		"{\"s\":\"tab\\there\"}\r\n": `{"s":"tab\there"}`,
	} {
		got := appendCompactJSON([]byte(`"body":`), []byte(in))
		require.Equal(t, `"body":`+want, string(got), "input %q", in)
	}
}
