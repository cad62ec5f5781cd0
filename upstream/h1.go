package upstream

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The HTTP/1.1 fast path.
//
// http.Transport runs two goroutines per connection (readLoop and
// writeLoop): every exchange hands the request to one and the response back
// from the other, four goroutine switches and a handful of channels,
// contexts and wrappers per attempt. Under S1 that machinery cost about as
// much CPU as the syscalls themselves. For the common case — a plain http
// target, no proxy, a small in-memory body — h1 writes the request and
// reads the response on the caller's goroutine over a pooled keep-alive
// connection, with http.ReadResponse for the parsing. Everything else (TLS
// and HTTP/2, proxies, Expect: 100-continue, large bodies, header values
// the transport would refuse) goes to the http.Transport as before.
//
// What it keeps of the transport's behaviour: the request bytes (request
// line, Host, User-Agent, Content-Length, the headers, Accept-Encoding: gzip
// when the caller sent none, headers and body in one write), transparent
// gzip decoding, 1xx responses skipped, keep-alive unless the response says
// close, the idle pool (MaxIdleConnsPerHost, IdleConnTimeout), the attempt's
// deadline and cancellation (through the connection's deadline), and one
// retry on a fresh connection when a reused one turns out closed before any
// byte of the response and the request is replayable.
//
// No byte a connection receives outside a request's own response may
// become part of another request's answer. The transport's readLoop
// watches every idle connection and closes it when anything arrives
// ("Unsolicited response received on idle HTTP channel"), a stray empty
// line included. The fast path has no reader on an idle connection, so it
// checks at the two points where stale bytes could cross over: a response
// read to its end with bytes left in the read buffer does not go back to
// the pool, and before every reuse a non-blocking peek at the socket (one
// recvfrom with MSG_PEEK, see h1_unix.go) makes sure the connection
// received nothing while idle, not even its close. Where it cannot peek
// (no raw socket, not unix) a connection is never reused.

const (
	// h1MaxBody is the largest request body the fast path sends: it is
	// copied into the one write with the headers, and a target that
	// answers early without reading the body is the transport's business.
	h1MaxBody = 64 << 10
	// h1MaxHeaderBytes bounds a response's status line and headers.
	h1MaxHeaderBytes = 1 << 20
	// h1CheckIdleAfter: the sweep checks connections idle for longer
	// (reuse checks every connection, however short its idle time).
	h1CheckIdleAfter = 250 * time.Millisecond
	// h1SweepEvery is how often idle connections are checked while there
	// are any (the transport closes each after IdleConnTimeout).
	h1SweepEvery     = 15 * time.Second
	defaultUserAgent = "Go-http-client/1.1"
)

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// h1 is the fast path's connection pool, one idle stack per host:port.
type h1 struct {
	t           *http.Transport // dialer, proxy and pool settings
	maxIdle     int
	idleTimeout time.Duration

	mu    sync.Mutex
	hosts map[string]*h1Host
	sweep *time.Timer // armed while connections are idle
}

type h1Host struct {
	idle []*h1Conn // LIFO: the most recently used last
}

// h1Conn is one keep-alive connection.
type h1Conn struct {
	conn     net.Conn
	probe    probe // the liveness peek
	br       *bufio.Reader
	lr       limitedConnReader
	addr     string
	idleAt   time.Time
	reused   bool
	canceled atomic.Bool // the AfterFunc of an attempt ran: the deadline is spoiled
}

// limitedConnReader bounds what the header parse may read.
type limitedConnReader struct {
	c         net.Conn
	remaining int64 // < 0: no limit
	n         int64 // bytes read since the last reset
}

var errHeaderTooLarge = errors.New("upstream: response headers too large")

