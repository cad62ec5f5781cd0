package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/steps"
	"github.com/fanouthq/fanout/template"
	"github.com/fanouthq/fanout/upstream"
)

// HeaderStep names the step of a steps route on each of its calls.
const HeaderStep = steps.HeaderStep

// compileSteps compiles the steps of a steps route into rt: its steps,
// its names (the step names, for the envelope), its path parameters and,
// for an async route, what each message stores.
func (rt *route) compileSteps(cfg *config.Config, rc *config.Route) error {
	sr, err := steps.Compile(cfg, rc)
	if err != nil {
		return err
	}
	rt.steps, rt.names, rt.match = sr, sr.Names, rc.Match
	if rc.Async {
		if rc.Respond != "" {
			return errors.New("respond is not used with async: the caller gets 202 with the message id")
		}
		rt.acceptSteps = make([]fanout.AcceptStep, len(sr.Steps))
		for i, s := range sr.Steps {
			rt.acceptSteps[i] = fanout.AcceptStep{Name: s.Name, Target: s.Target.Name, After: sr.AfterNames(s)}
		}
	}
	return nil
}

// stepRun is what one step produced, for the steps after it and the
// answer.
type stepRun struct {
	status int
	header http.Header
	body   []byte
	// resp is the open response of a streamed respond step that
	// succeeded; the answer proxies or closes it.
	resp *http.Response
	// value is the step's .steps.NAME value, built when a later step
	// needs it (on the serving goroutine).
	value map[string]any
}

// Step states of a run.
const (
	stepWaiting = iota
	stepRunning
	stepFinished
)

// serveSteps runs a steps route: each step as soon as every step it runs
// after has succeeded (those without after at once, concurrently), with
// per-step retries inside the route deadline. A step that fails skips
// every step after it, directly or not. Then:
//   - with respond, when every step succeeded: that step's response,
//     proxied as is (streamed when no step runs after it);
//   - otherwise the envelope of every step, 200 when every step
//     succeeded, else 502.
func (c *call) serveSteps() {
	sr := c.rt.steps
	ctx, cancel := context.WithTimeout(c.ctx, c.rt.deadline)
	defer cancel()

	n := len(sr.Steps)
	c.names = c.rt.names
	c.outcomes = make([]outcome, n)
	runs := make([]stepRun, n)
	state := make([]uint8, n)
	pending := make([]int, n)
	finished := make(chan int, n)
	var request map[string]any // .request, built when a template needs it
	start := func(i int) {
		s := sr.Steps[i]
		state[i] = stepRunning
		var data map[string]any
		if s.Templated() {
			if request == nil {
				request = c.requestValue()
			}
			before := make(map[string]any, len(s.Before))
			for _, j := range s.Before {
				r := &runs[j]
				if r.value == nil {
					r.value = template.ResponseValue(r.status, r.header, r.body)
				}
				before[sr.Steps[j].Name] = r.value
			}
			data = template.Data(request, before)
		}
		go func() {
			c.runStep(ctx, i, data, &runs[i])
			finished <- i
		}()
	}
	// skip marks step i, waiting, as skipped because cause failed, and
	// every waiting step after it; it returns how many it marked.
	var skip func(i int, cause string) int
	skip = func(i int, cause string) int {
		state[i] = stepFinished
		o := &c.outcomes[i]
		o.skipped = true
		o.class = fanout.ClassSkipped
		o.message = "depends on failed step " + cause
		count := 1
		for _, k := range sr.Steps[i].Next {
			if state[k] == stepWaiting {
				count += skip(k, cause)
			}
		}
		return count
	}

	for i, s := range sr.Steps {
		pending[i] = len(s.After)
	}
	for i := range sr.Steps {
		if pending[i] == 0 {
			start(i)
		}
	}
	for done := 0; done < n; {
		i := <-finished
		state[i] = stepFinished
		done++
		ok := c.outcomes[i].ok
		for _, k := range sr.Steps[i].Next {
			switch {
			case state[k] != stepWaiting:
			case !ok:
				done += skip(k, sr.Steps[i].Name)
			default:
				if pending[k]--; pending[k] == 0 {
					start(k)
				}
			}
		}
	}

	allOK := !slices.ContainsFunc(c.outcomes, func(o outcome) bool { return !o.ok })
	if sr.Respond >= 0 && allOK {
		s, r := sr.Steps[sr.Respond], &runs[sr.Respond]
		if r.resp != nil {
			c.proxy(r.resp, s.Target.Name)
			return
		}
		c.proxyBuffered(r, s.Target.Name)
		return
	}
	for i := range runs {
		if r := &runs[i]; r.resp != nil {
			// A streamed respond step that succeeded while another step
			// failed: the envelope shows the start of its body.
			o := &c.outcomes[i]
			o.body, o.truncated = readBounded(r.resp.Body, c.rt.maxRespBody)
			o.contentType = r.resp.Header.Get("Content-Type")
			_ = r.resp.Body.Close()
			r.resp = nil
		}
	}
	if sr.HasSecrets() {
		// The envelope shows every step's response: the secret values
		// in them are masked (docs/security.md, "Step responses").
		mask := &steps.Mask{}
		for i, s := range sr.Steps {
			if r := &runs[i]; r.body != nil || r.header != nil {
				s.AddSecrets(mask, r.header, r.body)
			}
		}
		for i := range c.outcomes {
			o := &c.outcomes[i]
			o.body, o.message = mask.Bytes(o.body), mask.String(o.message)
		}
	}
	status := http.StatusOK
	if !allOK {
		status = http.StatusBadGateway
	}
	c.writeEnvelope(status, "")
}

