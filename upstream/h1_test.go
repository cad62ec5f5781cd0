package upstream_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/upstream"
)

// rawOnce accepts one connection, reads one request (headers and a
// Content-Length body), answers with resp and returns the request's bytes.
func rawOnce(t *testing.T, resp string) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			ch <- ""
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		var raw bytes.Buffer
		req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(br, &raw)))
		if err == nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
		_, _ = io.WriteString(conn, resp)
		ch <- raw.String()
	}()
	return ln.Addr().String(), ch
}

// TestFastPathSendsTheTransportsBytes: the HTTP/1.1 fast path puts the same
// bytes on the wire as the http.Transport for the same attempt.
func TestFastPathSendsTheTransportsBytes(t *testing.T) {
	t.Parallel()
	hdr := http.Header{
		"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}, "User-Agent": {"wrk"},
		"X-Spaces": {"  padded\t"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Connection": {"close"}, "Accept-Encoding": {"br"},
	}
	for _, decode := range []bool{true, false} {
		var wire [2]string
		for i, opts := range []upstream.Options{{}, {NoFastPath: true}} {
			c := upstream.New(opts)
			addr, got := rawOnce(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			tg := target(t, "t", "http://"+addr+"/p?q=1")
			tg.Headers = map[string]string{"x-static": "s"}
			r := upstream.Request{Target: tg, Header: hdr, Body: []byte(`{"a":1}`), MessageID: "msg_1", Attempt: 2,
				Inbound: upstream.Inbound{RemoteAddr: "10.0.0.1:5", Host: "in.example", Proto: "http"}}
			if decode {
				res := c.Exchange(context.Background(), r, 10)
				require.NoError(t, res.Err)
				require.Equal(t, "ok", string(res.Body))
			} else {
				resp, err := c.Do(context.Background(), r)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				require.NoError(t, resp.Body.Close())
			}
			wire[i] = strings.Replace(<-got, addr, "ADDR", 1)
			c.CloseIdleConnections()
		}
		require.Equal(t, wire[1], wire[0], "decode=%v", decode)
	}
}

// TestFastPathGzip: without an Accept-Encoding from the caller, gzip is
// asked for and decoded, as the transport does.
func TestFastPathGzip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "gzip", r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, `{"zipped":true}`)
		_ = zw.Close()
	})
	for range 3 { // and the connection is reused after a gzip body
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: []byte("x")}, 100)
		require.NoError(t, res.Err)
		require.Equal(t, `{"zipped":true}`, string(res.Body))
		require.Empty(t, res.Header.Get("Content-Encoding"))
	}
}

// TestFastPathKeepAliveAndClose: connections are reused, chunked bodies
// included, and not after Connection: close; 1xx answers are skipped.
func TestFastPathKeepAliveAndClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/chunked":
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/early":
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "made")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	get := func(path string) *upstream.Result {
		res := b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+path), Body: []byte("x")}, 100)
		require.NoError(t, res.Err)
		return &res
	}
	require.Equal(t, "ok", string(get("/").Body))
	require.Equal(t, "part1part2", string(get("/chunked").Body))
	res := get("/early")
	require.Equal(t, http.StatusCreated, res.Status)
	require.Equal(t, "made", string(res.Body))
	require.Equal(t, "ok", string(get("/").Body))
	require.Equal(t, int32(1), conns.Load(), "one keep-alive connection")
	require.Equal(t, "bye", string(get("/close").Body))
	require.Equal(t, "ok", string(get("/").Body))
	require.Equal(t, int32(2), conns.Load(), "a new connection after Connection: close")
}

// TestFastPathStaleConnection: a pooled connection the server closed is
// noticed (or the attempt replayed once on a fresh one), not reported as a
// failure.
func TestFastPathStaleConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	// Answers one request per connection and closes it without saying so.
	var accepted, closed atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer closed.Add(1)
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	tg := target(t, "t", "http://"+ln.Addr().String()+"/")
	for range 5 {
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: []byte("x"), MessageID: "msg_1"}, 10)
		require.NoError(t, res.Err)
		require.Equal(t, "ok", string(res.Body))
	}
	// Not replayable (a POST without an idempotency key): the connection
	// idle for a while is checked before reuse and not used. The test
	// waits until the server has closed every connection (the close the
	// check must notice), then ages the idle connection instead of
	// waiting for the wall clock.
	require.Eventually(t, func() bool { return closed.Load() == accepted.Load() }, 10*time.Second, time.Millisecond)
	upstream.AgeIdle(b.client, time.Second)
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: []byte("x")}, 10)
	require.NoError(t, res.Err)
}

// TestFastPathCancel: a canceled attempt ends a blocked read at once and is
// classified canceled; the deadline one is a timeout.
func TestFastPathCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server watches the connection
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res := b.client.Exchange(ctx, upstream.Request{Target: tg, Body: []byte("x")}, 10)
	require.Equal(t, fanout.ClassCanceled, res.Class, "%v", res.Err)

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res = b.client.Exchange(ctx, upstream.Request{Target: tg, Body: []byte("x")}, 10)
	require.Equal(t, fanout.ClassTimeout, res.Class, "%v", res.Err)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	require.True(t, strings.Contains(res.Err.Error(), "deadline") || strings.Contains(res.Err.Error(), "timeout"), "%v", res.Err)
}
