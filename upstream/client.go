package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/config"
)

// Client defaults.
const (
	// DefaultMaxIdleConnsPerHost is the default Options.MaxIdleConnsPerHost.
	DefaultMaxIdleConnsPerHost = 1024
	// DefaultDialTimeout is the default Options.DialTimeout.
	DefaultDialTimeout = 5 * time.Second
	// drainLimit is how much of a response body past maxBody Exchange reads
	// and discards to keep the connection reusable before giving up on it.
	drainLimit = 64 << 10
)

// Options configures a Client. Zero values mean the documented defaults.
type Options struct {
	// Logger receives debug lines about requests that could not be built.
	// Nil discards them.
	Logger *slog.Logger
	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// per target host. Default 1024: a fan-out gateway under load reuses
	// connections instead of opening one per request.
	MaxIdleConnsPerHost int
	// DialTimeout bounds establishing a TCP connection. Default 5s.
	DialTimeout time.Duration
	// NoFastPath sends every request through the http.Transport, also
	// those the HTTP/1.1 fast path would take (plain http targets without
	// a proxy, small in-memory bodies; see h1.go). For comparisons and as
	// a way out.
	NoFastPath bool
	// Balance configures the live state of targets (servers, ejection,
	// breaker, egress budget) that SetTargets maintains; its Check is
	// set by the client (a GET through its transport). Logger defaults
	// to the client's.
	Balance balance.Options
}

// Client sends attempts to targets over one shared, tuned http.Transport.
// It is safe for concurrent use; make one per process.
type Client struct {
	transport *http.Transport
	h1        *h1 // the RoundTripper in front of transport; nil with Options.NoFastPath or where !h1Supported
	log       *slog.Logger
	tokens    sync.Map // oauthKey → *tokenCache
	hmacKeys  sync.Map // Standard Webhooks secret → decoded key
	targets   *balance.Set
}

// New returns a Client with one http.Transport shared by all targets:
// keep-alive, an idle pool of opts.MaxIdleConnsPerHost per host, HTTP/2 when
// a TLS target offers it, the proxy of the environment (HTTPS_PROXY, …).
func New(opts Options) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no overall cap: the per-host cap bounds it
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		// The fast path's bound, not net/http's 10 MiB default: whichever
		// of the two takes a request, a target's header may be as large.
		MaxResponseHeaderBytes: h1MaxHeaderBytes,
	}
	c := &Client{transport: t, log: opts.Logger}
	if !opts.NoFastPath && h1Supported {
		c.h1 = newH1(t)
	}
	bo := opts.Balance
	if bo.Logger == nil {
		bo.Logger = opts.Logger
	}
	bo.Check = c.healthCheck
	c.targets = balance.New(bo)
	return c
}

// SetTargets gives the client the targets of a config: from then on every
// attempt to one of them (by name) goes through its live state — a server
// chosen by its balance policy among those up, its circuit breaker, its
// rate_limit and shared max_in_flight — and health checks run for those
// with health_check. Call it again on reload: servers that stay keep their
// state and attempts in flight are unaffected. Attempts to a target the
// client was not given go to its URL as they are.
func (c *Client) SetTargets(targets map[string]*config.Target) { c.targets.Update(targets) }

// TargetStatus returns the live state of the targets given to SetTargets,
// sorted by name.
func (c *Client) TargetStatus() []balance.TargetStatus { return c.targets.Status() }

// Deferred reports whether the target named target takes no attempt now
// (its circuit breaker is open, or half-open with its probes out), and
// until when at least. It implements queue.Deferrer.
func (c *Client) Deferred(target string) (time.Time, bool) {
	bt := c.targets.Get(target)
	if bt == nil {
		return time.Time{}, false
	}
	return bt.Deferred()
}

// Close stops the health checks and closes idle connections. The client
// still sends afterwards (for attempts still to finish).
func (c *Client) Close() {
	c.targets.Close()
	c.CloseIdleConnections()
}

