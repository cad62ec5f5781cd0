package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// Log attribute keys.
const (
	keyRoute      = "route"
	keyMode       = "mode"
	keyMethod     = "method"
	keyPath       = "path"
	keyStatus     = "status"
	keyDurationMS = "duration_ms"
	keyMessageID  = "message_id"
	keyTargets    = "targets"
	keyTarget     = "target"
	keyAttempt    = "attempt"
	keyClass      = "class"
	keyError      = "error"
	keyClientGone = "client_gone"
	keyAborted    = "aborted"
)

// statusClientGone is logged (as nginx does) when the client left before
// the answer.
const statusClientGone = 499

// done reports the request to the OnRequest hook and the log.
func (c *call) done() {
	d := time.Since(c.start)
	status := c.status
	gone := c.r.Context().Err() != nil && !c.cut
	if gone {
		status = statusClientGone
	}
	if c.span != nil {
		class := fanout.ClassNone
		if status >= 500 {
			class = fanout.ClassStatus
		}
		endSpan(c.span, status, class)
	}
	if h := c.g.hooks.OnRequest; h != nil {
		route, mode := "", ""
		if c.rt != nil {
			route, mode = c.rt.name, string(c.rt.mode)
		}
		h(route, mode, status, d)
	}
	c.countDeprecated() // lifecycle.go
	c.logRequest(status, d, gone)
}

// logRequest writes the one log line of the request: route, mode, status,
// duration, message id and a per-target summary ("crm=201 analytics=timeout").
// Header values never appear in it.
func (c *call) logRequest(status int, d time.Duration, gone bool) {
	ctx := c.r.Context()
	if !c.g.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String(keyMethod, c.r.Method),
		slog.String(keyPath, c.r.URL.Path),
		slog.Int(keyStatus, status),
		slog.Float64(keyDurationMS, float64(d.Microseconds())/1000),
	)
	if c.rt != nil {
		attrs = append(attrs, slog.String(keyRoute, c.rt.name), slog.String(keyMode, string(c.rt.mode)))
	}
	if c.id != "" {
		attrs = append(attrs, slog.String(keyMessageID, c.id))
	}
	if len(c.outcomes) > 0 {
		attrs = append(attrs, slog.String(keyTargets, summary(c.names, c.outcomes)))
	}
	if gone {
		attrs = append(attrs, slog.Bool(keyClientGone, true))
	}
	if c.aborted {
		attrs = append(attrs, slog.Bool(keyAborted, true))
	}
	attrs = c.appendAuthAttrs(attrs)
	c.g.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// summary renders "name=status|class[(queued)]" for each started target.
func summary(names []string, outs []outcome) string {
	b := make([]byte, 0, 64)
	for i := range outs {
		o := &outs[i]
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, names[i]...)
		b = append(b, '=')
		switch {
		case !o.started:
			b = append(b, "skipped"...)
		case o.ok || o.class == fanout.ClassStatus:
			b = strconv.AppendInt(b, int64(o.status), 10)
		default:
			b = append(b, o.class...)
		}
		switch o.queued {
		case 1:
			b = append(b, "(queued)"...)
		case -1:
			b = append(b, "(queue failed)"...)
		}
	}
	return string(b)
}

// attempted reports one outbound attempt to the OnAttempt hook.
func (g *Gateway) attempted(route, target string, class fanout.ErrorClass, status int, d time.Duration) {
	if h := g.hooks.OnAttempt; h != nil {
		h(route, target, class, status, d)
	}
}

// logAttempt writes one line for a failed attempt: warn, or debug when it
// was canceled on purpose (fail_fast, a race lost, a client gone).
func (c *call) logAttempt(t *config.Target, attempt int, status int, class fanout.ErrorClass, err error) {
	level := slog.LevelWarn
	if class == fanout.ClassCanceled {
		level = slog.LevelDebug
	}
	ctx := c.r.Context()
	if !c.g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String(keyRoute, c.rt.name),
		slog.String(keyTarget, t.Name),
		slog.String(keyMessageID, c.id),
		slog.Int(keyAttempt, attempt),
		slog.String(keyClass, string(class)),
	}
	if status != 0 {
		attrs = append(attrs, slog.Int(keyStatus, status))
	}
	if err != nil && class != fanout.ClassStatus {
		attrs = append(attrs, slog.String(keyError, err.Error()))
	}
	c.g.log.LogAttrs(ctx, level, "attempt failed", attrs...)
}

// describe is the envelope's message for a failed attempt: short, with no
// internal addresses.
func describe(ctx context.Context, rt *route, t *config.Target, class fanout.ErrorClass, status int, err error) string {
	switch class {
	case fanout.ClassStatus:
		return "the target answered " + strconv.Itoa(status) + " " + http.StatusText(status)
	case fanout.ClassTimeout:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "route deadline of " + config.Duration(rt.deadline).String() + " exceeded"
		}
		timeout := t.Timeout.D()
		if timeout <= 0 {
			timeout = upstream.DefaultTimeout
		}
		return "no response within " + config.Duration(timeout).String()
	case fanout.ClassCanceled:
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errFailFast):
			return "canceled: another target failed and fail_fast is set"
		case errors.Is(cause, errRaceWon):
			return "canceled: another target answered first"
		}
		return "canceled: the client went away"
	case fanout.ClassConnect:
		var dns *net.DNSError
		switch {
		case errors.As(err, &dns):
			return "connection failed: the target host was not found"
		case errors.Is(err, syscall.ECONNREFUSED):
			return "connection failed: connection refused"
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			if status != 0 {
				return "the connection closed before the response body was complete"
			}
			return "the connection closed before a response arrived"
		}
		return "connection to the target failed"
	case fanout.ClassTLS:
		return "TLS handshake with the target failed"
	}
	if status != 0 {
		return "the response could not be read"
	}
	return "the request to the target failed"
}
