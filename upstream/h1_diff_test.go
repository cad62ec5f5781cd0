package upstream

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
)

// The differential tests: raw loopback targets answer with chosen bytes,
// once through the http.Transport and once through the fast path, and
// both must come out the same — the first answer, whether the connection
// carries the second request, and the second answer (which must never be
// made of bytes the target sent outside it).

// rawScript is what a raw target sends on the first connection.
type rawScript struct {
	resp   []byte // the answer to the first request: any bytes
	splits []int  // resp leaves in pieces cut there, each after the previous one reached the client
	fin    bool   // close the write side after resp
	late   []byte // sent once the first exchange is over (its body read and closed), before the second request
}

const rawOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// rawOutcome is what a client made of a rawScript.
type rawOutcome struct {
	Err1          bool
	Status        int
	Header        http.Header
	ContentLength int64
	Close         bool
	Uncompressed  bool
	Body          string
	BodyErr       bool
	Trailer       http.Header
	Err2          bool
	Status2       int
	Body2         string
	Reused        bool // the second request went on the first connection

	errs []string // for failure messages only
}

// rawTarget serves a rawScript on its first connection and rawOK to every
// other request.
type rawTarget struct {
	ln       net.Listener
	script   rawScript
	dialed   chan net.Conn // the client side of the first connection
	sent     chan struct{} // resp (and the FIN) reached the client
	lateGo   chan struct{} // closed by the test: send late
	lateSent chan struct{} // late reached the client
	closed   chan struct{} // the client closed the first connection
	stop     chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	seen  []int // the connection index of every request after the first
}

func startRawTarget(t testing.TB, s rawScript) *rawTarget {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rt := &rawTarget{
		ln: ln, script: s, dialed: make(chan net.Conn, 1), sent: make(chan struct{}), lateGo: make(chan struct{}),
		lateSent: make(chan struct{}), closed: make(chan struct{}), stop: make(chan struct{}),
	}
	rt.wg.Add(1)
	go rt.accept()
	return rt
}

func (rt *rawTarget) accept() {
	defer rt.wg.Done()
	for i := 0; ; i++ {
		c, err := rt.ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		rt.mu.Lock()
		rt.conns = append(rt.conns, c)
		rt.mu.Unlock()
		rt.wg.Add(1)
		if i == 0 {
			go rt.serveFirst(c)
		} else {
			go rt.serveOthers(i, c)
		}
	}
}

func (rt *rawTarget) record(i int) {
	rt.mu.Lock()
	rt.seen = append(rt.seen, i)
	rt.mu.Unlock()
}

func (rt *rawTarget) serveFirst(c net.Conn) {
	defer rt.wg.Done()
	defer close(rt.closed)
	sentOnce, lateOnce := sync.OnceFunc(func() { close(rt.sent) }), sync.OnceFunc(func() { close(rt.lateSent) })
	defer sentOnce()
	defer lateOnce()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	var cc net.Conn
	select {
	case cc = <-rt.dialed: // sent before the dial returned: no wait
	case <-rt.stop:
		return
	}
	var n int64
	for _, piece := range pieces(rt.script.resp, rt.script.splits) {
		if _, err := c.Write(piece); err != nil {
			break
		}
		n += int64(len(piece))
		waitArrival(cc, n, false)
	}
	if rt.script.fin {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	waitArrival(cc, n, rt.script.fin)
	sentOnce()
	select {
	case <-rt.lateGo:
	case <-rt.stop:
		return
	}
	if len(rt.script.late) > 0 && !rt.script.fin {
		if _, err := c.Write(rt.script.late); err == nil {
			n += int64(len(rt.script.late))
			waitArrival(cc, n, false)
		}
	}
	lateOnce()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return // the client closed the connection (or the test ended)
		}
		rt.record(0)
		_, _ = io.Copy(io.Discard, req.Body)
		if rt.script.fin {
			continue
		}
		if _, err := io.WriteString(c, rawOK); err != nil {
			return
		}
	}
}

