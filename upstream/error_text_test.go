package upstream_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// TestErrorTextKeepsTheQueryOut checks that a failed attempt's error text,
// which lands in attempt records and warning logs, never carries the
// target URL's query string, where an API key may sit.
func TestErrorTextKeepsTheQueryOut(t *testing.T) {
	t.Parallel()
	const secret = "sup3r-s3cret-query-value"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)

	c := upstream.New(upstream.Options{})
	t.Cleanup(c.CloseIdleConnections)
	for name, raw := range map[string]string{
		"connect": "http://" + closed + "/in?api_key=" + secret,
		"timeout": slow.URL + "/in?api_key=" + secret,
		"dns":     "http://no-such-host.invalid/in?api_key=" + secret,
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		target := &config.Target{Name: "t", URL: raw, ParsedURL: u, Timeout: config.Duration(200 * time.Millisecond)}
		res := c.Exchange(context.Background(), upstream.Request{Target: target, Method: http.MethodPost, Body: []byte("{}"), MessageID: "msg_1", Attempt: 1}, 1024)
		require.Error(t, res.Err, name)
		require.False(t, strings.Contains(res.Err.Error(), secret), "%s: error text %q carries the query", name, res.Err.Error())
	}
}
