package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// serveSync runs an all or settled route: every target concurrently, each
// with its retries, inside the route deadline; then one envelope.
//
// all answers 200 when the success rule holds (every non-optional target
// succeeded, or at least require targets did), else 502. It waits for every
// target to report, except that with fail_fast the others are canceled as
// soon as the rule can no longer hold. With on_failure: queue, every failed
// leg is handed to the durable queue before the answer; when the rule
// failed but every failed leg is now queued, all answers 202 (accepted for
// later delivery) instead of 502. settled always answers 200.
func (c *call) serveSync() {
	rt := c.rt
	ctx, cancel := context.WithTimeout(c.ctx, rt.deadline)
	defer cancel()
	var cancelCause context.CancelCauseFunc
	if rt.failFast && rt.mode == config.ModeAll {
		ctx, cancelCause = context.WithCancelCause(ctx)
		defer cancelCause(nil)
	}

	n := len(rt.targets)
	c.names = rt.names
	c.outcomes = make([]outcome, n)
	okCount, failedRequired := 0, 0
	if cancelCause == nil {
		// Nothing to decide before every target reported: the last target
		// runs on this goroutine.
		var wg sync.WaitGroup
		wg.Add(n - 1)
		for i := range n - 1 {
			c.g.legs.run(func() {
				defer wg.Done()
				c.runLeg(ctx, i)
			})
		}
		c.runLeg(ctx, n-1)
		wg.Wait()
		for i := range c.outcomes {
			if c.outcomes[i].ok {
				okCount++
			} else if !rt.optional[i] {
				failedRequired++
			}
		}
	} else {
		done := make(chan int, n)
		for i := range n {
			go func() {
				c.runLeg(ctx, i)
				done <- i
			}()
		}
		for reported := 1; reported <= n; reported++ {
			i := <-done
			if c.outcomes[i].ok {
				okCount++
				continue
			}
			if !rt.optional[i] {
				failedRequired++
			}
			if !rt.canHold(okCount, reported, failedRequired) {
				cancelCause(errFailFast)
			}
		}
	}

	holds := rt.holds(okCount, failedRequired)
	statusURL := ""
	if rt.queueFailed && okCount < n {
		c.queueFailed()
		if c.g.statusURL != nil && c.anyQueued() {
			statusURL = c.g.statusURL(c.id)
		}
	}
	status := http.StatusOK
	if rt.mode == config.ModeAll && !holds {
		status = http.StatusBadGateway
		if rt.queueFailed && c.allFailedQueued() {
			status = http.StatusAccepted
		}
	}
	c.writeEnvelope(status, statusURL)
}

// canHold reports whether the success rule of all can still hold after
// reported targets answered, ok of them successfully and failedRequired of
// the non-optional ones not.
func (rt *route) canHold(ok, reported, failedRequired int) bool {
	if rt.require > 0 {
		return ok+len(rt.targets)-reported >= rt.require
	}
	return failedRequired == 0
}

// holds reports whether the success rule of all holds once every target
// reported.
func (rt *route) holds(ok, failedRequired int) bool {
	if rt.require > 0 {
		return ok >= rt.require
	}
	return failedRequired == 0
}

// runLeg sends the request to target i, retrying within ctx, and records
// the outcome in c.outcomes[i].
func (c *call) runLeg(ctx context.Context, i int) {
	t := c.rt.targets[i]
	o := &c.outcomes[i]
	o.started = true
	start := time.Now()
	maxAttempts := syncMaxAttempts(t)
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		req := c.request(t, attempt)
		req.DiscardRecord = true // the envelope does not show what was sent
		if err := c.mapBody(t.Name, &req); err != nil {
			o.templateFailed(err) // not called: its body template failed
			break
		}
		actx, span := c.startAttempt(ctx, t, attempt, &req)
		res := c.g.client.Exchange(actx, req, c.rt.maxRespBody)
		endSpan(span, res.Status, res.Class)
		c.g.attempted(c.rt.name, t.Name, res.Class, res.Status, res.Duration)
		o.attempts = attempt
		o.setResult(ctx, c.rt, t, &res)
		if res.Err == nil {
			break
		}
		c.logAttempt(t, attempt, res.Status, res.Class, res.Err)
		if !res.Retryable || attempt >= maxAttempts {
			break
		}
		wait := upstream.Backoff(t.Retry, attempt, nil)
		if res.RetryAfter > 0 {
			wait = res.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			break // the next attempt would not fit: report this one
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // fail_fast or the client left while waiting
		}
	}
	o.duration = time.Since(start)
}

// setResult records the attempt res in o.
func (o *outcome) setResult(ctx context.Context, rt *route, t *config.Target, res *upstream.Result) {
	o.ok = res.Err == nil
	o.status = res.Status
	o.body = res.Body
	o.truncated = res.Truncated
	o.contentType = res.Header.Get("Content-Type")
	o.class = res.Class
	o.message = ""
	if !o.ok {
		o.message = describe(ctx, rt, t, res.Class, res.Status, res.Err)
	}
}

// queueFailed hands every failed leg to the durable queue as one message
// and marks their outcomes queued (or not, when there is no queue or the
// hand-off failed).
func (c *call) queueFailed() {
	var failed []string
	for i := range c.outcomes {
		if !c.outcomes[i].ok {
			failed = append(failed, c.rt.names[i])
		}
	}
	mark := func(v int8) {
		for i := range c.outcomes {
			if !c.outcomes[i].ok {
				c.outcomes[i].queued = v
			}
		}
	}
	if c.g.enq == nil {
		c.g.log.LogAttrs(c.r.Context(), slog.LevelWarn, "on_failure: queue without a durable queue; failed legs dropped",
			slog.String(keyRoute, c.rt.name), slog.String(keyMessageID, c.id))
		mark(-1)
		return
	}
	// The hand-off must not depend on the client staying, nor on the
	// route deadline the failed legs may have used up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), handoffTimeout)
	defer cancel()
	_, err := c.g.enq.Accept(ctx, fanout.AcceptParams{Message: c.message(), Targets: failed})
	if err != nil {
		c.g.log.LogAttrs(ctx, slog.LevelError, "failed legs not queued",
			slog.String(keyRoute, c.rt.name), slog.String(keyMessageID, c.id),
			slog.Any(keyTargets, failed), slog.String(keyError, err.Error()))
		mark(-1)
		return
	}
	mark(1)
}

func (c *call) anyQueued() bool {
	for i := range c.outcomes {
		if c.outcomes[i].queued == 1 {
			return true
		}
	}
	return false
}

func (c *call) allFailedQueued() bool {
	for i := range c.outcomes {
		if o := &c.outcomes[i]; !o.ok && o.queued != 1 {
			return false
		}
	}
	return true
}

// writeEnvelope answers with the envelope of c.outcomes.
func (c *call) writeEnvelope(status int, statusURL string) {
	e := envelope{
		id:        c.id,
		mode:      string(c.rt.mode),
		statusURL: statusURL,
		names:     c.rt.names,
		outcomes:  c.outcomes,
	}
	c.status = status
	if c.r.Method == http.MethodHead && c.rt.mode != config.ModeSteps {
		// The targets were asked HEAD: the envelope of their answers is
		// not the one a GET gets, so neither it nor its length is sent
		// (RFC 9110 §9.3.2 lets a HEAD answer leave such fields out).
		h := c.w.Header()
		h["Content-Type"] = headerJSON
		h["X-Content-Type-Options"] = headerNosniff
		h[upstream.HeaderMessageID] = []string{c.id}
		c.w.WriteHeader(status)
		return
	}
	writeJSON(c.w, status, c.id, &e)
}
