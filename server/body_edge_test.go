package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTrickledBodyThroughServer plays a slow client against a whole
// server: headers at once with Content-Length: 100000, then one body byte
// a second. The route's body_timeout (200ms) cuts it: 408 body_timeout in
// the error shape, the connection closed, and the cut counted on /metrics.
func TestTrickledBodyThroughServer(t *testing.T) {
	t.Parallel()
	tg := &target{status: 200}
	tsrv := httptest.NewServer(tg)
	t.Cleanup(tsrv.Close)
	srv := start(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
store: {dsn: %q}
targets:
  ok: {url: %q}
routes:
  - {name: queued, match: {path: /queued}, mode: async, body_timeout: 200ms, targets: [ok]}
`, filepath.Join(t.TempDir(), "fanout.db"), tsrv.URL))

	conn, err := net.Dial("tcp", srv.DataAddr())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second))) // fails a hang; decides nothing
	_, err = io.WriteString(conn, "POST /queued HTTP/1.1\r\nHost: fanout\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	require.NoError(t, err)

	type answer struct {
		resp   *http.Response
		body   string
		closed bool
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_, eof := br.ReadByte()
		answered <- answer{resp: resp, body: string(b), closed: errors.Is(eof, io.EOF), err: err}
	}()
	tick := time.NewTicker(time.Second) // the trickle: 100000 bytes would take a day
	defer tick.Stop()
	var a answer
	for a.resp == nil && a.err == nil {
		select {
		case a = <-answered:
		case <-tick.C:
			_, _ = io.WriteString(conn, " ")
		}
	}
	require.NoError(t, a.err)
	require.Equal(t, http.StatusRequestTimeout, a.resp.StatusCode, a.body)
	require.JSONEq(t, `{"error":{"code":"body_timeout","message":"the request body did not arrive within the route's body_timeout","details":{"body_timeout":"200ms"}}}`, a.body)
	require.True(t, a.resp.Close, "Connection: close")
	require.True(t, a.closed, "the server closed the connection")
	require.Empty(t, tg.seen(), "nothing was delivered")

	var metrics string
	require.Eventually(t, func() bool {
		_, metrics = get(t, "http://"+srv.AdminAddr()+"/metrics", "")
		return strings.Contains(metrics, `fanout_request_body_timeouts_total{route="queued"} 1`+"\n") &&
			strings.Contains(metrics, `fanout_requests_total{code="408",mode="async",route="queued"} 1`+"\n")
	}, 10*time.Second, 20*time.Millisecond, "metrics: %s", metrics)
}
