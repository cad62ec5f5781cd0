package upstream

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
