package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/tracing"
	"github.com/fanouthq/fanout/upstream"
)

// Enqueuer hands messages to the durable queue (queue.Committer implements
// it). Accept returns once the message is durably committed; a replayed
// idempotency key returns the earlier message's id with Replayed set.
type Enqueuer interface {
	Accept(ctx context.Context, p fanout.AcceptParams) (fanout.AcceptResult, error)
}

// Options configures a Gateway. Zero values mean the documented defaults.
type Options struct {
	// Logger receives one line per inbound request (info) and one per
	// failed attempt (warn). Nil discards them.
	Logger *slog.Logger
	// Client sends the outbound requests. Nil: the gateway makes its own
	// (upstream.New with default options), gives it the config's targets
	// on New and Load (upstream.Client.SetTargets) and closes it on Close.
	// A Client passed in is the caller's to give targets to.
	Client *upstream.Client
	// Enqueuer is the durable queue. Nil: async routes answer 503, mirror
	// copies are sent best-effort and on_failure: queue reports failed
	// legs as "queued": false.
	Enqueuer Enqueuer
	// StatusURL builds the status_url of a message id (a 202 of an async
	// route, an envelope with queued legs). Nil: no status_url.
	StatusURL func(id string) string
	// StoreTimeout bounds how long an async request waits for Enqueuer to
	// commit its message; then it is answered 503 with Retry-After
	// (config store.timeout). Zero: DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Hooks are called for metrics. Zero: none.
	Hooks Hooks
	// NoRouteBodyTimeout bounds the time a request that matches no route
	// (answered 404 or 405 without reading its body) has to send the body
	// that net/http reads and discards after the answer, up to 256 KiB, to
	// keep the connection; past it the connection is closed. Zero: 10s.
	NoRouteBodyTimeout time.Duration
	// Tracer starts a server span per inbound request and a client span
	// per outbound attempt (see package tracing); the targets get the
	// attempt span as their parent. Nil: no spans, and an inbound
	// traceparent is passed on as is (a new one made when there is none).
	Tracer trace.Tracer
	// Access is the access state decided at run time: self-service API
	// keys (checked after the config's keys) and subscriptions (routes
	// with access.subscription). Nil: no self-service key is accepted and
	// every caller of a route that needs a subscription is refused 403
	// subscription_required.
	Access Access
	// Now is the clock that dates a deprecated route without
	// deprecated_at (when the config that deprecated it was loaded).
	// Nil: time.Now.
	Now func() time.Time
}

// Hooks are optional callbacks for metrics (docs/observability.md). A nil func is not
// called. They run on the request's goroutines and must not block.
type Hooks struct {
	// OnRequest is called once per inbound request, after the answer, with
	// the route and mode ("" when no route matched), the status sent (499
	// when the client left before the answer) and the time taken.
	OnRequest func(route, mode string, status int, d time.Duration)
	// OnAttempt is called after every outbound attempt the gateway makes
	// (the durable queue reports its own) with the error class (ClassNone
	// on success), the status (0 without a response) and the duration.
	OnAttempt func(route, target string, class fanout.ErrorClass, status int, d time.Duration)
	// OnBodyTimeout is called when a request body did not arrive within
	// its route's body_timeout (the request is answered 408 and its
	// connection closed); OnRequest is called for it too.
	OnBodyTimeout func(route string)
	// OnDeprecated is called once per request to a route in lifecycle
	// state deprecated, after the answer, with the caller's tenant (""
	// when it has none or was not authenticated).
	OnDeprecated func(route, tenant string)
}