// healthCheck makes one health check request.
func (c *Client) healthCheck(ctx context.Context, u *url.URL) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "fanout-health-check")
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	drain(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Transport returns the client's transport, for tests and for callers that
// need to adjust TLS settings (for example a private CA) before first use.
func (c *Client) Transport() *http.Transport { return c.transport }

// CloseIdleConnections closes the idle keep-alive connections of every
// target; connections in use are left alone.
func (c *Client) CloseIdleConnections() {
	c.transport.CloseIdleConnections()
	if c.h1 != nil {
		c.h1.closeIdle()
	}
}

// Request is one outbound call to a target.
type Request struct {
	// Target is where the request goes. Required.
	Target *config.Target
	// Method is the inbound method; Target.Method overrides it when set.
	// Both empty: POST.
	Method string
	// Header holds the inbound headers to forward; hop-by-hop headers, Host
	// and Content-Length are removed by the client. It is not modified.
	Header http.Header
	// Body is sent as is; it is only read, so one slice may be shared by
	// concurrent requests.
	Body []byte
	// MessageID sets Fanout-Message-Id and Idempotency-Key.
	MessageID string
	// IdempotencyKey overrides the Idempotency-Key that MessageID sets,
	// for calls of one message that are distinct operations (the steps of
	// a steps route). Default "": MessageID.
	IdempotencyKey string
	// Attempt sets Fanout-Attempt (1-based; 0 means 1).
	Attempt int
	// Inbound describes the inbound request, for X-Forwarded-* and
	// traceparent.
	Inbound Inbound
	// Configured names the headers of Target.Headers that come from the
	// config, whose values are redacted in Result.RequestHeader. Default
	// nil: every one of Target.Headers. A step's call sets it: its
	// Target.Headers also hold what Fanout adds (Fanout-Step, a body
	// template's Content-Type), which is no secret (steps.Call).
	Configured []string

	// DiscardRecord says the caller does not use Result.RequestHeader (a
	// sync route's envelope does not show it): it is left nil, and the
	// outbound header's memory is reused by later attempts.
	DiscardRecord bool

	// decodeBody drops the forwarded Accept-Encoding so that the transport
	// negotiates gzip itself and hands back a decoded body (Exchange).
	decodeBody bool
	// hb is the pooled memory of the outbound header (DiscardRecord).
	hb *headerBuf
	// fast: the last attempt went through the fast path, which keeps no
	// reference to the request once it returned (hb is free after it).
	fast bool
	// base and server: the attempt goes to server, one of the target's
	// servers, instead of base, its configured URL (nil: to the target's
	// URL as it is).
	base, server *url.URL
	// probe: the attempt is a probe of the target's half-open circuit.
	probe bool
}

// Inbound describes the inbound request a Request derives from. Empty fields
// leave the corresponding headers of Request.Header as they are (a delivery
// worker sends a stored header that already has them).
type Inbound struct {
	// RemoteAddr is the client's address (host:port), appended to
	// X-Forwarded-For.
	RemoteAddr string
	// Host is the inbound Host header, sent as X-Forwarded-Host.
	Host string
	// Proto is "http" or "https", sent as X-Forwarded-Proto.
	Proto string
	// Traceparent is the inbound W3C traceparent; empty or malformed, the
	// one in Request.Header is used, and if that is missing or malformed
	// too a new one is created.
	Traceparent string
}

// Result is the outcome of one Exchange.
type Result struct {
	// Status is the response status, 0 when no response arrived.
	Status int
	// Header is the response header, nil when no response arrived.
	Header http.Header
	// Body holds at most maxBody bytes of the response body.
	Body []byte
	// Truncated is true when the body was longer than maxBody.
	Truncated bool
	// StartedAt is when the attempt started; Duration how long it took,
	// body included.
	StartedAt time.Time
	Duration  time.Duration
	// Class is ClassNone on success and ClassStatus for a non-success
	// status.
	Class fanout.ErrorClass
	// Err is nil on success, a *StatusError for a non-success status.
	Err error
	// RetryAfter is the parsed Retry-After of the response, 0 if absent.
	RetryAfter time.Duration
	// Retryable is true when the target's retry policy (docs/delivery.md) calls for
	// another attempt: connect errors, timeouts, 408, 425, 429, 5xx (or
	// Retry.RetryStatus), other 4xx only with Retry.RetryAll4xx; a canceled
	// attempt is not retryable.
	Retryable bool
	// RequestMethod, RequestURL and RequestHeader describe the request as
	// sent, with secret headers redacted.
	RequestMethod, RequestURL string
	RequestHeader             http.Header
	// Probe is true when the attempt was a probe of the target's
	// half-open circuit (docs/operations.md): when it fails, the target
	// is still down, which says nothing about the request itself.
	Probe bool
}

// Do sends one attempt of r. The attempt is bounded by Target.Timeout
// (default 10s) from the start of the call to the last byte of the body;
// ctx may shorten it. On success the caller reads and closes the response
// body; the timeout's resources are released by Close. The error, if any,
// is classified by Classify. A non-success status is not an error here.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	_, resp, err := c.send(ctx, &r)
	return resp, err
}

