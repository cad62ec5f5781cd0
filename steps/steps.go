// Package steps compiles the steps of a `mode: steps` route into a small
// DAG and renders each step's request from the inbound request and the
// responses of the steps it runs after. The gateway runs the DAG while the
// caller waits; the queue runs it through the durable store when the route
// is async. Both render a step with the same code, so a step sends the
// same request whichever way it runs.
package steps

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/template"
)

// HeaderStep names the step of a steps route on each of its calls.
const HeaderStep = "Fanout-Step"

// Route is the compiled DAG of a steps route.
type Route struct {
	Steps []*Step  // in config order
	Names []string // the step names, in config order
	// Respond is the index of the step whose response is proxied when
	// every step succeeded; -1: the envelope.
	Respond int
}

// Step is one compiled step.
type Step struct {
	Name   string
	Target *config.Target
	After  []int // the steps it runs after
	Next   []int // the steps that run after it
	// Before holds every step it runs after, directly or not: the steps
	// its templates see.
	Before []int
	Method string // "" : the target's, else the inbound method
	// Stream is set on the respond step when no step runs after it: its
	// response can be streamed back as is, never buffered.
	Stream bool

	path   *template.Template // nil: the target URL
	header []stepHeader
	body   *template.Template // nil: the inbound body (none for GET, HEAD)
	// secrets are the values of its response that are masked wherever
	// the message is shown (secret.go).
	secrets []secretRef
}

// stepHeader is one header template of a step.
type stepHeader struct {
	name string // canonical
	t    *template.Template
}

// Index returns the index of the step called name, or -1.
func (r *Route) Index(name string) int {
	return slices.Index(r.Names, name)
}

// AfterNames returns the names of the steps s runs after.
func (r *Route) AfterNames(s *Step) []string {
	if len(s.After) == 0 {
		return nil
	}
	names := make([]string, len(s.After))
	for i, j := range s.After {
		names[i] = r.Steps[j].Name
	}
	return names
}

// Templated reports whether the step's request uses templates: only then
// does rendering need the inbound request and earlier responses as data.
func (s *Step) Templated() bool {
	return s.path != nil || s.body != nil || len(s.header) > 0
}

