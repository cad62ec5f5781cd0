package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
)

// TestH1SweepIdle: the sweep closes idle connections past the idle timeout
// and those the server closed, and keeps the others.
func TestH1SweepIdle(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	server := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			server <- c
		}
	}()
	tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext, IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 10}
	p := newH1(tr)
	t.Cleanup(p.closeIdle)
	addr := ln.Addr().String()
	var conns []*h1Conn
	for range 3 {
		pc, err := p.get(context.Background(), addr)
		require.NoError(t, err)
		conns = append(conns, pc)
		p.put(pc)
	}
	// The pool hands out its most recent connection: take all three out
	// before putting them back.
	require.Len(t, p.hosts[addr].idle, 1, "one connection reused")
	p.closeIdle()
	conns = conns[:0]
	for range 3 {
		pc, err := p.get(context.Background(), addr)
		require.NoError(t, err)
		conns = append(conns, pc)
	}
	for _, pc := range conns {
		p.put(pc)
	}
	// Server sides in dial order: the one closed by closeIdle above, then
	// conns[0], conns[1], conns[2].
	var srv [4]net.Conn
	for i := range srv {
		srv[i] = <-server
	}
	t.Cleanup(func() {
		for _, c := range srv {
			_ = c.Close()
		}
	})
	_ = srv[2].Close()                                 // the server closes conns[1]
	conns[0].idleAt = time.Now().Add(-2 * time.Minute) // past the idle timeout
	conns[1].idleAt = time.Now().Add(-time.Second)     // checked: closed
	conns[2].idleAt = time.Now().Add(-time.Second)     // checked: alive
	// The FIN reaches conns[1] when the kernel delivers it: sweep until
	// the sweep sees it, within a generous deadline, rather than sleeping
	// for a guess. A live connection stays through every sweep.
	idle := func() []*h1Conn {
		p.mu.Lock()
		defer p.mu.Unlock()
		return append([]*h1Conn(nil), p.hosts[addr].idle...)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.sweepIdle()
		got := idle()
		require.Contains(t, got, conns[2], "the live connection is kept")
		require.NotContains(t, got, conns[0], "past the idle timeout")
		if len(got) == 1 {
			break
		}
		require.False(t, time.Now().After(deadline), "the connection the server closed is still pooled")
		<-time.After(5 * time.Millisecond) // a poll interval, not a synchronisation
	}
}

// BenchmarkH1Probe measures the check every reuse of an idle connection
// costs (one non-blocking peek):
//
//	go test ./upstream -run '^$' -bench H1Probe
func BenchmarkH1Probe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	p := newH1(&http.Transport{DialContext: (&net.Dialer{}).DialContext})
	pc, err := p.get(context.Background(), ln.Addr().String())
	require.NoError(b, err)
	defer pc.close()
	srv := <-accepted
	defer srv.Close()
	b.ReportAllocs()
	for b.Loop() {
		if !pc.alive() {
			b.Fatal("an idle connection looks closed")
		}
	}
}

// TestH1RoundTripper: the fast path is an http.RoundTripper that takes
// what it can and hands the rest to the transport, and says which took a
// request.
func TestH1RoundTripper(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method)
	}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
	p := newH1(tr)
	t.Cleanup(func() { p.closeIdle(); tr.CloseIdleConnections() })
	var rt http.RoundTripper = p
	for _, tc := range []struct {
		close bool // Connection: close is the transport's
		fast  bool
	}{{false, true}, {true, false}} {
		req, err := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("x"))
		require.NoError(t, err)
		req.Close = tc.close
		resp, fast, err := p.send(req)
		require.NoError(t, err)
		require.Equal(t, tc.fast, fast)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, "PUT", string(b))

		req, err = http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Close = tc.close
		resp, err = rt.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
}

// TestTargetTurnsFastPathOff: a target with http1_fast_path: false is
// sent through the transport; the others through the fast path.
func TestTargetTurnsFastPathOff(t *testing.T) {
	t.Parallel()
	if !h1Supported {
		t.Skip("no fast path here")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c := New(Options{})
	t.Cleanup(c.CloseIdleConnections)
	off := false
	for _, flag := range []*bool{&off, nil} {
		u, err := url.Parse(srv.URL + "/")
		require.NoError(t, err)
		tg := &config.Target{Name: "t", URL: u.String(), ParsedURL: u, Timeout: config.Duration(5 * time.Second), HTTP1FastPath: flag}
		r := Request{Target: tg, Body: []byte("x")}
		_, resp, err := c.send(context.Background(), &r)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, flag == nil, r.fast, "http1_fast_path: %v", flag)
	}
}