// send builds and sends one attempt of r. With an oauth2 target that
// answers 401, the token is refreshed and the request sent once more. req
// is nil when the request could not be built.
//
// A target given to SetTargets is asked first (balance.Target.Acquire):
// an open circuit fails the attempt at once (fanout.ErrCircuitOpen), the
// egress budget may make it wait (fanout.ErrRateLimited when that does
// not fit ctx's deadline), and the attempt goes to the server it picks; a
// retry (Attempt > 1) prefers a server without failures. The outcome goes
// back to it when the response body is closed, or at once on an error.
func (c *Client) send(ctx context.Context, r *Request) (*http.Request, *http.Response, error) {
	var lease balance.Lease
	if r.Target != nil {
		if bt := c.targets.Get(r.Target.Name); bt != nil {
			var err error
			if lease, err = bt.Acquire(ctx, r.Attempt > 1); err != nil {
				return nil, nil, fmt.Errorf("target %s: %w", r.Target.Name, err)
			}
			r.base, r.server, r.probe = bt.Base(), lease.Server().URL(), lease.Probe()
		}
	}
	req, cancel, err := c.newRequest(ctx, r)
	if err != nil {
		c.logBuildError(ctx, r, err)
		lease.Done(balance.Neutral)
		return nil, nil, err
	}
	resp, err := c.roundTrip(req, cancel, r, &lease)
	if err != nil || resp.StatusCode != http.StatusUnauthorized ||
		r.Target.Auth == nil || r.Target.Auth.OAuth2ClientCredentials == nil {
		return req, resp, err
	}
	tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	c.oauthToken(r.Target.Auth.OAuth2ClientCredentials).invalidate(tok)
	if ab, ok := resp.Body.(*attemptBody); ok {
		ab.lease = balance.Lease{} // the same attempt goes on with a new token
	}
	drain(resp.Body)
	_ = resp.Body.Close()
	req2, cancel, err := c.newRequest(ctx, r)
	if err != nil {
		c.logBuildError(ctx, r, err)
		lease.Done(balance.Neutral)
		return req, nil, err
	}
	resp, err = c.roundTrip(req2, cancel, r, &lease)
	return req2, resp, err
}

// errOutcome is what an attempt's error says about the server: nothing
// when the caller cancelled or the request could not be built, a failure
// otherwise.
func errOutcome(err error) balance.Outcome {
	if errors.Is(err, errBuild) || Classify(err) == fanout.ClassCanceled {
		return balance.Neutral
	}
	return balance.Failure
}

// rebase returns u (the target's URL, or a step's URL joined to it) sent
// to server instead of base: server's scheme, host and user, and its path
// in place of base's path prefix.
func rebase(u, base, server *url.URL) *url.URL {
	switch {
	case server == nil || server == base:
		return u
	case u == base || base == nil:
		return server
	}
	out := *u
	out.Scheme, out.Host, out.User = server.Scheme, server.Host, server.User
	if rest, ok := strings.CutPrefix(u.Path, base.Path); ok && base.Path != server.Path {
		out.Path = strings.TrimSuffix(server.Path, "/") + "/" + strings.TrimPrefix(rest, "/")
		if rest == "" {
			out.Path = server.Path
		}
		out.RawPath = ""
	}
	return &out
}