func (r *limitedConnReader) Read(p []byte) (int, error) {
	if r.remaining >= 0 {
		if r.remaining == 0 {
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > r.remaining {
			p = p[:r.remaining]
		}
	}
	n, err := r.c.Read(p)
	r.n += int64(n)
	if r.remaining >= 0 {
		r.remaining -= int64(n)
	}
	return n, err
}

func newH1(t *http.Transport) *h1 {
	return &h1{t: t, maxIdle: t.MaxIdleConnsPerHost, idleTimeout: t.IdleConnTimeout, hosts: map[string]*h1Host{}}
}

// eligible reports whether req can take the fast path.
func (p *h1) eligible(req *http.Request) bool {
	u := req.URL
	if u.Scheme != "http" || req.Method == http.MethodConnect || req.ContentLength > h1MaxBody ||
		req.Close || len(req.TransferEncoding) > 0 || req.Trailer != nil || p.t.DialContext == nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // not an in-memory body
	}
	if p.t.Proxy != nil {
		if pu, err := p.t.Proxy(req); pu != nil || err != nil {
			return false
		}
	}
	host := req.Host
	if host == "" {
		host = u.Host
	}
	if host == "" || !asciiPrint(host) {
		return false
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		switch k {
		case "Expect", "Transfer-Encoding", "Connection", "Upgrade":
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

var _ http.RoundTripper = (*h1)(nil)

// RoundTrip sends req through the fast path when it can take it
// (eligible), through the http.Transport otherwise.
func (p *h1) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, _, err := p.send(req)
	return resp, err
}

// send is RoundTrip that also reports whether the fast path took req: it
// then keeps no reference to req once send returned, while the transport
// may still be writing it.
func (p *h1) send(req *http.Request) (_ *http.Response, fast bool, _ error) {
	if !p.eligible(req) {
		resp, err := p.t.RoundTrip(req)
		return resp, false, err
	}
	resp, err := p.roundTrip(req)
	return resp, true, err
}

// roundTrip sends req on a pooled connection and reads the response
// headers. The body reads on from the connection; closing it returns the
// connection to the pool once the body was read to its end.
func (p *h1) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	addr := canonicalAddr(req)
	buf := writeBufPool.Get().(*[]byte)
	defer writeBufPool.Put(buf)
	var gz bool
	*buf, gz = appendRequest((*buf)[:0], req)
	if cap(*buf) > 2*h1MaxBody {
		*buf = make([]byte, 0, 4<<10)
	}
	for try := 0; ; try++ {
		pc, err := p.get(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, retry, err := p.exchange(ctx, pc, req, *buf, gz)
		if err == nil {
			return resp, nil
		}
		// A reused connection the server had closed: the request never
		// reached it, or it is replayable. Once, on a fresh connection, as
		// the transport does.
		if retry && try == 0 && ctx.Err() == nil && replayable(req) {
			continue
		}
		return nil, err
	}
}

// exchange writes the request on pc and reads the response headers. retry
// is true when pc was reused and failed before any byte of a response.
func (p *h1) exchange(ctx context.Context, pc *h1Conn, req *http.Request, wire []byte, gz bool) (_ *http.Response, retry bool, _ error) {
	dl, _ := ctx.Deadline()
	if err := pc.conn.SetDeadline(dl); err != nil {
		pc.close()
		return nil, pc.reused, err
	}
	stop := context.AfterFunc(ctx, func() {
		pc.canceled.Store(true)
		_ = pc.conn.SetDeadline(aLongTimeAgo)
	})
	fail := func(err error, retry bool) (*http.Response, bool, error) {
		err = pc.ioErr(ctx, err)
		stop()
		pc.close()
		return nil, retry, err
	}
	if _, err := pc.conn.Write(wire); err != nil {
		return fail(err, pc.reused)
	}
	pc.lr.remaining, pc.lr.n = h1MaxHeaderBytes, 0
	var resp *http.Response
	for {
		// 1xx responses are skipped without a count, as the transport
		// does: the header limit, not reset between them, bounds them.
		var err error
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			if pc.lr.n == 0 && pc.br.Buffered() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)) {
				// Closed before a byte of the response: a reused
				// connection may have been closed by the server while
				// the request was on its way.
				return fail(fmt.Errorf("upstream: connection closed before a response: %w", err), pc.reused)
			}
			return fail(err, false)
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	pc.lr.remaining = -1
	// As the transport: no keep-alive after a close, a 101 or a status
	// below 100 (a final answer all the same); a body ends by its
	// length, its last chunk or, without either, by close
	// (http.ReadResponse sets resp.Close then).
	reusable := !resp.Close && resp.StatusCode >= 200
	raw, switched := resp.Body, isProtocolSwitch(resp)
	if switched {
		// The transport hands over the connection as the body: what
		// follows the headers, to the end.
		raw = io.NopCloser(pc.br)
	}
	b := &h1Body{raw: raw, ctx: ctx, p: p, pc: pc, stop: stop, reusable: reusable}
	if resp.Body == http.NoBody && !switched {
		// Nothing to read (HEAD, 204, 304, a length of 0): the
		// connection is free now.
		b.sawEOF = true
	}
	hasBody := resp.Body != http.NoBody
	resp.Body = b
	if gz && hasBody && !switched && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
		b.gzip = true
	}
	return resp, false, nil
}

