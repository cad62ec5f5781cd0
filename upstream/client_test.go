package upstream_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorded is what a test target saw of one request.
type recorded struct {
	Method, Path string
	Header       http.Header
	Body         string
}

type testBundle struct {
	client *upstream.Client
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	c := upstream.New(upstream.Options{})
	t.Cleanup(c.CloseIdleConnections)
	return &testBundle{client: c}
}

// newTarget starts a server running h and returns a target pointing at
// path on it.
func newTarget(t *testing.T, name, path string, h http.HandlerFunc) (*config.Target, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return target(t, name, srv.URL+path), srv
}

func target(t *testing.T, name, rawURL string) *config.Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return &config.Target{
		Name: name, URL: rawURL, ParsedURL: u,
		Timeout: config.Duration(5 * time.Second),
		Retry:   config.Retry{Initial: config.Duration(10 * time.Millisecond), Max: config.Duration(time.Second), SyncMaxAttempts: 3},
	}
}

// recorder returns a handler that sends each request it sees on a channel
// and answers status with body.
func recorder(status int, contentType, body string) (http.HandlerFunc, chan recorded) {
	ch := make(chan recorded, 16)
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- recorded{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(b)}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}, ch
}

func TestOutboundHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(201, "application/json", `{"id":7}`)
	tg, _ := newTarget(t, "crm", "/api/contacts?x=1", h)
	tg.Method = http.MethodPut
	tg.Headers = map[string]string{"X-Api-Key": "s3cret", "x-team": "growth"}
	tg.Redact = []string{"X-Team"}

	in := http.Header{
		"Connection":          {"keep-alive, X-Hop-Named"},
		"X-Hop-Named":         {"dropped"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Proxy-Connection":    {"keep-alive"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-Sum"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"Content-Length":      {"999"},
		"Host":                {"evil.example"},
		"Content-Type":        {"application/json"},
		"X-Custom":            {"a", "b"},
		"Authorization":       {"Bearer inbound"},
		"X-Forwarded-For":     {"1.1.1.1"},
		"Fanout-Message-Id":   {"spoofed"},
		"Tracestate":          {"vendor=1"},
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	res := b.client.Exchange(context.Background(), upstream.Request{
		Target: tg, Method: http.MethodPost, Header: in, Body: []byte(`{"a":1}`),
		MessageID: "msg_1", Attempt: 2,
		Inbound: upstream.Inbound{RemoteAddr: "10.0.0.9:5555", Host: "api.example.com", Proto: "https", Traceparent: tp},
	}, 1024)
	require.NoError(t, res.Err)
	require.Equal(t, fanout.ClassNone, res.Class)
	require.Equal(t, 201, res.Status)
	require.JSONEq(t, `{"id":7}`, string(res.Body))

	got := <-seen
	require.Equal(t, http.MethodPut, got.Method)
	require.Equal(t, "/api/contacts?x=1", got.Path, "the target URL is used as is")
	require.Equal(t, `{"a":1}`, got.Body)
	for _, k := range []string{"X-Hop-Named", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		require.Empty(t, got.Header.Values(k), k)
	}
	require.Equal(t, []string{"a", "b"}, got.Header.Values("X-Custom"))
	require.Equal(t, "Bearer inbound", got.Header.Get("Authorization"))
	require.Equal(t, "s3cret", got.Header.Get("X-Api-Key"))
	require.Equal(t, "growth", got.Header.Get("X-Team"))
	require.Equal(t, "msg_1", got.Header.Get("Idempotency-Key"))
	require.Equal(t, []string{"msg_1"}, got.Header.Values("Fanout-Message-Id"))
	require.Equal(t, "2", got.Header.Get("Fanout-Attempt"))
	require.Equal(t, "crm", got.Header.Get("Fanout-Target"))
	require.Equal(t, "1.1.1.1, 10.0.0.9", got.Header.Get("X-Forwarded-For"))
	require.Equal(t, "https", got.Header.Get("X-Forwarded-Proto"))
	require.Equal(t, "api.example.com", got.Header.Get("X-Forwarded-Host"))
	require.Equal(t, tp, got.Header.Get("Traceparent"))
	require.Equal(t, "vendor=1", got.Header.Get("Tracestate"))
	require.Equal(t, "7", got.Header.Get("Content-Length"))

	// The request as recorded has its secrets redacted.
	require.Equal(t, http.MethodPut, res.RequestMethod)
	require.Equal(t, tg.URL, res.RequestURL)
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("Authorization"))
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("X-Api-Key"))
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("X-Team"))
	require.Equal(t, "msg_1", res.RequestHeader.Get("Fanout-Message-Id"))
	// The caller's header is untouched.
	require.Equal(t, "dropped", in.Get("X-Hop-Named"))
	require.Len(t, in, 17)
}

