package upstream_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/upstream"
)

// TestExchangeHead: the answer to a HEAD has a Content-Length but no body;
// both transports take it as an empty body and keep the connection.
func TestExchangeHead(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`) // dropped by net/http on HEAD, length kept
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	for _, opts := range []upstream.Options{{}, {NoFastPath: true}} {
		c := upstream.New(opts)
		t.Cleanup(c.CloseIdleConnections)
		for range 2 {
			res := c.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/"), Method: http.MethodHead}, 1024)
			require.NoError(t, res.Err, "fast path: %v", !opts.NoFastPath)
			require.Equal(t, http.StatusOK, res.Status)
			require.Empty(t, res.Body)
			require.False(t, res.Truncated)
			require.Equal(t, "11", res.Header.Get("Content-Length"))
		}
	}
	require.EqualValues(t, 2, conns.Load(), "one connection per client, reused")
}