// runStep renders step i with data, then calls its target, retrying
// within ctx, and records the outcome in c.outcomes[i] and r.
func (c *call) runStep(ctx context.Context, i int, data map[string]any, r *stepRun) {
	s := c.rt.steps.Steps[i]
	o := &c.outcomes[i]
	o.started = true
	start := time.Now()
	defer func() { o.duration = time.Since(start) }()

	// A HEAD runs the steps as GET (later steps need the responses);
	// net/http drops the body of the answer.
	method := c.r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	sc, err := s.Render(steps.Inbound{Method: method, Header: c.r.Header, Body: c.body}, data)
	if err != nil {
		err = fmt.Errorf("step %q: %w", s.Name, err)
		o.templateFailed(err)
		c.logTemplate(s.Target.Name, err)
		return
	}
	respond := c.rt.steps.Respond == i
	maxAttempts := syncMaxAttempts(s.Target)
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		req := upstream.Request{
			Target:         sc.Target,
			Method:         method,
			Header:         sc.Header,
			Body:           sc.Body,
			MessageID:      c.id,
			IdempotencyKey: c.id + "." + s.Name,
			Attempt:        attempt,
			Inbound:        c.inbound,
			Configured:     sc.Configured,
		}
		actx, span := c.startAttempt(ctx, sc.Target, attempt, &req)
		var res upstream.Result
		if s.Stream {
			res, r.resp = c.streamAttempt(actx, req)
		} else {
			res = c.g.client.Exchange(actx, req, c.rt.maxRespBody)
		}
		endSpan(span, res.Status, res.Class)
		c.g.attempted(c.rt.name, s.Target.Name, res.Class, res.Status, res.Duration)
		o.attempts = attempt
		o.setResult(ctx, c.rt, sc.Target, &res)
		if res.Err == nil {
			r.status, r.header, r.body = res.Status, res.Header, res.Body
			if respond && res.Truncated {
				// Buffered because later steps use it, and cut: it
				// cannot be passed on whole.
				o.ok, o.class = false, fanout.ClassOther
				o.message = "the response is larger than max_response_body (" + strconv.FormatInt(c.rt.maxRespBody, 10) +
					" bytes): the respond step's response cannot be both used by later steps and passed on"
			}
			break
		}
		c.logAttempt(sc.Target, attempt, res.Status, res.Class, res.Err)
		if !res.Retryable || attempt >= maxAttempts {
			break
		}
		wait := upstream.Backoff(s.Target.Retry, attempt, nil)
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
			break // the client left while waiting
		}
	}
}

// streamAttempt makes one attempt of req and leaves a successful
// response's body open; a failed response's body is read up to the
// route's max_response_body and closed.
func (c *call) streamAttempt(ctx context.Context, req upstream.Request) (upstream.Result, *http.Response) {
	res := upstream.Result{StartedAt: time.Now()}
	p := req.Target.Retry
	resp, err := c.g.client.Do(ctx, req)
	if err != nil {
		res.Duration = time.Since(res.StartedAt)
		res.Err, res.Class = err, upstream.Classify(err)
		res.Retryable = upstream.Retryable(p, res.Class, 0, err)
		return res, nil
	}
	res.Status, res.Header = resp.StatusCode, resp.Header
	if upstream.IsSuccess(resp.StatusCode) {
		res.Duration = time.Since(res.StartedAt)
		return res, resp
	}
	res.Body, res.Truncated = readBounded(resp.Body, c.rt.maxRespBody)
	_ = resp.Body.Close()
	res.Duration = time.Since(res.StartedAt)
	res.Err, res.Class = &upstream.StatusError{Status: resp.StatusCode}, fanout.ClassStatus
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		res.RetryAfter = upstream.ParseRetryAfter(ra, time.Now())
	}
	res.Retryable = upstream.RetryableStatus(p, resp.StatusCode)
	return res, nil
}

// readBounded reads at most limit bytes of body.
func readBounded(body io.Reader, limit int64) ([]byte, bool) {
	b, _ := io.ReadAll(io.LimitReader(body, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true
	}
	return b, false
}

// proxyBuffered answers with a step's response read whole: status,
// headers without the hop-by-hop ones, body.
func (c *call) proxyBuffered(r *stepRun, target string) {
	h := c.w.Header()
	hdr := r.header.Clone()
	upstream.RemoveHopByHop(hdr)
	for k, vs := range hdr {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	h[upstream.HeaderMessageID] = []string{c.id}
	h[upstream.HeaderTarget] = []string{target}
	c.w.WriteHeader(r.status)
	c.status = r.status
	_, _ = c.w.Write(r.body)
}
