package upstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/upstream"
)

// TestResponseHeaderLimit: the fast path and the transport hold a target's
// response header to the same 1 MiB, so a target cannot make Fanout buffer
// more than that, and which of the two took a request does not change
// whether a large header is accepted.
func TestResponseHeaderLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"under the limit", 900 << 10, true},
		{"over the limit", 1100 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Big", strings.Repeat("a", tc.size))
				_, _ = w.Write([]byte("ok"))
			}))
			t.Cleanup(srv.Close)
			for _, opts := range []upstream.Options{{}, {NoFastPath: true}} {
				c := upstream.New(opts)
				t.Cleanup(c.CloseIdleConnections)
				res := c.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/")}, 1024)
				if tc.ok {
					require.NoError(t, res.Err, "fast path: %v", !opts.NoFastPath)
					require.Equal(t, "ok", string(res.Body))
				} else {
					require.Error(t, res.Err, "fast path: %v", !opts.NoFastPath)
					require.Zero(t, res.Status)
					require.Equal(t, fanout.ClassOther, res.Class, "%v", res.Err)
					require.True(t, res.Retryable, "a malformed answer is retried")
				}
			}
		})
	}
}