// roundTrip sends req through the fast path (which hands what it cannot
// take to the transport) or, without one or when the target turned it off
// (http1_fast_path: false), the transport, and records in r.fast which of
// them took it.
func (c *Client) roundTrip(req *http.Request, cancel context.CancelFunc, r *Request, lease *balance.Lease) (*http.Response, error) {
	ctx := req.Context()
	var resp *http.Response
	var err error
	if c.h1 != nil && r.Target.FastPath() {
		resp, r.fast, err = c.h1.send(req)
	} else {
		resp, err = c.transport.RoundTrip(req)
		r.fast = false
	}
	if err != nil {
		err = withContextErr(ctx, err)
		cancel()
		lease.Done(errOutcome(err))
		return nil, err
	}
	resp.Body = &attemptBody{rc: resp.Body, ctx: ctx, cancel: cancel, lease: *lease, status: resp.StatusCode}
	return resp, nil
}

// Exchange sends one attempt of r and reads at most maxBody bytes of the
// response body (maxBody <= 0 reads none); past that, it reads and discards
// up to 64 KiB more so the connection can be reused, then gives up on the
// connection. The attempt timeout covers reading the body.
func (c *Client) Exchange(ctx context.Context, r Request, maxBody int64) (res Result) {
	res.StartedAt = time.Now()
	r.decodeBody = true
	defer func() {
		res.Duration = time.Since(res.StartedAt)
		res.Class = Classify(res.Err)
		var p config.Retry
		if r.Target != nil {
			p = r.Target.Retry
		}
		res.Retryable = Retryable(p, res.Class, res.Status, res.Err)
		res.Probe = r.probe
	}()

	req, resp, err := c.send(ctx, &r)
	switch {
	case req != nil:
		res.RequestMethod, res.RequestURL = req.Method, recordedURL(r.Target, req.URL, r.server != nil && r.server != r.base)
		if !r.DiscardRecord {
			res.RequestHeader = redactIfNeeded(req.Header, authRedact(r.Target, r.Configured))
		}
	case r.Target != nil:
		res.RequestMethod, res.RequestURL = r.Method, r.Target.URL
	}
	if err != nil {
		res.Err = err
		return res
	}
	defer func() {
		_ = resp.Body.Close()
		if r.hb != nil && r.fast {
			// Written by the fast path, which keeps no reference to it
			// (the transport's writeLoop may still hold it).
			req.Header = nil
			headerBufPool.Put(r.hb)
		}
	}()
	res.Status, res.Header = resp.StatusCode, resp.Header
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		res.RetryAfter = ParseRetryAfter(ra, time.Now())
	}
	res.Body, res.Truncated, err = readBody(resp, maxBody)
	switch {
	case err != nil:
		res.Err = err
	case !IsSuccess(resp.StatusCode):
		res.Err = &StatusError{Status: resp.StatusCode}
	}
	return res
}

// readBody reads at most maxBody bytes of resp's body, then drains a
// bounded amount of the rest.
func readBody(resp *http.Response, maxBody int64) (body []byte, truncated bool, err error) {
	if maxBody < 0 {
		maxBody = 0
	}
	switch cl := resp.ContentLength; {
	case cl == 0:
	case resp.Request != nil && resp.Request.Method == http.MethodHead:
		// The answer to a HEAD has no body; its Content-Length is that
		// of a GET.
	case cl > 0 && cl <= maxBody:
		body = make([]byte, cl)
		var n int
		n, err = io.ReadFull(resp.Body, body)
		body = body[:n]
		if err != nil {
			return body, false, err
		}
	default:
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
		if buf.Len() > 0 {
			n := min(int64(buf.Len()), maxBody)
			body = bytes.Clone(buf.Bytes()[:n])
			truncated = int64(buf.Len()) > maxBody
		}
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
		if err != nil {
			return body, truncated, err
		}
	}
	// Drain a little so the connection goes back to the pool; closing an
	// unread body closes the connection.
	if !drain(resp.Body) {
		truncated = true
	}
	return body, truncated, nil
}

