package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTargetHTTP1FastPath: http1_fast_path is on unless a target says
// false.
func TestTargetHTTP1FastPath(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("fanout.yaml", []byte(`
targets:
  a: {url: "http://a.internal/in"}
  b: {url: "http://b.internal/in", http1_fast_path: false}
  c: {url: "http://c.internal/in", http1_fast_path: true}
routes:
  - name: r
    match: {path: /in}
    mode: all
    targets: [a, b, c]
`), nil)
	require.NoError(t, err)
	require.True(t, cfg.Targets["a"].FastPath())
	require.False(t, cfg.Targets["b"].FastPath())
	require.True(t, cfg.Targets["c"].FastPath())

	_, err = Parse("fanout.yaml", []byte(`
targets:
  a: {url: "http://a.internal/in", http1_fast_path: maybe}
routes:
  - name: r
    match: {path: /in}
    mode: all
    targets: [a]
`), nil)
	require.ErrorContains(t, err, "fanout.yaml:3:")
}