func TestTraceparent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/", h)
	const valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

	cases := []struct {
		name, inbound, header string
		keep                  bool
	}{
		{name: "missing"},
		{name: "malformed inbound", inbound: "00-xyz-01", keep: false},
		{name: "all-zero trace id", inbound: "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
		{name: "uppercase", inbound: strings.ToUpper(valid)},
		{name: "from stored header", header: valid, keep: true},
		{name: "inbound", inbound: valid, keep: true},
	}
	for _, tc := range cases {
		hdr := http.Header{"Tracestate": {"v=1"}}
		if tc.header != "" {
			hdr.Set("Traceparent", tc.header)
		}
		res := b.client.Exchange(context.Background(), upstream.Request{
			Target: tg, Header: hdr, Inbound: upstream.Inbound{Traceparent: tc.inbound},
		}, 0)
		require.NoError(t, res.Err, tc.name)
		got := (<-seen).Header
		tp := got.Get("Traceparent")
		require.True(t, upstream.ValidTraceparent(tp), "%s: %q", tc.name, tp)
		if tc.keep {
			require.Equal(t, valid, tp, tc.name)
			require.Equal(t, "v=1", got.Get("Tracestate"), tc.name)
		} else {
			require.NotEqual(t, valid, tp, tc.name)
			require.Empty(t, got.Get("Tracestate"), "%s: a new trace drops the old tracestate", tc.name)
		}
	}
	// A malformed inbound traceparent replaced by the gateway's new one:
	// the old tracestate goes too.
	fresh := upstream.NewTraceparent()
	res := b.client.Exchange(context.Background(), upstream.Request{
		Target: tg, Header: http.Header{"Traceparent": {"garbage"}, "Tracestate": {"v=1"}},
		Inbound: upstream.Inbound{Traceparent: fresh},
	}, 0)
	require.NoError(t, res.Err)
	got := (<-seen).Header
	require.Equal(t, fresh, got.Get("Traceparent"))
	require.Empty(t, got.Get("Tracestate"))

	require.True(t, upstream.ValidTraceparent(upstream.NewTraceparent()))
	require.NotEqual(t, upstream.NewTraceparent(), upstream.NewTraceparent())
}

func TestForwardedHeader(t *testing.T) {
	t.Parallel()
	in := http.Header{
		"Connection":      {"X-Hop"},
		"X-Hop":           {"1"},
		"Content-Length":  {"3"},
		"Content-Type":    {"text/plain"},
		"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"},
	}
	out := upstream.ForwardedHeader(in, upstream.Inbound{RemoteAddr: "[::1]:80", Host: "h", Proto: "http"})
	require.Empty(t, out.Get("X-Hop"))
	require.Empty(t, out.Get("Connection"))
	require.Empty(t, out.Get("Content-Length"))
	require.Equal(t, "text/plain", out.Get("Content-Type"))
	require.Equal(t, "1.1.1.1, 2.2.2.2, ::1", out.Get("X-Forwarded-For"))
	require.Equal(t, "h", out.Get("X-Forwarded-Host"))
	require.Equal(t, "http", out.Get("X-Forwarded-Proto"))
	require.True(t, upstream.ValidTraceparent(out.Get("Traceparent")))

	// Sent later with an empty Inbound, the stored values go through as is.
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/", h)
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Header: out, Attempt: 3}, 0)
	require.NoError(t, res.Err)
	got := (<-seen).Header
	require.Equal(t, "1.1.1.1, 2.2.2.2, ::1", got.Get("X-Forwarded-For"))
	require.Equal(t, out.Get("Traceparent"), got.Get("Traceparent"))
	require.Equal(t, "3", got.Get("Fanout-Attempt"))

	h2 := http.Header{"X-Keep": {"1"}, "Keep-Alive": {"x"}, "Connection": {"x-keep"}}
	upstream.RemoveHopByHop(h2)
	require.Empty(t, h2)
}