// isProtocolSwitch reports whether resp switches protocols (101 with
// Upgrade and Connection: upgrade), as the transport decides it.
func isProtocolSwitch(resp *http.Response) bool {
	return resp.StatusCode == http.StatusSwitchingProtocols && resp.Header.Get("Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(resp.Header["Connection"], "Upgrade")
}

// isConnReset reports whether err says the peer reset or closed the
// connection under a read or write.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// replayable mirrors http.Request.isReplayable: a body that can be made
// again and an idempotent method or an idempotency key.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

// get returns an idle connection to addr or dials one.
func (p *h1) get(ctx context.Context, addr string) (*h1Conn, error) {
	now := time.Now()
	p.mu.Lock()
	if h := p.hosts[addr]; h != nil {
		for len(h.idle) > 0 {
			pc := h.idle[len(h.idle)-1]
			h.idle[len(h.idle)-1] = nil
			h.idle = h.idle[:len(h.idle)-1]
			if p.idleTimeout > 0 && now.Sub(pc.idleAt) > p.idleTimeout {
				p.mu.Unlock()
				pc.close()
				p.mu.Lock()
				continue
			}
			p.mu.Unlock()
			// Every reuse, however short the idle time: bytes that
			// arrived while idle belong to no request.
			if !pc.alive() {
				pc.close()
				p.mu.Lock()
				continue
			}
			pc.reused = true
			return pc, nil
		}
	}
	p.mu.Unlock()
	conn, err := p.t.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, withContextErr(ctx, err)
	}
	pc := &h1Conn{conn: conn, addr: addr}
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pc.probe = newProbe(rc)
		}
	}
	pc.lr = limitedConnReader{c: conn, remaining: -1}
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	return pc, nil
}

// put returns pc to the idle pool, or closes it when the pool is full.
func (p *h1) put(pc *h1Conn) {
	pc.idleAt = time.Now()
	p.mu.Lock()
	h := p.hosts[pc.addr]
	if h == nil {
		h = &h1Host{}
		p.hosts[pc.addr] = h
	}
	var stale *h1Conn
	if len(h.idle) > 0 && p.idleTimeout > 0 && pc.idleAt.Sub(h.idle[0].idleAt) > p.idleTimeout {
		// The oldest idle connection has outlived the idle timeout.
		stale = h.idle[0]
		h.idle = slices.Delete(h.idle, 0, 1)
	}
	if p.maxIdle > 0 && len(h.idle) >= p.maxIdle {
		p.mu.Unlock()
		pc.close()
	} else {
		h.idle = append(h.idle, pc)
		if p.sweep == nil {
			p.sweep = time.AfterFunc(h1SweepEvery, p.sweepIdle)
		}
		p.mu.Unlock()
	}
	if stale != nil {
		stale.close()
	}
}

// sweepIdle closes the idle connections that outlived the idle timeout or
// that the server closed (so that no socket lingers half-closed while its
// host gets no traffic), and runs again while any stay idle.
func (p *h1) sweepIdle() {
	now := time.Now()
	var check, drop []*h1Conn
	p.mu.Lock()
	for _, h := range p.hosts {
		keep := h.idle[:0]
		for _, pc := range h.idle {
			switch idle := now.Sub(pc.idleAt); {
			case p.idleTimeout > 0 && idle > p.idleTimeout:
				drop = append(drop, pc)
			case idle > h1CheckIdleAfter:
				check = append(check, pc) // out of the pool while checked
			default:
				keep = append(keep, pc)
			}
		}
		clear(h.idle[len(keep):])
		h.idle = keep
	}
	p.mu.Unlock()
	var alive []*h1Conn
	for _, pc := range check {
		if pc.alive() {
			alive = append(alive, pc)
		} else {
			drop = append(drop, pc)
		}
	}
	p.mu.Lock()
	for _, pc := range alive {
		h := p.hosts[pc.addr]
		h.idle = append(h.idle, pc)
	}
	p.sweep = nil
	for _, h := range p.hosts {
		if len(h.idle) > 0 {
			p.sweep = time.AfterFunc(h1SweepEvery, p.sweepIdle)
			break
		}
	}
	p.mu.Unlock()
	for _, pc := range drop {
		pc.close()
	}
}

