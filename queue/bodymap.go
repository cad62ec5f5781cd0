package queue

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/template"
	"github.com/fanouthq/fanout/upstream"
)

// Body templates of route targets (config.RouteTarget.Body) are rendered
// when a delivery is sent, from the stored message: the message stays what
// the caller sent, every attempt renders the same bytes, and a crash
// loses nothing. A delivery renders with the config current when it is
// sent.

// bodyMap holds the compiled body templates of a config, by route name
// and then target name. Routes without any are left out.
type bodyMap map[string]map[string]*routeBody

// routeBody is the body template of one route target.
type routeBody struct {
	match config.Match
	t     *template.Template
	// err is set instead of t when the template does not parse (a config
	// built in code: Parse validates them): its deliveries fail.
	err error
}

// compileBodies compiles the body templates of cfg's route targets.
func compileBodies(cfg *config.Config) bodyMap {
	if cfg == nil {
		return nil
	}
	m := bodyMap{}
	for _, r := range cfg.Routes {
		if r == nil {
			continue
		}
		for _, rt := range r.Targets {
			if rt.Body == "" {
				continue
			}
			t, err := template.Parse("body", rt.Body, config.BodyTemplateOptions(r.MaxBody))
			if m[r.Name] == nil {
				m[r.Name] = map[string]*routeBody{}
			}
			m[r.Name][rt.Name] = &routeBody{match: r.Match, t: t, err: err}
		}
	}
	return m
}

// mapBody gives req, a delivery of msg to target, the output of the
// target's body template on msg's route, if it has one (m may be nil). The
// error is the template's: the delivery must not be sent.
func (m *bodyMap) mapBody(msg *fanout.Message, target *config.Target, req *upstream.Request) error {
	if m == nil {
		return nil
	}
	rb := (*m)[msg.Route][target.Name]
	if rb == nil {
		return nil
	}
	if rb.err != nil {
		return fmt.Errorf("target %q: %w", target.Name, rb.err)
	}
	out, err := rb.t.Execute(template.Data(requestValue(msg, rb.match), nil))
	if err != nil {
		return fmt.Errorf("target %q: %w", target.Name, err)
	}
	req.Body = out
	if !isJSON(msg.Header.Get("Content-Type")) && !hasHeader(target.Headers, "Content-Type") && json.Valid(out) {
		h := req.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Content-Type", "application/json")
		req.Header = h
	}
	return nil
}

// requestValue is the .request of templates rendered for a stored
// message of a route matched by match.
func requestValue(msg *fanout.Message, match config.Match) map[string]any {
	u, err := url.ParseRequestURI(msg.Path)
	if err != nil {
		u = &url.URL{Path: msg.Path}
	}
	return template.RequestValue(template.Request{
		ID:         msg.ID,
		Method:     msg.Method,
		Path:       u.Path,
		Header:     msg.Header,
		Query:      u.Query(),
		PathParams: match.PathParams(u.Path),
		Body:       msg.Body,
	})
}

// templateFailure is the result of a delivery that was not sent because
// its body template failed: not retryable, so the delivery is dead (a
// replay after the config is fixed renders it again).
func templateFailure(req upstream.Request, err error) upstream.Result {
	return upstream.Result{
		StartedAt:     time.Now(),
		Class:         fanout.ClassTemplate,
		Err:           err,
		RequestMethod: req.Method,
		RequestURL:    req.Target.URL,
	}
}

// isJSON reports whether the Content-Type value ct is application/json or
// a +json type.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// hasHeader reports whether the configured headers h set name.
func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) == name {
			return true
		}
	}
	return false
}