func (rt *rawTarget) serveOthers(i int, c net.Conn) {
	defer rt.wg.Done()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		rt.record(i)
		_, _ = io.Copy(io.Discard, req.Body)
		if _, err := io.WriteString(c, rawOK); err != nil {
			return
		}
	}
}

func (rt *rawTarget) close() {
	close(rt.stop)
	_ = rt.ln.Close()
	rt.mu.Lock()
	for _, c := range rt.conns {
		_ = c.Close()
	}
	rt.mu.Unlock()
	rt.wg.Wait()
}

// pieces cuts b at the offsets in splits (out of range or repeated ones
// are ignored).
func pieces(b []byte, splits []int) [][]byte {
	cuts := slices.Clone(splits)
	slices.Sort(cuts)
	var out [][]byte
	last := 0
	for _, c := range cuts {
		if c > last && c < len(b) {
			out = append(out, b[last:c])
			last = c
		}
	}
	return append(out, b[last:])
}

// eofReader records whether its reader ran out.
type eofReader struct {
	r      io.Reader
	hitEOF bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.hitEOF = true
	}
	return n, err
}

// readRaw reads resp as http.ReadResponse reads it (1xx skipped, the body
// to its end) and reports whether a reader needs no more bytes than resp
// (complete: the target need not close for the client to finish) and
// whether the transport keeps the connection after it (a final answer
// that does not say close and no byte after it). The harness uses it only
// to know what to wait for; the clients are compared with each other.
func readRaw(resp []byte, method string) (complete, keep bool) {
	er := &eofReader{r: bytes.NewReader(resp)}
	br := bufio.NewReader(er)
	req := &http.Request{Method: method}
	for {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			return !er.hitEOF, false
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return !isProtocolSwitch(res), false // a switch's body runs to the close
		}
		if res.StatusCode >= 100 && res.StatusCode <= 199 {
			continue
		}
		_, err = io.Copy(io.Discard, res.Body)
		if err != nil || er.hitEOF {
			return !er.hitEOF, false
		}
		return true, !res.Close && br.Buffered() == 0
	}
}

// rawClient is one side of the comparison.
type rawClient struct {
	name      string
	roundTrip func(*http.Request) (*http.Response, error)
	closeIdle func()
	// watchesIdle: the client closes an idle connection by itself when
	// bytes arrive on it (the transport's readLoop); the harness waits
	// for that close so that the second request does not race with it.
	watchesIdle bool
}

// rawClients returns a fresh transport and a fresh fast path, each with a
// dialer that hands the first connection's client side to rt.
func rawClients(t testing.TB, rt *rawTarget) []rawClient {
	newTransport := func() *http.Transport {
		var once sync.Once
		d := &net.Dialer{Timeout: 10 * time.Second}
		return &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				if err == nil {
					once.Do(func() { rt.dialed <- c })
				}
				return c, err
			},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     time.Minute,
		}
	}
	tr := newTransport()
	p := newH1(newTransport())
	return []rawClient{
		{name: "transport", roundTrip: tr.RoundTrip, closeIdle: tr.CloseIdleConnections, watchesIdle: true},
		{name: "fast", roundTrip: func(req *http.Request) (*http.Response, error) {
			require.True(t, p.eligible(req), "the fast path takes the request")
			return p.roundTrip(req)
		}, closeIdle: p.closeIdle},
	}
}

// rawRequest is the first request of a comparison.
type rawRequest struct {
	method   string // GET, HEAD or POST
	identity bool   // the caller sends Accept-Encoding: identity (no transparent gzip)
}

func (r rawRequest) build(ctx context.Context, addr, path string) *http.Request {
	var body io.Reader
	if r.method == http.MethodPost {
		body = strings.NewReader(`{"a":1}`)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, "http://"+addr+path, body)
	if err != nil {
		panic(err)
	}
	if r.identity {
		req.Header.Set("Accept-Encoding", "identity")
	}
	return req
}