func TestExchangeClassification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	t.Run("status retryable", func(t *testing.T) {
		t.Parallel()
		h, _ := recorder(503, "text/plain", "down")
		tg, _ := newTarget(t, "t", "/", h)
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, fanout.ClassStatus, res.Class)
		require.Equal(t, 503, res.Status)
		require.Equal(t, "down", string(res.Body))
		require.True(t, res.Retryable)
		var se *upstream.StatusError
		require.ErrorAs(t, res.Err, &se)
		require.Equal(t, 503, se.Status)
	})
	t.Run("4xx", func(t *testing.T) {
		t.Parallel()
		h, _ := recorder(404, "", "")
		tg, _ := newTarget(t, "t", "/", h)
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, fanout.ClassStatus, res.Class)
		require.False(t, res.Retryable)
		tg.Retry.RetryAll4xx = true
		res = b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.True(t, res.Retryable)
	})
	t.Run("retry-after seconds", func(t *testing.T) {
		t.Parallel()
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, 3*time.Second, res.RetryAfter)
		require.True(t, res.Retryable)
	})
	t.Run("retry-after date", func(t *testing.T) {
		t.Parallel()
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.InDelta(t, time.Hour.Seconds(), res.RetryAfter.Seconds(), 5)
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		})
		tg.Timeout = config.Duration(50 * time.Millisecond)
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, fanout.ClassTimeout, res.Class, "%v", res.Err)
		require.True(t, res.Retryable)
		require.Zero(t, res.Status)
		require.GreaterOrEqual(t, res.Duration, 50*time.Millisecond)
	})
	t.Run("timeout while reading the body", func(t *testing.T) {
		t.Parallel()
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		tg.Timeout = config.Duration(500 * time.Millisecond) // the headers arrive first
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, fanout.ClassTimeout, res.Class, "%v", res.Err)
		require.Equal(t, 200, res.Status)
	})
	t.Run("connect", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		res := b.client.Exchange(ctx, upstream.Request{Target: target(t, "t", "http://"+addr+"/")}, 100)
		require.Equal(t, fanout.ClassConnect, res.Class, "%v", res.Err)
		require.True(t, res.Retryable)
	})
	t.Run("dns", func(t *testing.T) {
		t.Parallel()
		res := b.client.Exchange(ctx, upstream.Request{Target: target(t, "t", "http://does-not-exist.invalid/")}, 100)
		require.Equal(t, fanout.ClassConnect, res.Class, "%v", res.Err)
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
		srv.StartTLS()
		t.Cleanup(srv.Close)
		res := b.client.Exchange(ctx, upstream.Request{Target: target(t, "t", srv.URL+"/")}, 100)
		require.Equal(t, fanout.ClassTLS, res.Class, "%v", res.Err)
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		arrived := make(chan struct{})
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			close(arrived)
			<-r.Context().Done()
		})
		cctx, cancel := context.WithCancel(ctx)
		go func() { <-arrived; cancel() }()
		res := b.client.Exchange(cctx, upstream.Request{Target: tg}, 100)
		require.Equal(t, fanout.ClassCanceled, res.Class, "%v", res.Err)
		require.False(t, res.Retryable)
	})
	t.Run("connection closed mid-body", func(t *testing.T) {
		t.Parallel()
		tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			_ = buf.Flush()
			_ = conn.Close()
		})
		res := b.client.Exchange(ctx, upstream.Request{Target: tg}, 1000)
		require.Equal(t, fanout.ClassConnect, res.Class, "%v", res.Err)
		require.Equal(t, 200, res.Status)
		require.True(t, res.Retryable)
	})
	t.Run("bad method", func(t *testing.T) {
		t.Parallel()
		tg := target(t, "t", "http://127.0.0.1:1/")
		res := b.client.Exchange(ctx, upstream.Request{Target: tg, Method: "BAD METHOD"}, 100)
		require.Equal(t, fanout.ClassOther, res.Class)
		require.False(t, res.Retryable)
	})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	require.Equal(t, fanout.ClassNone, upstream.Classify(nil))
	require.Equal(t, fanout.ClassCanceled, upstream.Classify(fmt.Errorf("x: %w", context.Canceled)))
	require.Equal(t, fanout.ClassTimeout, upstream.Classify(context.DeadlineExceeded))
	require.Equal(t, fanout.ClassTLS, upstream.Classify(x509.UnknownAuthorityError{}))
	require.Equal(t, fanout.ClassConnect, upstream.Classify(io.ErrUnexpectedEOF))
	require.Equal(t, fanout.ClassStatus, upstream.Classify(&upstream.StatusError{Status: 500}))
	require.Equal(t, fanout.ClassOther, upstream.Classify(fmt.Errorf("weird")))
}