// drain reads and discards up to drainLimit bytes of body and reports
// whether it reached the end.
func drain(body io.Reader) bool {
	bp := drainPool.Get().(*[]byte)
	defer drainPool.Put(bp)
	for n := 0; n <= drainLimit; {
		m, err := body.Read(*bp)
		n += m
		if err != nil {
			// A failure past the part we keep does not fail the attempt;
			// the connection is not reused.
			return errors.Is(err, io.EOF)
		}
	}
	return false
}

var drainPool = sync.Pool{New: func() any {
	b := make([]byte, 4<<10)
	return &b
}}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *Client) logBuildError(ctx context.Context, r *Request, err error) {
	name := ""
	if r.Target != nil {
		name = r.Target.Name
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "outbound request not built",
		slog.String("target", name), slog.String("error", err.Error()))
}

// newRequest builds the outbound request of r with its attempt timeout.
func (c *Client) newRequest(ctx context.Context, r *Request) (*http.Request, context.CancelFunc, error) {
	t := r.Target
	if t == nil {
		return nil, nil, fmt.Errorf("%w: no target", errBuild)
	}
	u := t.ParsedURL
	if u == nil {
		var err error
		if u, err = url.Parse(t.URL); err != nil {
			return nil, nil, fmt.Errorf("%w: target %s: %w", errBuild, t.Name, err)
		}
	}
	u = rebase(u, r.base, r.server)
	method := t.Method
	if method == "" {
		method = r.Method
	}
	if method == "" {
		method = http.MethodPost
	}
	timeout := t.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token, as a header name
		return nil, nil, fmt.Errorf("%w: target %s: invalid method %q", errBuild, t.Name, method)
	}
	// The attempt's own timer is only needed when it ends before ctx does
	// (a sync route's deadline often ends first).
	actx, cancel := ctx, context.CancelFunc(noCancel)
	if dl, ok := ctx.Deadline(); !ok || dl.After(time.Now().Add(timeout)) {
		actx, cancel = context.WithTimeout(ctx, timeout)
	}
	// The URL is the target's, shared: nothing on the way (transport,
	// proxy selection) writes to a request's URL. base stays on the stack:
	// WithContext makes the one heap copy.
	base := http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       u.Host,
	}
	req := base.WithContext(actx)
	if r.DiscardRecord && t.Auth == nil && u.User == nil {
		r.hb = headerBufPool.Get().(*headerBuf)
		req.Header = pooledOutboundHeader(r.hb, r)
	} else {
		req.Header = outboundHeader(r)
	}
	if u.User != nil && req.Header.Get("Authorization") == "" {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	if t.Auth != nil {
		if err := c.applyAuth(actx, req, r); err != nil {
			cancel()
			return nil, nil, err
		}
	}
	if body := r.Body; len(body) > 0 {
		req.ContentLength = int64(len(body))
		req.Body = newBodyReader(body)
		req.GetBody = func() (io.ReadCloser, error) { return newBodyReader(body), nil }
	} else if method != http.MethodGet && method != http.MethodHead {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	return req, cancel, nil
}

func noCancel() {}

// withContextErr makes sure an error caused by the end of ctx says so
// (errors.Is context.Canceled or context.DeadlineExceeded), whatever
// wording the transport used.
func withContextErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// attemptBody is a response body that releases the attempt's timeout when
// closed and reports a timeout or cancellation as such.
//
// It also ends the attempt's lease on the target, with what the status
// and the reads said.
type attemptBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	cancel  context.CancelFunc
	lease   balance.Lease
	status  int
	readErr error
	closed  bool
}

func (b *attemptBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = withContextErr(b.ctx, err)
		if b.readErr == nil {
			b.readErr = err
		}
	}
	return n, err
}

func (b *attemptBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	if l := &b.lease; l.Target() != nil && !b.closed {
		b.closed = true
		o := balance.Success
		switch {
		case b.readErr != nil:
			o = errOutcome(b.readErr)
		case l.Target().IsFailure(b.status):
			o = balance.Failure
		}
		l.Done(o)
	}
	return err
}

// newBodyReader gives each request its own reader over the shared body. It
// is an io.NopCloser around a *bytes.Reader on purpose: net/http recognises
// that pair as in-memory and writes the headers and the body in one
// syscall (one TCP segment for a small request) instead of two.
func newBodyReader(b []byte) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(b))
}
