package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/tracing"
	"github.com/fanouthq/fanout/upstream"
)

// serveMirror proxies the primary's response unchanged (streamed) and sends
// copies to the other targets, sampled by sample_percent. The copies never
// delay the primary: they are handed to the durable queue (durable, the
// default, with an Enqueuer) or sent best-effort, in background goroutines
// started before the primary is called.
func (c *call) serveMirror() {
	rt := c.rt
	if len(rt.copies) > 0 && rt.sample > 0 && rand.Float64()*100 < rt.sample {
		c.sendCopies()
	}

	ctx, cancel := context.WithTimeout(c.ctx, rt.deadline)
	defer cancel()
	c.names = []string{rt.primary.Name}
	c.outcomes = make([]outcome, 1)
	o := &c.outcomes[0]
	o.started, o.attempts = true, 1
	start := time.Now()
	req := c.request(rt.primary, 1)
	if err := c.mapBody(rt.primary.Name, &req); err != nil {
		o.templateFailed(err)
		c.fail(apierror.New(http.StatusBadGateway, "bad_gateway", err.Error()).
			WithDetails(map[string]any{"target": rt.primary.Name, "class": string(fanout.ClassTemplate)}))
		return
	}
	actx, span := c.startAttempt(ctx, rt.primary, 1, &req)
	resp, err := c.g.client.Do(actx, req)
	o.duration = time.Since(start)
	if err != nil {
		o.class = upstream.Classify(err)
		endSpan(span, 0, o.class)
		c.g.attempted(rt.name, rt.primary.Name, o.class, 0, o.duration)
		c.logAttempt(rt.primary, 1, 0, o.class, err)
		c.fail(apierror.New(http.StatusBadGateway, "bad_gateway", describe(ctx, rt, rt.primary, o.class, 0, err)).
			WithDetails(map[string]any{"target": rt.primary.Name, "class": string(o.class)}))
		return
	}
	o.ok, o.status = true, resp.StatusCode
	// The primary's answer, whatever its status, is proxied: the attempt
	// is counted as the target answered it (a 5xx is a failed status).
	class := fanout.ClassNone
	if !upstream.IsSuccess(resp.StatusCode) {
		class = fanout.ClassStatus
	}
	c.g.attempted(rt.name, rt.primary.Name, class, resp.StatusCode, o.duration)
	endSpan(span, resp.StatusCode, class)
	c.proxy(resp, rt.primary.Name)
}

// sendCopies starts the delivery of this request to the copy targets.
func (c *call) sendCopies() {
	g, rt, id := c.g, c.rt, c.id
	if rt.durable && g.enq != nil {
		p := fanout.AcceptParams{Message: c.message(), Targets: rt.copyNames}
		if !g.goBackground(func(bg context.Context) {
			ctx, cancel := context.WithTimeout(bg, handoffTimeout)
			defer cancel()
			if _, err := g.enq.Accept(ctx, p); err != nil {
				g.log.LogAttrs(ctx, slog.LevelError, "mirror copies not queued",
					slog.String(keyRoute, rt.name), slog.String(keyMessageID, id),
					slog.Any(keyTargets, rt.copyNames), slog.String(keyError, err.Error()))
			}
		}) {
			c.logCopiesDropped()
		}
		return
	}
	// Best-effort: one attempt per copy, bounded by the route deadline. The
	// goroutines outlive the request, so they get their own copy of the
	// headers (with the X-Forwarded-* and traceparent values already set)
	// and touch nothing of the call.
	hdr := upstream.ForwardedHeader(c.r.Header, c.inbound)
	method, body := c.r.Method, c.body
	for _, t := range rt.copies {
		req := upstream.Request{Target: t, Method: method, Header: hdr, Body: body, MessageID: id, Attempt: 1}
		if err := c.mapBody(t.Name, &req); err != nil {
			continue // its body template failed (logged)
		}
		if !g.goBackground(func(bg context.Context) {
			ctx, cancel := context.WithTimeout(bg, rt.deadline)
			defer cancel()
			var span trace.Span
			if g.tracer != nil {
				// A child of the request span, through the kept traceparent.
				ctx, span = tracing.StartAttempt(tracing.Extract(ctx, hdr), g.tracer, rt.name, t.Name, 1)
				req.Inbound.Traceparent = tracing.Traceparent(ctx)
			}
			res := g.client.Exchange(ctx, req, 0)
			endSpan(span, res.Status, res.Class)
			g.attempted(rt.name, t.Name, res.Class, res.Status, res.Duration)
			if res.Err != nil {
				g.log.LogAttrs(ctx, slog.LevelWarn, "attempt failed",
					slog.String(keyRoute, rt.name), slog.String(keyTarget, t.Name),
					slog.String(keyMessageID, id), slog.Int(keyAttempt, 1),
					slog.String(keyClass, string(res.Class)), slog.Int(keyStatus, res.Status))
			}
		}) {
			c.logCopiesDropped()
			return
		}
	}
}

func (c *call) logCopiesDropped() {
	c.g.log.LogAttrs(c.r.Context(), slog.LevelWarn, "mirror copies dropped: the gateway is closing",
		slog.String(keyRoute, c.rt.name), slog.String(keyMessageID, c.id))
}
