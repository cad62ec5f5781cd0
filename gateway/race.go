package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/upstream"
)

// errRaceWon is the cancel cause of the targets that lost a race.
var errRaceWon = errors.New("race: another target answered first")

// raceLeg is what one target of a race reports.
type raceLeg struct {
	i    int
	resp *http.Response // a 2xx response with its body still open
	out  outcome
}

// serveRace sends to the targets in listed order, all at once or, with
// hedge_after, the next one only when no target has succeeded after that
// delay (and at once when one fails). The first 2xx response is proxied as
// is; the other targets are canceled and their responses closed. Each
// target gets one attempt: the race itself is the retry. When every target
// fails, the answer is 502 with the envelope.
func (c *call) serveRace() {
	rt := c.rt
	ctx, cancel := context.WithTimeout(c.ctx, rt.deadline)
	defer cancel()

	n := len(rt.targets)
	c.names = rt.names
	c.outcomes = make([]outcome, n)
	results := make(chan raceLeg, n)
	cancels := make([]context.CancelCauseFunc, n)
	started, reported := 0, 0
	// Every started leg reports exactly once; wait for all of them before
	// returning, closing the bodies of late successes, so that no
	// goroutine or connection outlives the request.
	defer func() {
		for ; reported < started; reported++ {
			if l := <-results; l.resp != nil {
				_ = l.resp.Body.Close()
			}
		}
		for _, cf := range cancels[:started] {
			cf(nil)
		}
	}()
	startNext := func() {
		i := started
		started++
		lctx, lcancel := context.WithCancelCause(ctx)
		cancels[i] = lcancel
		go func() { results <- c.raceLeg(lctx, i) }()
	}

	// With hedge_after, the timer starts the next target when it fires and
	// is re-armed after every start.
	var (
		timer *time.Timer
		hedge <-chan time.Time
	)
	if rt.hedgeAfter > 0 && n > 1 {
		timer = time.NewTimer(rt.hedgeAfter)
		defer timer.Stop()
		hedge = timer.C
	}
	launch := func() {
		if started >= n || ctx.Err() != nil {
			return
		}
		startNext()
		if timer != nil {
			if started < n {
				timer.Reset(rt.hedgeAfter)
			} else {
				timer.Stop()
				hedge = nil
			}
		}
	}
	launch()
	for timer == nil && started < n {
		startNext()
	}

	var winner *raceLeg
	for winner == nil && reported < started {
		select {
		case l := <-results:
			reported++
			if l.resp != nil {
				winner = &l
				break
			}
			c.outcomes[l.i] = l.out
			launch() // a failure starts the next target at once
		case <-hedge:
			launch()
		}
	}

	if winner == nil {
		for i := started; i < n; i++ {
			c.outcomes[i] = outcome{class: fanout.ClassCanceled, message: "not tried: the route deadline passed first"}
		}
		c.writeEnvelope(http.StatusBadGateway, "")
		return
	}
	for i, cf := range cancels[:started] {
		if i != winner.i {
			cf(errRaceWon)
		}
	}
	c.outcomes[winner.i] = winner.out
	for i := range c.outcomes {
		if o := &c.outcomes[i]; i != winner.i && !o.started && o.class == "" {
			// Still running (now canceled) or never started.
			o.class = fanout.ClassCanceled
			o.started = i < started
		}
	}
	c.proxy(winner.resp, c.rt.targets[winner.i].Name)
}

// raceLeg makes the one attempt of target i.
func (c *call) raceLeg(ctx context.Context, i int) raceLeg {
	t := c.rt.targets[i]
	l := raceLeg{i: i, out: outcome{started: true, attempts: 1}}
	start := time.Now()
	req := c.request(t, 1)
	if err := c.mapBody(t.Name, &req); err != nil {
		l.out.attempts = 0
		l.out.templateFailed(err) // not called: its body template failed
		return l
	}
	actx, span := c.startAttempt(ctx, t, 1, &req)
	resp, err := c.g.client.Do(actx, req)
	l.out.duration = time.Since(start)
	if err != nil {
		class := upstream.Classify(err)
		endSpan(span, 0, class)
		c.g.attempted(c.rt.name, t.Name, class, 0, l.out.duration)
		l.out.class = class
		l.out.message = describe(ctx, c.rt, t, class, 0, err)
		c.logAttempt(t, 1, 0, class, err)
		return l
	}
	l.out.status = resp.StatusCode
	if upstream.IsSuccess(resp.StatusCode) {
		// Counted when the response headers arrived: the body is streamed
		// later, if this target wins.
		c.g.attempted(c.rt.name, t.Name, fanout.ClassNone, resp.StatusCode, l.out.duration)
		endSpan(span, resp.StatusCode, fanout.ClassNone)
		l.out.ok = true
		l.resp = resp
		return l
	}
	// A failure: keep a bounded part of the body for the envelope.
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.rt.maxRespBody+1))
	_ = resp.Body.Close()
	l.out.duration = time.Since(start)
	if int64(len(body)) > c.rt.maxRespBody {
		body, l.out.truncated = body[:c.rt.maxRespBody], true
	}
	l.out.body = body
	l.out.contentType = resp.Header.Get("Content-Type")
	l.out.class = fanout.ClassStatus
	if err != nil && !l.out.truncated {
		l.out.class = upstream.Classify(err)
	}
	l.out.message = describe(ctx, c.rt, t, l.out.class, resp.StatusCode, err)
	c.g.attempted(c.rt.name, t.Name, l.out.class, resp.StatusCode, l.out.duration)
	endSpan(span, resp.StatusCode, l.out.class)
	c.logAttempt(t, 1, resp.StatusCode, l.out.class, err)
	return l
}
