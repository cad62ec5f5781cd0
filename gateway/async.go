package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
)

// HeaderReplayed marks the answer to a request whose Idempotency-Key was
// seen before: the message was not stored again.
const HeaderReplayed = "Idempotent-Replayed"

// accepted is the body of an async answer: {"id":"msg_…","status_url":"…"}.
type accepted struct {
	id, statusURL string
}

func (a *accepted) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.id)
	if a.statusURL != "" {
		b = append(b, `,"status_url":`...)
		b = appendString(b, a.statusURL)
	}
	return append(b, "}\n"...)
}

// DefaultStoreTimeout is the default Options.StoreTimeout.
const DefaultStoreTimeout = 2 * time.Second

// serveAsync stores the message with one delivery per target (per step
// on an async steps route) and answers
// 202 once it is durable; a known Idempotency-Key answers 200 with the
// earlier message's id and Idempotent-Replayed: true. A message the store
// refuses is a 422; any other failure to store, the store not answering
// within the store timeout included, is a 503 with Retry-After.
func (c *call) serveAsync() {
	if c.g.enq == nil {
		c.notStored(errors.New("no durable queue"))
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, min(c.rt.deadline, c.g.storeWait))
	defer cancel()
	p := fanout.AcceptParams{
		Message:     c.message(),
		Targets:     c.rt.names,
		DedupWindow: c.table.dedup,
	}
	if c.rt.acceptSteps != nil {
		p.Targets, p.Steps = nil, c.rt.acceptSteps
	}
	res, err := c.g.enq.Accept(ctx, p)
	if err != nil {
		c.notStored(err)
		return
	}
	if res.MessageID != "" {
		c.id = res.MessageID
	}
	a := accepted{id: c.id}
	if c.g.statusURL != nil {
		a.statusURL = c.g.statusURL(c.id)
	}
	c.status = http.StatusAccepted
	if res.Replayed {
		c.status = http.StatusOK
		c.w.Header()[HeaderReplayed] = headerTrue
	}
	writeJSON(c.w, c.status, c.id, &a)
}

// notStored answers for a message the queue did not take: 422 when the
// store refused this message (retrying it cannot help), 503 with
// Retry-After otherwise. An *apierror.Error from the queue (backpressure,
// say) is passed on as is.
func (c *call) notStored(err error) {
	c.g.log.LogAttrs(c.r.Context(), slog.LevelError, "message not stored",
		slog.String(keyRoute, c.rt.name), slog.String(keyMessageID, c.id), slog.String(keyError, err.Error()))
	var ae *apierror.Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, fanout.ErrInvalidMessage):
		ae = apierror.From(err)
	case errors.Is(err, context.DeadlineExceeded) && c.r.Context().Err() == nil:
		// The store did not answer in time. The commit may still be
		// under way: a retry with the same Idempotency-Key is safe.
		ae = apierror.New(http.StatusServiceUnavailable, "store_unavailable",
			"the message store did not answer in time; the message may not be stored: retry it, with the same Idempotency-Key")
		ae.Header = http.Header{"Retry-After": {"1"}}
	default:
		ae = apierror.New(http.StatusServiceUnavailable, "store_unavailable",
			"the message store is unavailable; the message was not stored")
		ae.Header = http.Header{"Retry-After": {"1"}}
	}
	c.status = ae.Status
	apierror.Write(c.w, ae)
}