// Gateway is the HTTP data plane: it matches each inbound request to a
// route of the config and runs the route's mode. It is safe for concurrent
// use; Load swaps the config while requests are served.
type Gateway struct {
	access    Access // nil: none
	table     atomic.Pointer[table]
	log       *slog.Logger
	client    *upstream.Client
	ownClient bool
	enq       Enqueuer
	statusURL func(string) string
	storeWait time.Duration
	hooks     Hooks
	tracer    trace.Tracer
	legs      *legPool      // runs the legs of sync routes
	noRouteBT time.Duration // Options.NoRouteBodyTimeout
	now       func() time.Time

	// Background work (mirror copies, durable hand-offs) runs under bgCtx
	// and is counted in bg; bgMu makes Close's Wait safe against new work.
	bgMu     sync.RWMutex
	bgClosed bool
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New compiles cfg's routes and returns a Gateway serving them. It returns
// an error naming the route when the config cannot be served.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	t, err := compile(cfg, opts.Logger, now(), opts.Access)
	if err != nil {
		return nil, fmt.Errorf("compile routes: %w", err)
	}
	g := &Gateway{
		log:       opts.Logger,
		client:    opts.Client,
		enq:       opts.Enqueuer,
		statusURL: opts.StatusURL,
		storeWait: cmp.Or(opts.StoreTimeout, DefaultStoreTimeout),
		hooks:     opts.Hooks,
		tracer:    opts.Tracer,
		legs:      newLegPool(legWorkerIdle),
		noRouteBT: cmp.Or(opts.NoRouteBodyTimeout, defaultNoRouteBodyTimeout),
		now:       now,
		access:    opts.Access,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.client == nil {
		g.client = upstream.New(upstream.Options{Logger: g.log})
		g.client.SetTargets(cfg.Targets)
		g.ownClient = true
	}
	g.bgCtx, g.bgCancel = context.WithCancel(context.Background())
	g.table.Store(t)
	return g, nil
}

// Load compiles cfg and makes it the routing table of every request that
// starts from now on; requests in flight finish with the table they
// started with. A config that does not compile is refused with an error and
// the current table stays.
func (g *Gateway) Load(cfg *config.Config) error {
	t, err := compile(cfg, g.log, g.now(), g.access)
	if err != nil {
		return fmt.Errorf("compile routes: %w", err)
	}
	t.inherit(g.table.Load())
	g.table.Store(t)
	if g.ownClient {
		g.client.SetTargets(cfg.Targets)
	}
	return nil
}

// Close waits for background work (best-effort mirror copies, hand-offs of
// mirror copies to the queue) to finish, up to ctx, and stops the goroutines
// that run sync legs. When ctx ends first, the
// remaining work is canceled, awaited, and ctx's error returned. Requests
// served after Close send no background work: mirror copies are dropped
// (and logged). Close does not stop the HTTP server: shut that down first.
func (g *Gateway) Close(ctx context.Context) error {
	g.bgMu.Lock()
	g.bgClosed = true
	g.bgMu.Unlock()

	done := make(chan struct{})
	go func() {
		g.bg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("gateway: background work canceled: %w", ctx.Err())
		g.bgCancel()
		<-done
	}
	g.bgCancel()
	g.legs.close()
	if g.ownClient {
		g.client.Close()
	}
	return err
}

// goBackground runs f in a goroutine tracked by Close, with a context
// canceled when Close gives up waiting. It returns false (and runs nothing)
// after Close.
func (g *Gateway) goBackground(f func(ctx context.Context)) bool {
	g.bgMu.RLock()
	defer g.bgMu.RUnlock()
	if g.bgClosed {
		return false
	}
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		f(g.bgCtx)
	}()
	return true
}

// call is the state of one inbound request.
type call struct {
	g     *Gateway
	rt    *route
	table *table
	w     http.ResponseWriter
	r     *http.Request
	// ctx is the parent of the outbound calls: the inbound request's
	// context, with the request span when tracing.
	ctx     context.Context
	span    trace.Span // nil without a tracer
	start   time.Time
	id      string
	body    []byte
	inbound upstream.Inbound
	status  int
	aborted bool // a proxied body failed midway
	// readDeadline is set while the connection has the body's read
	// deadline; cut when the body missed it (net/http cancels the
	// request's context then, but the 408 is sent).
	readDeadline, cut bool
	// names and outcomes feed the log line's per-target summary.
	names    []string
	outcomes []outcome
	auth     authState // the caller, once admitted (security.go)
	// mapped holds the rendered body templates of the route's targets
	// (bodymap.go), nil when it has none.
	mapped []mappedBody
}

