package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/template"
	"github.com/fanouthq/fanout/upstream"
)

// HeaderStep names the step of a steps route on each of its calls.
const HeaderStep = "Fanout-Step"

// stepsRoute is the compiled DAG of a steps route.
type stepsRoute struct {
	steps []*step // in config order
	// respond is the index of the step whose response is proxied when
	// every step succeeded; -1: the envelope.
	respond int
}

// step is one compiled step.
type step struct {
	name   string
	target *config.Target
	after  []int // the steps it runs after
	next   []int // the steps that run after it
	// before holds every step it runs after, directly or not: the steps
	// its templates see.
	before []int
	method string
	path   *template.Template // nil: the target URL
	header []stepHeader
	body   *template.Template // nil: the inbound body (none for GET, HEAD)
	// stream is set on the respond step when no step runs after it: its
	// response is streamed back as is, never buffered.
	stream bool
}

// stepHeader is one header template of a step.
type stepHeader struct {
	name string // canonical
	t    *template.Template
}

// compileSteps compiles the steps of a steps route into rt: its steps,
// its names (the step names, for the envelope) and its path parameters.
func (rt *route) compileSteps(cfg *config.Config, rc *config.Route) error {
	sr, names, err := compileSteps(cfg, rc)
	if err != nil {
		return err
	}
	rt.steps, rt.names, rt.match = sr, names, rc.Match
	return nil
}