// wait waits for ch with a generous deadline.
func wait(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// runRaw sends two requests through each client to a fresh raw target
// serving s and returns what each made of them.
func runRaw(t testing.TB, s rawScript, r rawRequest) (transport, fast rawOutcome) {
	complete, keep := readRaw(s.resp, r.method)
	if !complete {
		s.fin = true // nothing blocks: the target closes where the answer is short
	}
	if s.fin {
		s.late = nil
	}
	expectClose := !keep || s.fin || len(s.late) > 0
	var out [2]rawOutcome
	for i := range out {
		rt := startRawTarget(t, s)
		c := rawClients(t, rt)[i]
		out[i] = runRawOnce(t, rt, c, r, expectClose)
		c.closeIdle()
		rt.close()
	}
	return out[0], out[1]
}

func runRawOnce(t testing.TB, rt *rawTarget, c rawClient, r rawRequest, expectClose bool) (o rawOutcome) {
	addr := rt.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fail := func(what string, err error) { o.errs = append(o.errs, what+": "+err.Error()) }
	resp, err := c.roundTrip(r.build(ctx, addr, "/1"))
	if err != nil {
		o.Err1 = true
		fail("first", err)
	} else {
		o.Status, o.Header, o.ContentLength, o.Close, o.Uncompressed = resp.StatusCode, resp.Header, resp.ContentLength, resp.Close, resp.Uncompressed
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		o.Body, o.BodyErr = string(b), err != nil
		if err != nil {
			fail("first body", err)
		}
		o.Trailer = resp.Trailer
		_ = resp.Body.Close()
	}
	if !wait(rt.sent) {
		t.Errorf("%s: the target never sent its answer", c.name)
	}
	close(rt.lateGo)
	if !wait(rt.lateSent) {
		t.Errorf("%s: the target never sent its late bytes", c.name)
	}
	if c.watchesIdle && expectClose {
		// The transport closes the connection itself (bytes on an idle
		// connection, the target's FIN, an answer that said close):
		// wait for it, or the second request races with its readLoop.
		wait(rt.closed)
	}
	req2 := rawRequest{method: http.MethodGet}.build(ctx, addr, "/2")
	resp, err = c.roundTrip(req2)
	if err != nil {
		o.Err2 = true
		fail("second", err)
	} else {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		o.Status2, o.Body2 = resp.StatusCode, string(b)
		if err != nil {
			o.Err2 = true
			fail("second body", err)
		}
		_ = resp.Body.Close()
	}
	rt.mu.Lock()
	o.Reused = slices.Contains(rt.seen, 0)
	rt.mu.Unlock()
	return o
}

// requireSame fails unless both outcomes match.
func requireSame(t testing.TB, transport, fast rawOutcome, s rawScript, r rawRequest) {
	t.Helper()
	te, fe := transport.errs, fast.errs
	transport.errs, fast.errs = nil, nil
	if !equalOutcome(transport, fast) {
		t.Fatalf("the fast path differs from the transport\nscript: resp=%q splits=%v fin=%v late=%q request=%+v\ntransport: %+v %q\nfast:      %+v %q",
			s.resp, s.splits, s.fin, s.late, r, transport, te, fast, fe)
	}
}

func equalOutcome(a, b rawOutcome) bool {
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// TestH1MatchesTransport: for each hostile or unusual target, the fast
// path gives what the transport gives, and the second request gets its
// own answer, never bytes the target sent outside it.
func TestH1MatchesTransport(t *testing.T) {
	t.Parallel()
	if !h1Supported || !canWaitArrival {
		t.Skip("needs the fast path and TCP_INFO (linux)")
	}
	const a = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"for\":1}\n"
	const extra = "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n{\"for\":\"A-extra-private\"}\n"
	get, head := rawRequest{method: http.MethodGet}, rawRequest{method: http.MethodHead}
	for _, tc := range []struct {
		name   string
		script rawScript
		req    rawRequest
		reused bool // the second request goes on the first connection
		check  func(t *testing.T, o rawOutcome)
	}{
		{name: "extra response after a delay", script: rawScript{resp: []byte(a), late: []byte(extra)}, req: get},
		{name: "extra response after a delay, first answer 500",
			script: rawScript{resp: []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"), late: []byte(extra)},
			req:    rawRequest{method: http.MethodPost},
			check:  func(t *testing.T, o rawOutcome) { require.Equal(t, 500, o.Status) }},
		{name: "extra bytes in the same segment", script: rawScript{resp: []byte(a + extra)}, req: get},
		{name: "extra bytes in the next segment", script: rawScript{resp: []byte(a + extra), splits: []int{len(a)}}, req: get},
		{name: "stray CRLF in the same segment", script: rawScript{resp: []byte(a + "\r\n")}, req: get},
		{name: "stray CRLF after a delay", script: rawScript{resp: []byte(a), late: []byte("\r\n")}, req: get},
		{name: "no Content-Length, ends at close", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\n\r\nto the end"), fin: true}, req: get,
			check: func(t *testing.T, o rawOutcome) { require.Equal(t, "to the end", o.Body) }},
		{name: "Connection: close", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")}, req: get,
			check: func(t *testing.T, o rawOutcome) { require.True(t, o.Close) }},
		{name: "100 Continue and 103 Early Hints",
			script: rawScript{resp: []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + a), splits: []int{10, 30}},
			req:    rawRequest{method: http.MethodPost}, reused: true,
			check: func(t *testing.T, o rawOutcome) {
				require.Equal(t, 200, o.Status)
				require.Empty(t, o.Header.Get("Link"))
			}},
		{name: "six 1xx answers", script: rawScript{resp: []byte(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + a)}, req: get, reused: true},
		{name: "HEAD with Content-Length", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")}, req: head, reused: true,
			check: func(t *testing.T, o rawOutcome) { require.Equal(t, int64(10), o.ContentLength) }},
		{name: "HEAD without Content-Length", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")}, req: head, reused: true},
		{name: "204 without Content-Length", script: rawScript{resp: []byte("HTTP/1.1 204 No Content\r\n\r\n")}, req: get, reused: true},
		{name: "chunked with trailers",
			script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"), splits: []int{60, 70}},
			req:    get, reused: true,
			check: func(t *testing.T, o rawOutcome) {
				require.Equal(t, "hello", o.Body)
				require.Equal(t, "42", o.Trailer.Get("X-Sum"))
			}},
		{name: "closes right after the headers", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), fin: true}, req: get,
			check: func(t *testing.T, o rawOutcome) { require.True(t, o.BodyErr) }},
		{name: "closes in the body", script: rawScript{resp: []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), fin: true}, req: get,
			check: func(t *testing.T, o rawOutcome) { require.True(t, o.BodyErr) }},
		{name: "closes after a complete answer", script: rawScript{resp: []byte(a), fin: true}, req: get},
		{name: "101 without asking", script: rawScript{resp: []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nraw bytes")}, req: get},
		{name: "status below 100", script: rawScript{resp: []byte("HTTP/1.1 000\nTransfer-Encoding: chunked\n\n0\r\n\r\n")}, req: get}, // found by the fuzz target
		{name: "keep-alive", script: rawScript{resp: []byte(a), splits: []int{5, 17, 40}}, req: get, reused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			transport, fast := runRaw(t, tc.script, tc.req)
			requireSame(t, transport, fast, tc.script, tc.req)
			require.False(t, fast.Err1, "%q", fast.errs)
			require.False(t, fast.Err2, "%q", fast.errs)
			require.Equal(t, "ok", fast.Body2, "the second request gets its own answer")
			require.Equal(t, tc.reused, fast.Reused, "reuse of the first connection")
			if tc.check != nil {
				tc.check(t, fast)
			}
		})
	}
}

// FuzzH1MatchesTransport: arbitrary answer bytes, cut into arbitrary
// pieces, with or without a close and with bytes after the exchange, give
// the same outcome through the fast path and through the transport: the
// same status, headers and body (or an error in both), and the first
// connection carries the second request in both or in neither.
func FuzzH1MatchesTransport(f *testing.F) {
	if !h1Supported || !canWaitArrival {
		f.Skip("needs the fast path and TCP_INFO (linux)")
	}
	const a = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
	seeds := []struct {
		resp, late string
		splits     uint64
		flags      uint8
	}{
		{a, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", 0, 0},
		{a + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "", 0, 0},
		{a + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "", uint64(len(a)), 0},
		{a + "\r\n", "", 0, 0},
		{a, "\r\n", 0, 0},
		{"HTTP/1.1 200 OK\r\n\r\nto the end", "", 0, 1},
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "", 0, 0},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", "", 0, 0},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + a, "", 10 | 30<<16, 4},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "", 0, 2},
		{"HTTP/1.1 200 OK\r\n\r\n", "", 0, 2},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", "", 60 | 70<<16, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "", 0, 1},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nraw", "", 0, 0},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc", "", 0, 0},
		{"HTTP/1.1 304 Not Modified\r\n\r\n", "", 0, 8},
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = io.WriteString(zw, "hello, gzip")
	_ = zw.Close()
	seeds = append(seeds, struct {
		resp, late string
		splits     uint64
		flags      uint8
	}{fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", zipped.Len(), zipped.Bytes()), "", 0, 0})
	for _, s := range seeds {
		f.Add([]byte(s.resp), []byte(s.late), s.splits, s.flags)
	}
	f.Fuzz(func(t *testing.T, resp, late []byte, splits uint64, flags uint8) {
		if len(resp) > 16<<10 || len(late) > 4<<10 {
			t.Skip("bounded inputs keep an iteration fast")
		}
		s := rawScript{resp: resp, late: late, fin: flags&1 != 0}
		for i := range 4 {
			if cut := int(splits >> (16 * i) & 0xffff); cut > 0 {
				s.splits = append(s.splits, cut)
			}
		}
		r := rawRequest{method: [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodGet}[flags>>1&3], identity: flags&8 != 0}
		transport, fast := runRaw(t, s, r)
		requireSame(t, transport, fast, s, r)
	})
}

// TestExchangeNoStaleAnswer is the async case end to end through
// Client.Exchange, with and without the fast path: the target answers
// message X with 500 and, once that exchange is over, writes one more
// (unrequested) 200 on the same connection. X stays a failure and
// message Y gets its own answer, not the stale 200.
func TestExchangeNoStaleAnswer(t *testing.T) {
	t.Parallel()
	if !canWaitArrival {
		t.Skip("needs TCP_INFO (linux)")
	}
	const extra = "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n{\"for\":\"X-extra-private\"}\n"
	for _, opts := range []Options{{}, {NoFastPath: true}} {
		rt := startRawTarget(t, rawScript{
			resp: []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"),
			late: []byte(extra),
		})
		c := New(opts)
		var once sync.Once
		dial := c.transport.DialContext
		c.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err == nil {
				once.Do(func() { rt.dialed <- conn })
			}
			return conn, err
		}
		u, err := url.Parse("http://" + rt.ln.Addr().String() + "/")
		require.NoError(t, err)
		tg := &config.Target{Name: "t", URL: u.String(), ParsedURL: u, Timeout: config.Duration(10 * time.Second)}

		x := c.Exchange(context.Background(), Request{Target: tg, Body: []byte(`{"m":"X"}`), MessageID: "msg_X"}, 1024)
		require.Equal(t, http.StatusInternalServerError, x.Status, "fast path: %v", c.h1 != nil)
		require.Error(t, x.Err)
		require.True(t, wait(rt.sent))
		close(rt.lateGo)
		require.True(t, wait(rt.lateSent))
		if c.h1 == nil {
			require.True(t, wait(rt.closed), "the transport closes a connection that got bytes while idle")
		}
		y := c.Exchange(context.Background(), Request{Target: tg, Body: []byte(`{"m":"Y"}`), MessageID: "msg_Y"}, 1024)
		require.NoError(t, y.Err, "fast path: %v", c.h1 != nil)
		require.Equal(t, http.StatusOK, y.Status)
		require.Equal(t, "ok", string(y.Body), "Y gets its own answer")
		c.CloseIdleConnections()
		rt.close()
	}
}