// Compile compiles the steps of rc, a steps route of cfg. Config
// validation reports the same errors with file and line; these are for
// configs built in code.
func Compile(cfg *config.Config, rc *config.Route) (*Route, error) {
	if len(rc.Targets) > 0 {
		return nil, errors.New("targets are not used with mode steps: each step names its target")
	}
	if len(rc.Steps) == 0 {
		return nil, errors.New("no steps")
	}
	sr := &Route{Respond: -1}
	index := make(map[string]int, len(rc.Steps))
	for i, sc := range rc.Steps {
		if sc == nil {
			return nil, fmt.Errorf("steps[%d]: empty", i)
		}
		if _, dup := index[sc.Name]; dup || sc.Name == "" {
			return nil, fmt.Errorf("steps[%d]: name %q is empty or used twice", i, sc.Name)
		}
		index[sc.Name] = i
		sr.Names = append(sr.Names, sc.Name)
	}
	for i, sc := range rc.Steps {
		s := &Step{Name: sc.Name, Method: strings.ToUpper(sc.Method)}
		tc := cfg.Targets[sc.Target]
		if tc == nil || tc.ParsedURL == nil {
			return nil, fmt.Errorf("step %q: unknown target %q", sc.Name, sc.Target)
		}
		if tc.Name == "" {
			c := *tc
			c.Name = sc.Target
			tc = &c
		}
		s.Target = tc
		for _, a := range sc.After {
			j, ok := index[a]
			if !ok || j == i || slices.Contains(s.After, j) {
				return nil, fmt.Errorf("step %q: after %q: unknown, itself or listed twice", sc.Name, a)
			}
			s.After = append(s.After, j)
		}
		var err error
		if sc.Path != "" {
			if s.path, err = template.Parse("path", sc.Path, template.Options{Kind: template.URL}); err != nil {
				return nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
		}
		for _, h := range slices.Sorted(maps.Keys(sc.Headers)) {
			t, err := template.Parse("headers."+h, sc.Headers[h], template.Options{})
			if err != nil {
				return nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
			s.header = append(s.header, stepHeader{name: textproto.CanonicalMIMEHeaderKey(h), t: t})
		}
		if sc.Body != "" {
			if s.body, err = template.Parse("body", sc.Body, config.BodyTemplateOptions(rc.MaxBody)); err != nil {
				return nil, fmt.Errorf("step %q: %w", sc.Name, err)
			}
		}
		for _, sec := range sc.Secret {
			ref, err := parseSecret(sec)
			if err != nil {
				return nil, fmt.Errorf("step %q: secret: %w", sc.Name, err)
			}
			s.secrets = append(s.secrets, ref)
		}
		sr.Steps = append(sr.Steps, s)
	}
	sr.headerSecrets(index)
	for i, s := range sr.Steps {
		for _, j := range s.After {
			sr.Steps[j].Next = append(sr.Steps[j].Next, i)
		}
	}
	if err := sr.order(); err != nil {
		return nil, err
	}
	if rc.Respond != "" {
		j, ok := index[rc.Respond]
		if !ok {
			return nil, fmt.Errorf("respond: unknown step %q", rc.Respond)
		}
		sr.Respond = j
		sr.Steps[j].Stream = len(sr.Steps[j].Next) == 0
	}
	return sr, nil
}

// order checks that the steps form no cycle and sets each step's Before.
func (sr *Route) order() error {
	n := len(sr.Steps)
	pending := make([]int, n)
	var ready []int
	for i, s := range sr.Steps {
		pending[i] = len(s.After)
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := 0
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		done++
		s := sr.Steps[i]
		for _, j := range s.After {
			s.Before = append(s.Before, j)
			s.Before = append(s.Before, sr.Steps[j].Before...)
		}
		slices.Sort(s.Before)
		s.Before = slices.Compact(s.Before)
		for _, k := range s.Next {
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

// Inbound is what a step's request starts from: the request the route
// received (or the stored message of an async route).
type Inbound struct {
	Method string
	Header http.Header
	Body   []byte
}

// Call is the rendered request of a step: its target (a copy, with the
// step's URL, method and headers) and its body. Header is the inbound
// header, forwarded as for any target.
type Call struct {
	Target *config.Target
	Header http.Header
	Body   []byte
	// Configured names the headers of Target.Headers that come from the
	// config (the target's headers and the step's), redacted in the
	// record of the call (upstream.Request.Configured); the others are
	// Fanout's own: Fanout-Step and a body template's Content-Type.
	Configured []string
}

// Render builds the request of step s from its templates and data (see
// template.Data: the inbound request and the responses of the steps
// before s). A template that fails is an error naming it; nothing is sent.
func (s *Step) Render(in Inbound, data map[string]any) (Call, error) {
	t := *s.Target // a copy: its URL, method and headers are this call's
	sc := Call{Target: &t, Header: in.Header}
	if s.Method != "" {
		t.Method = s.Method
	}
	if s.path != nil {
		out, err := s.path.Execute(data)
		if err != nil {
			return sc, err
		}
		u, err := joinURL(s.Target.ParsedURL, string(out))
		if err != nil {
			return sc, fmt.Errorf("template %s: %w", s.path.Name(), err)
		}
		t.ParsedURL, t.URL = u, u.String()
	}
	headers := make(map[string]string, len(s.Target.Headers)+len(s.header)+2)
	sc.Configured = make([]string, 0, len(s.Target.Headers)+len(s.header))
	for k, v := range s.Target.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = v
		sc.Configured = append(sc.Configured, k)
	}
	for _, h := range s.header {
		sc.Configured = append(sc.Configured, h.name)
		out, err := h.t.Execute(data)
		if err != nil {
			return sc, err
		}
		if !ValidHeaderValue(out) {
			return sc, fmt.Errorf("template %s: the value contains a line break or another control character", h.t.Name())
		}
		headers[h.name] = string(out)
	}
	headers[HeaderStep] = s.Name
	method := cmp.Or(t.Method, in.Method, http.MethodPost)
	switch {
	case s.body != nil:
		out, err := s.body.Execute(data)
		if err != nil {
			return sc, err
		}
		sc.Body = out
		if _, set := headers["Content-Type"]; !set && json.Valid(out) {
			headers["Content-Type"] = "application/json"
		}
	case method == http.MethodGet || method == http.MethodHead:
	default:
		sc.Body = in.Body
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

// ValidHeaderValue reports whether b may be sent as a header value: no
// control characters but tab.
func ValidHeaderValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