func TestTruncation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := strings.Repeat("x", 200<<10)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 100
		switch r.URL.Path {
		case "/big":
			_, _ = io.WriteString(w, big)
			return
		case "/chunked":
			for range 10 {
				_, _ = io.WriteString(w, "0123456789")
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(n))
		_, _ = io.WriteString(w, strings.Repeat("y", n))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	res := b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/fixed")}, 10)
	require.NoError(t, res.Err)
	require.True(t, res.Truncated)
	require.Equal(t, "yyyyyyyyyy", string(res.Body))

	res = b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/fixed")}, 100)
	require.False(t, res.Truncated)
	require.Len(t, res.Body, 100)

	res = b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/chunked")}, 15)
	require.True(t, res.Truncated)
	require.Equal(t, "012345678901234", string(res.Body))
	res = b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/chunked")}, 1000)
	require.False(t, res.Truncated)
	require.Len(t, res.Body, 100)
	require.EqualValues(t, 1, conns.Load(), "drained bodies keep the connection")

	res = b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/big")}, 10)
	require.NoError(t, res.Err)
	require.True(t, res.Truncated)
	require.Len(t, res.Body, 10)
}

func TestDoStreamsAndTimesOutBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head")
		w.(http.Flusher).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "tail")
		case <-r.Context().Done():
		}
	})
	resp, err := b.client.Do(context.Background(), upstream.Request{Target: tg})
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	close(release)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "tail", string(rest))
	require.NoError(t, resp.Body.Close())

	// Long enough for the headers to arrive on a loaded machine.
	tg.Timeout = config.Duration(500 * time.Millisecond)
	stall, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	stall.Timeout = tg.Timeout
	resp, err = b.client.Do(context.Background(), upstream.Request{Target: stall})
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err)
	require.Equal(t, fanout.ClassTimeout, upstream.Classify(err), "%v", err)
	require.NoError(t, resp.Body.Close())
}

func TestHTTP2OverTLS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s", r.Proto, body)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	b.client.Transport().TLSClientConfig.RootCAs = pool

	res := b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", srv.URL+"/"), Body: []byte("hi")}, 100)
	require.NoError(t, res.Err)
	require.Equal(t, "HTTP/2.0 hi", string(res.Body))
}

func TestConnectionReuseUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tg := target(t, "t", srv.URL+"/")

	const workers, each = 16, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				res := b.client.Exchange(context.Background(), upstream.Request{Target: tg, Body: []byte("x")}, 10)
				if res.Err != nil {
					t.Error(res.Err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The transport may dial a spare connection while a request waits
	// for one to come back; 800 requests on 16 workers still stay near 16.
	require.LessOrEqual(t, conns.Load(), int32(2*workers), "idle connections are reused, not one per request")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := config.Retry{Initial: config.Duration(100 * time.Millisecond), Max: config.Duration(5 * time.Second)}
	rnd := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt <= 70; attempt++ {
		ceil := min(5*time.Second, 100*time.Millisecond<<min(attempt-1, 20))
		var top time.Duration
		for range 200 {
			d := upstream.Backoff(p, attempt, rnd)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, ceil, "attempt %d", attempt)
			top = max(top, d)
		}
		require.Greater(t, top, ceil/2, "attempt %d: full jitter spreads over [0, ceil]", attempt)
	}
	// Defaults and the global source.
	for range 100 {
		d := upstream.Backoff(config.Retry{}, 1, nil)
		require.LessOrEqual(t, d, time.Second)
		require.LessOrEqual(t, upstream.Backoff(config.Retry{}, 1000, nil), time.Hour)
	}
	require.LessOrEqual(t, upstream.Backoff(p, 0, rnd), 100*time.Millisecond)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"120":                           2 * time.Minute,
		" 5 ":                           5 * time.Second,
		"-1":                            0,
		"1.5":                           0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:05:05 GMT": time.Minute,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
		"99999999999999999999999":       0,
	} {
		require.Equal(t, want, upstream.ParseRetryAfter(v, now), "%q", v)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Authorization": {"Bearer x"},
		"Cookie":        {"a=1", "b=2"},
		"Set-Cookie":    {"c=3"},
		"X-Api-Key":     {"k"},
		"X-Signature":   {"sig"},
		"Content-Type":  {"application/json"},
	}
	r := upstream.Redact(h, []string{"x-signature"})
	require.Equal(t, []string{"[REDACTED]"}, r["Authorization"])
	require.Equal(t, []string{"[REDACTED]", "[REDACTED]"}, r["Cookie"])
	require.Equal(t, []string{"[REDACTED]"}, r["Set-Cookie"])
	require.Equal(t, []string{"[REDACTED]"}, r["X-Api-Key"])
	require.Equal(t, []string{"[REDACTED]"}, r["X-Signature"])
	require.Equal(t, "application/json", r.Get("Content-Type"))
	require.Equal(t, "Bearer x", h.Get("Authorization"), "the original is untouched")
	require.Nil(t, upstream.Redact(nil, nil))
}

func TestRetryableStatus(t *testing.T) {
	t.Parallel()
	var p config.Retry
	for _, s := range []int{408, 425, 429, 500, 502, 503, 504, 599} {
		require.True(t, upstream.RetryableStatus(p, s), s)
	}
	for _, s := range []int{200, 204, 301, 400, 401, 404, 409, 422} {
		require.False(t, upstream.RetryableStatus(p, s), s)
	}
	p.RetryStatus = []int{409}
	require.True(t, upstream.RetryableStatus(p, 409))
	require.False(t, upstream.RetryableStatus(p, 503))
	p.RetryStatus = []int{}
	require.False(t, upstream.RetryableStatus(p, 503), "an empty list retries no status")
	p.RetryAll4xx = true
	require.True(t, upstream.RetryableStatus(p, 404))
	require.True(t, upstream.IsSuccess(299))
	require.False(t, upstream.IsSuccess(300))
}

// BenchmarkExchange measures one attempt against a loopback target (the
// target's cost included), through the HTTP/1.1 fast path ("fast") and
// through the http.Transport ("transport"), side by side:
//
//	go test ./upstream -run '^$' -bench Exchange -count 5
func BenchmarkExchange(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")
	tg := &config.Target{Name: "t", URL: srv.URL + "/", ParsedURL: u, Timeout: config.Duration(5 * time.Second)}
	body := []byte(strings.Repeat("x", 1024))
	hdr := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"wrk"}}
	for _, bc := range []struct {
		name string
		opts upstream.Options
	}{{"fast", upstream.Options{}}, {"transport", upstream.Options{NoFastPath: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			c := upstream.New(bc.opts)
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(16) // throughput, not one request's latency
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res := c.Exchange(context.Background(), upstream.Request{Target: tg, Header: hdr, Body: body, MessageID: "msg_x", Attempt: 1}, 1024)
					if res.Err != nil {
						b.Error(res.Err)
						return
					}
				}
			})
		})
	}
}

// TestRequestIsOneWrite checks that headers and a small body leave in one
// write: a target reading once gets the whole request.
func TestRequestIsOneWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	first := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			first <- ""
			return
		}
		defer conn.Close()
		buf := make([]byte, 64<<10)
		n, _ := conn.Read(buf)
		first <- string(buf[:n])
		_, _ = io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n")
	}()
	body := strings.Repeat("b", 1024)
	res := b.client.Exchange(context.Background(), upstream.Request{Target: target(t, "t", "http://"+ln.Addr().String()+"/"), Body: []byte(body)}, 0)
	require.NoError(t, res.Err)
	got := <-first
	require.True(t, strings.HasSuffix(got, "\r\n\r\n"+body), "the first read holds headers and body: %q", got)
}