// closeIdle closes every idle connection. Connections in use are closed
// when their response body is closed.
func (p *h1) closeIdle() {
	p.mu.Lock()
	var all []*h1Conn
	for _, h := range p.hosts {
		all = append(all, h.idle...)
		h.idle = nil
	}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, pc := range all {
		pc.close()
	}
}

func (pc *h1Conn) close() { _ = pc.conn.Close() }

// ioErr returns err of an I/O on pc. The connection's deadline is the
// attempt context's deadline (or a past one once it is canceled): when it
// fired, wait for the context to say so too (it has, or will within its
// timer's resolution), so that callers see the same context state as with
// the transport, which only fails after the context is done.
func (pc *h1Conn) ioErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if _, ok := ctx.Deadline(); ok || pc.canceled.Load() {
			<-ctx.Done()
		}
	}
	return err
}

// h1Body is the response body of the fast path.
type h1Body struct {
	raw      io.ReadCloser
	ctx      context.Context
	zr       *gzip.Reader
	gzip     bool
	p        *h1
	pc       *h1Conn
	stop     func() bool
	reusable bool
	sawEOF   bool
	closed   bool
	err      error
}

// rawReader tracks the end of the raw body.
type rawReader struct{ b *h1Body }

func (r rawReader) Read(p []byte) (int, error) {
	n, err := r.b.raw.Read(p)
	switch {
	case err == io.EOF:
		r.b.sawEOF = true
	case err != nil:
		err = r.b.pc.ioErr(r.b.ctx, err)
	}
	return n, err
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("http: read on closed response body")
	}
	if b.err != nil {
		return 0, b.err
	}
	if !b.gzip {
		return rawReader{b}.Read(p)
	}
	if b.zr == nil {
		zr, err := gzip.NewReader(rawReader{b})
		if err != nil {
			b.err = err
			return 0, err
		}
		b.zr = zr
	}
	n, err := b.zr.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// Close frees the connection: back to the pool when the body was read to
// its end and nothing follows it in the read buffer, closed otherwise (as
// the transport does with an unread body or with bytes nobody asked for).
func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	stopped := b.stop()
	if b.sawEOF && b.reusable && stopped && !b.pc.canceled.Load() && b.pc.br.Buffered() == 0 {
		b.p.put(b.pc)
		return nil
	}
	b.pc.close()
	return nil
}

// alive reports whether an idle connection may carry another request: no
// EOF, no error and no byte waiting on it, in the read buffer or in the
// socket.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	return pc.probe.alive()
}

var writeBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

// canonicalAddr is req's host:port, with the default port of http.
func canonicalAddr(req *http.Request) string {
	u := req.URL
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// appendRequest appends req as HTTP/1.1 bytes, as http.Request.Write
// (and the transport) would send it, and reports whether it asked for gzip.
func appendRequest(b []byte, req *http.Request) ([]byte, bool) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, req.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	b = append(b, host...)
	b = append(b, "\r\n"...)
	ua := defaultUserAgent
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		b = append(b, "User-Agent: "...)
		b = appendHeaderValue(b, ua)
		b = append(b, "\r\n"...)
	}
	if req.ContentLength > 0 || (req.ContentLength == 0 &&
		(method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch)) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	var keysBuf [32]string
	keys := keysBuf[:0]
	for k := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	gz := req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" && method != http.MethodHead
	if gz {
		b = append(b, "Accept-Encoding: gzip\r\n"...)
	}
	b = append(b, "\r\n"...)
	if req.ContentLength > 0 && req.Body != nil {
		// An in-memory body (eligible): read once into the write; a
		// retry resends these bytes.
		b = appendReader(b, req.Body, req.ContentLength)
	}
	return b, gz
}

// appendReader appends the n bytes of r.
func appendReader(b []byte, r io.Reader, n int64) []byte {
	b = slices.Grow(b, int(n))
	start := len(b)
	b = b[:start+int(n)]
	m, _ := io.ReadFull(r, b[start:])
	return b[:start+m]
}

// appendHeaderValue appends v trimmed, with line breaks as spaces, as
// http.Header.Write does.
func appendHeaderValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t\r\n")
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func asciiPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