// ServeHTTP serves one inbound request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{g: g, w: w, r: r, ctx: r.Context(), start: time.Now(), table: g.table.Load()}
	defer c.done()

	rt, pathFound := c.table.router.lookup(r.Method, r.Host, r.URL.Path)
	if rt == nil {
		// The body is not read, but net/http reads up to 256 KiB of it
		// after the answer to keep the connection: bound that too.
		c.bodyDeadline(g.noRouteBT)
		if pathFound {
			allow := c.table.router.allowed(r.Host, r.URL.Path)
			e := apierror.New(http.StatusMethodNotAllowed, "method_not_allowed",
				"this path does not accept "+r.Method).
				WithDetails(map[string]any{"allow": allow})
			e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
			c.fail(e)
			return
		}
		c.fail(apierror.New(http.StatusNotFound, "not_found", "no route matches this path"))
		return
	}
	c.rt = rt
	c.bodyDeadline(rt.bodyTimeout) // body.go
	if g.tracer != nil {
		c.ctx, c.span = tracing.StartRequest(g.tracer, r, rt.name, string(rt.mode))
	}
	if aerr := c.checkLifecycle(); aerr != nil { // lifecycle.go: retired, deprecated
		c.fail(aerr)
		return
	}
	// Who may call, and how often, is settled before the body is read.
	if aerr := c.admit(); aerr != nil {
		c.fail(aerr)
		return
	}
	if aerr := c.readBody(); aerr != nil { // body.go
		c.fail(aerr)
		return
	}
	if aerr := c.validateBody(); aerr != nil {
		c.fail(aerr)
		return
	}
	c.id = fanout.NewMessageID()
	c.inbound = inboundOf(r)
	if c.span != nil {
		if c.span.IsRecording() {
			c.span.SetAttributes(tracing.AttrMessageID.String(c.id))
		}
		// Copies and queued messages join the request's trace.
		if tp := tracing.Traceparent(c.ctx); tp != "" {
			c.inbound.Traceparent = tp
		}
	}

	c.mapBodies() // bodymap.go
	switch rt.mode {
	case config.ModeAll, config.ModeSettled:
		c.serveSync()
	case config.ModeRace:
		c.serveRace()
	case config.ModeMirror:
		c.serveMirror()
	case config.ModeAsync:
		c.serveAsync()
	case config.ModeSteps:
		if rt.acceptSteps != nil {
			c.serveAsync() // async: true, the queue runs the steps
			return
		}
		c.serveSteps()
	}
}

// fail writes err in the one error shape.
func (c *call) fail(err error) {
	c.status = apierror.From(err).Status
	if c.id != "" {
		c.w.Header().Set(upstream.HeaderMessageID, c.id)
	}
	apierror.Write(c.w, err)
}

// inboundOf describes r for the outbound headers. A request without a
// valid traceparent gets a new one here, so that all its outbound calls
// share one trace.
func inboundOf(r *http.Request) upstream.Inbound {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	tp := r.Header.Get(upstream.HeaderTraceparent)
	if !upstream.ValidTraceparent(tp) {
		tp = upstream.NewTraceparent()
	}
	return upstream.Inbound{
		RemoteAddr:  r.RemoteAddr,
		Host:        r.Host,
		Proto:       proto,
		Traceparent: tp,
	}
}

// message builds the durable message of this request, for targets.
func (c *call) message() fanout.Message {
	return fanout.Message{
		ID:             c.id,
		Route:          c.rt.name,
		Tenant:         c.auth.id.Tenant,
		Method:         c.r.Method,
		Path:           storedURI(c.r.URL.RequestURI()),
		Header:         upstream.ForwardedHeader(c.r.Header, c.inbound),
		Body:           c.body,
		IdempotencyKey: c.idempotencyKey(),
		ReceivedAt:     c.start.UTC(),
	}
}

// storedURI is the request target a message keeps: uri with every byte
// outside printable ASCII percent-encoded. net/http leaves the query as
// the client sent it, and a URI cannot hold such bytes raw (RFC 3986 §2.1),
// so the encoded form means the same to anything that decodes it (the
// templates' request.query, for one) and every store can hold it.
func storedURI(uri string) string {
	n := 0
	for i := range len(uri) {
		if b := uri[i]; b <= 0x20 || b >= 0x7f {
			n++
		}
	}
	if n == 0 {
		return uri
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(uri)+2*n)
	for i := range len(uri) {
		if c := uri[i]; c <= 0x20 || c >= 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// request is the outbound request of attempt to t.
func (c *call) request(t *config.Target, attempt int) upstream.Request {
	return upstream.Request{
		Target:    t,
		Method:    c.r.Method,
		Header:    c.r.Header,
		Body:      c.body,
		MessageID: c.id,
		Attempt:   attempt,
		Inbound:   c.inbound,
	}
}

// startAttempt starts the client span of attempt n to t when tracing, and
// points req's traceparent at it.
func (c *call) startAttempt(ctx context.Context, t *config.Target, n int, req *upstream.Request) (context.Context, trace.Span) {
	if c.g.tracer == nil {
		return ctx, nil
	}
	actx, span := tracing.StartAttempt(ctx, c.g.tracer, c.rt.name, t.Name, n)
	if tp := tracing.Traceparent(actx); tp != "" {
		req.Inbound.Traceparent = tp
	}
	return actx, span
}

// endSpan ends span (nil: nothing) with the outcome.
func endSpan(span trace.Span, status int, class fanout.ErrorClass) {
	if span != nil {
		tracing.End(span, status, string(class))
	}
}

// errFailFast is the cancel cause of legs stopped by fail_fast.
var errFailFast = errors.New("fail_fast: the route can no longer succeed")