func compileSteps(cfg *config.Config, rc *config.Route) (*stepsRoute, []string, error) {
	if rc.Async {
		return nil, nil, errors.New("async steps routes are not supported by this version")
	}
	if len(rc.Targets) > 0 {
		return nil, nil, errors.New("targets are not used with mode steps: each step names its target")
	}
	if len(rc.Steps) == 0 {
		return nil, nil, errors.New("no steps")
	}
	sr := &stepsRoute{respond: -1}
	names := make([]string, len(rc.Steps))
	index := make(map[string]int, len(rc.Steps))
	for i, sc := range rc.Steps {
		if sc == nil {
			return nil, nil, fmt.Errorf("steps[%d]: empty", i)
		}
		if _, dup := index[sc.Name]; dup || sc.Name == "" {
			return nil, nil, fmt.Errorf("steps[%d]: name %q is empty or used twice", i, sc.Name)
		}
		index[sc.Name] = i
		names[i] = sc.Name
	}
	for i, sc := range rc.Steps {
		s := &step{name: sc.Name, method: strings.ToUpper(sc.Method)}
		tc := cfg.Targets[sc.Target]
		if tc == nil || tc.ParsedURL == nil {
			return nil, nil, fmt.Errorf("step %q: unknown target %q", sc.Name, sc.Target)
		}
		if tc.Name == "" {
			c := *tc
			c.Name = sc.Target
			tc = &c
		}
		s.target = tc
		for _, a := range sc.After {
			j, ok := index[a]
			if !ok || j == i || slices.Contains(s.after, j) {
				return nil, nil, fmt.Errorf("step %q: after %q: unknown, itself or listed twice", sc.Name, a)
			}
			s.after = append(s.after, j)
		}
		var err error
		if sc.Path != "" {
			if s.path, err = template.Parse("path", sc.Path, template.Options{Kind: template.URL}); err != nil {
				return nil, nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
		}
		for _, h := range slices.Sorted(maps.Keys(sc.Headers)) {
			t, err := template.Parse("headers."+h, sc.Headers[h], template.Options{})
			if err != nil {
				return nil, nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
			s.header = append(s.header, stepHeader{name: textproto.CanonicalMIMEHeaderKey(h), t: t})
		}
		if sc.Body != "" {
			if s.body, err = template.Parse("body", sc.Body, config.BodyTemplateOptions(rc.MaxBody)); err != nil {
				return nil, nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
		}
		sr.steps = append(sr.steps, s)
	}
	for i, s := range sr.steps {
		for _, j := range s.after {
			sr.steps[j].next = append(sr.steps[j].next, i)
		}
	}
	if err := sr.order(); err != nil {
		return nil, nil, err
	}
	if rc.Respond != "" {
		j, ok := index[rc.Respond]
		if !ok {
			return nil, nil, fmt.Errorf("respond: unknown step %q", rc.Respond)
		}
		sr.respond = j
		sr.steps[j].stream = len(sr.steps[j].next) == 0
	}
	return sr, names, nil
}

// order checks that the steps form no cycle and sets each step's before.
func (sr *stepsRoute) order() error {
	n := len(sr.steps)
	pending := make([]int, n)
	var ready []int
	for i, s := range sr.steps {
		pending[i] = len(s.after)
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := 0
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		done++
		s := sr.steps[i]
		for _, j := range s.after {
			s.before = append(s.before, j)
			s.before = append(s.before, sr.steps[j].before...)
		}
		slices.Sort(s.before)
		s.before = slices.Compact(s.before)
		for _, k := range s.next {
			if pending[k]--; pending[k] == 0 {
				ready = append(ready, k)
			}
		}
	}
	if done < n {
		return errors.New("the steps form a cycle")
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

// stepCall is the rendered request of a step.
type stepCall struct {
	target *config.Target // the step's target with its URL, method and headers
	header http.Header
	body   []byte
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

	n := len(sr.steps)
	c.names = c.rt.names
	c.outcomes = make([]outcome, n)
	runs := make([]stepRun, n)
	state := make([]uint8, n)
	pending := make([]int, n)
	finished := make(chan int, n)
	var request map[string]any // .request, built when a template needs it
	start := func(i int) {
		s := sr.steps[i]
		state[i] = stepRunning
		var data map[string]any
		if s.path != nil || s.body != nil || len(s.header) > 0 {
			if request == nil {
				request = c.requestValue()
			}
			steps := make(map[string]any, len(s.before))
			for _, j := range s.before {
				r := &runs[j]
				if r.value == nil {
					r.value = template.ResponseValue(r.status, r.header, r.body)
				}
				steps[sr.steps[j].name] = r.value
			}
			data = template.Data(request, steps)
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
		for _, k := range sr.steps[i].next {
			if state[k] == stepWaiting {
				count += skip(k, cause)
			}
		}
		return count
	}

	for i, s := range sr.steps {
		pending[i] = len(s.after)
	}
	for i := range sr.steps {
		if pending[i] == 0 {
			start(i)
		}
	}
	for done := 0; done < n; {
		i := <-finished
		state[i] = stepFinished
		done++
		ok := c.outcomes[i].ok
		for _, k := range sr.steps[i].next {
			switch {
			case state[k] != stepWaiting:
			case !ok:
				done += skip(k, sr.steps[i].name)
			default:
				if pending[k]--; pending[k] == 0 {
					start(k)
				}
			}
		}
	}

	allOK := !slices.ContainsFunc(c.outcomes, func(o outcome) bool { return !o.ok })
	if sr.respond >= 0 && allOK {
		s, r := sr.steps[sr.respond], &runs[sr.respond]
		if r.resp != nil {
			c.proxy(r.resp, s.target.Name)
			return
		}
		c.proxyBuffered(r, s.target.Name)
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
	status := http.StatusOK
	if !allOK {
		status = http.StatusBadGateway
	}
	c.writeEnvelope(status, "")
}

// runStep renders step i with data, then calls its target, retrying
// within ctx, and records the outcome in c.outcomes[i] and r.
func (c *call) runStep(ctx context.Context, i int, data map[string]any, r *stepRun) {
	s := c.rt.steps.steps[i]
	o := &c.outcomes[i]
	o.started = true
	start := time.Now()
	defer func() { o.duration = time.Since(start) }()

	sc, err := c.renderStep(s, data)
	if err != nil {
		err = fmt.Errorf("step %q: %w", s.name, err)
		o.templateFailed(err)
		c.logTemplate(s.target.Name, err)
		return
	}
	respond := c.rt.steps.respond == i
	maxAttempts := syncMaxAttempts(s.target)
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		req := upstream.Request{
			Target:         sc.target,
			Method:         c.r.Method,
			Header:         sc.header,
			Body:           sc.body,
			MessageID:      c.id,
			IdempotencyKey: c.id + "." + s.name,
			Attempt:        attempt,
			Inbound:        c.inbound,
		}
		actx, span := c.startAttempt(ctx, sc.target, attempt, &req)
		var res upstream.Result
		if s.stream {
			res, r.resp = c.streamAttempt(actx, req)
		} else {
			res = c.g.client.Exchange(actx, req, c.rt.maxRespBody)
		}
		endSpan(span, res.Status, res.Class)
		c.g.attempted(c.rt.name, s.target.Name, res.Class, res.Status, res.Duration)
		o.attempts = attempt
		o.setResult(ctx, c.rt, sc.target, &res)
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
		c.logAttempt(sc.target, attempt, res.Status, res.Class, res.Err)
		if !res.Retryable || attempt >= maxAttempts {
			break
		}
		wait := upstream.Backoff(s.target.Retry, attempt, nil)
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

// renderStep builds the request of step s from its templates and data.
func (c *call) renderStep(s *step, data map[string]any) (stepCall, error) {
	t := *s.target // a copy: its URL, method and headers are this call's
	sc := stepCall{target: &t, header: c.r.Header}
	if s.method != "" {
		t.Method = s.method
	}
	if s.path != nil {
		out, err := s.path.Execute(data)
		if err != nil {
			return sc, err
		}
		u, err := joinURL(s.target.ParsedURL, string(out))
		if err != nil {
			return sc, fmt.Errorf("template %s: %w", s.path.Name(), err)
		}
		t.ParsedURL, t.URL = u, u.String()
	}
	headers := make(map[string]string, len(s.target.Headers)+len(s.header)+2)
	for k, v := range s.target.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	for _, h := range s.header {
		out, err := h.t.Execute(data)
		if err != nil {
			return sc, err
		}
		if !validHeaderValue(out) {
			return sc, fmt.Errorf("template %s: the value contains a line break or another control character", h.t.Name())
		}
		headers[h.name] = string(out)
	}
	headers[HeaderStep] = s.name
	method := cmp.Or(t.Method, c.r.Method, http.MethodPost)
	switch {
	case s.body != nil:
		out, err := s.body.Execute(data)
		if err != nil {
			return sc, err
		}
		sc.body = out
		if _, set := headers["Content-Type"]; !set && json.Valid(out) {
			headers["Content-Type"] = "application/json"
		}
	case method == http.MethodGet || method == http.MethodHead:
	default:
		sc.body = c.body
	}
	t.Headers = headers
	return sc, nil
}

// joinURL appends rendered, a path starting with "/" (or a query starting
// with "?"), already escaped, to base: its path is added to base's path
// and its query to base's query.
func joinURL(base *url.URL, rendered string) (*url.URL, error) {
	if strings.ContainsFunc(rendered, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
		return nil, fmt.Errorf("%q: a URL must not contain spaces, control characters or '#'", rendered)
	}
	p, q, hasQuery := strings.Cut(rendered, "?")
	escaped := base.EscapedPath()
	if p != "" {
		escaped = strings.TrimSuffix(escaped, "/") + p
	}
	ref, err := url.Parse("http://h" + escaped)
	if err != nil || ref.Host != "h" {
		return nil, fmt.Errorf("%q does not make a valid URL path", rendered)
	}
	u := *base
	u.Path, u.RawPath = ref.Path, ref.RawPath
	if hasQuery && q != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + q
		} else {
			u.RawQuery = q
		}
	}
	return &u, nil
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

// validHeaderValue reports whether b may be sent as a header value: no
// control characters but tab.
func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
