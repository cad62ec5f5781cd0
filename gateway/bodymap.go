package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/template"
	"github.com/fanouthq/fanout/upstream"
)

// Body mapping: a route target with a body template gets the template's
// output instead of the inbound body. The gateway renders it for the calls
// it makes (all, settled, race, a mirror's primary and best-effort
// copies), once per request, before any call, with the data of .request
// only. What goes to the durable queue (async, durable mirror copies,
// on_failure: queue) is the message as received: the queue renders the
// template when it delivers (queue/bodymap.go).

// mappedBody is the rendered body of one route target.
type mappedBody struct {
	body []byte
	// contentType is set when the body is JSON and neither the inbound
	// request nor the target's headers say so.
	contentType string
	// err is the template's failure: the target is not called and its
	// result has class template.
	err error
}

// compileBody compiles the body template of the route target just added
// to rt (its last target).
func (rt *route) compileBody(rc *config.Route, rtc config.RouteTarget) error {
	if rtc.Body == "" {
		return nil
	}
	t, err := template.Parse("body", rtc.Body, config.BodyTemplateOptions(rc.MaxBody))
	if err != nil {
		return fmt.Errorf("target %q: %w", rtc.Name, err)
	}
	if rt.bodies == nil {
		rt.bodies = make([]*template.Template, len(rc.Targets))
		rt.match = rc.Match
	}
	rt.bodies[len(rt.targets)-1] = t
	return nil
}

// requestValue is the .request value of the templates of this call.
func (c *call) requestValue() map[string]any {
	return template.RequestValue(template.Request{
		ID:         c.id,
		Method:     c.r.Method,
		Path:       c.r.URL.Path,
		Header:     c.r.Header,
		Query:      c.r.URL.Query(),
		PathParams: c.rt.match.PathParams(c.r.URL.Path),
		Body:       c.body,
	})
}

// mapBodies renders the body templates of the route's targets, if any.
func (c *call) mapBodies() {
	if c.rt.bodies == nil || c.rt.mode == config.ModeAsync {
		return
	}
	data := template.Data(c.requestValue(), nil)
	inboundJSON := isJSONType(c.r.Header.Get("Content-Type"))
	c.mapped = make([]mappedBody, len(c.rt.bodies))
	for i, t := range c.rt.bodies {
		if t == nil {
			continue
		}
		m := &c.mapped[i]
		out, err := t.Execute(data)
		if err != nil {
			m.err = fmt.Errorf("target %q: %w", c.rt.names[i], err)
			c.logTemplate(c.rt.names[i], m.err)
			continue
		}
		m.body = out
		if !inboundJSON && !hasHeader(c.rt.targets[i].Headers, "Content-Type") && json.Valid(out) {
			m.contentType = "application/json"
		}
	}
}

// mapBody gives req, a request to the target name, its mapped body. It
// returns the template's error when the body could not be rendered: the
// target must not be called.
func (c *call) mapBody(name string, req *upstream.Request) error {
	if c.mapped == nil {
		return nil
	}
	i := slices.Index(c.rt.names, name)
	if i < 0 || c.rt.bodies[i] == nil {
		return nil
	}
	m := &c.mapped[i]
	if m.err != nil {
		return m.err
	}
	req.Body = m.body
	if m.contentType != "" {
		h := req.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Content-Type", m.contentType)
		req.Header = h
	}
	return nil
}

// templateFailed records in o a call not made because a template failed.
func (o *outcome) templateFailed(err error) {
	o.ok = false
	o.started = true
	o.class = fanout.ClassTemplate
	o.message = err.Error()
}

// logTemplate writes one line for a template that failed to render.
func (c *call) logTemplate(name string, err error) {
	c.g.log.LogAttrs(c.r.Context(), slog.LevelWarn, "template failed",
		slog.String(keyRoute, c.rt.name), slog.String(keyTarget, name),
		slog.String(keyMessageID, c.id), slog.String(keyClass, string(fanout.ClassTemplate)),
		slog.String(keyError, err.Error()))
}

// hasHeader reports whether h, configured headers, sets name
// (case-insensitively).
func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) == name {
			return true
		}
	}
	return false
}
