package config

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"

	"github.com/fanouthq/fanout/template"
)

// Step is one call of a steps route. Steps without After start at once;
// the others as soon as every step they name has succeeded. A step whose
// dependency failed is skipped.
type Step struct {
	// Name identifies the step in after, respond, templates (.steps.NAME)
	// and the result envelope. Required, unique in the route; letters,
	// digits and '_', not starting with a digit (so that .steps.NAME is a
	// valid template field).
	Name string `yaml:"name"`
	// Target is the target called: its URL, method, headers, auth,
	// timeout and retry policy apply. Required; a key of Config.Targets.
	Target string `yaml:"target"`
	// After lists the steps that must succeed before this one starts.
	// Default none. Together they must not form a cycle.
	After []string `yaml:"after"`
	// Method is the outbound method, upper-cased by Parse. Default: the
	// target's method, else the inbound method.
	Method string `yaml:"method"`
	// Path is a URL template appended to the target URL's path, with an
	// optional query: "/users/{{ .request.path_params.id }}?expand=1". It
	// starts with "/" or "?"; every value it prints is percent-encoded
	// (package template, Kind URL). Default "": the target URL as is.
	Path string `yaml:"path"`
	// Headers are templates of headers set on the call, over the inbound
	// headers and the target's headers:
	// {Authorization: "Bearer {{ .steps.auth.body.token }}"}.
	Headers map[string]string `yaml:"headers"`
	// Body is a template whose output is the request body. Default "": the
	// inbound body (none when the method is GET or HEAD).
	Body string `yaml:"body"`
	// Secret marks values of this step's response as secret: a JSON
	// pointer into the response body ("/access_token") or a response
	// header name ("X-Session"). The later steps see the real values; every
	// place that shows the message (stored attempts, admin API answers,
	// the sync envelope, logs) shows "[REDACTED]" wherever the values
	// occur. Default none, beyond the values a later step's header
	// template reads from this step's response, which are secret anyway
	// (docs/security.md, "Step responses").
	Secret []string `yaml:"secret"`
}

// BodyTemplateOptions are the template options of bodies (route targets
// and steps); maxBody is the route's max_body.
func BodyTemplateOptions(maxBody Size) template.Options {
	return template.Options{MaxOutput: max(template.DefaultMaxOutput, 2*int(min(maxBody, 1<<30)))}
}

// PathParams returns the values that path, a path the match's pattern
// matches, gives the pattern's wildcards: the pattern
// "/users/{id}/files/{rest...}" and the path "/users/42/files/a/b" give
// {"id": "42", "rest": "a/b"}. It returns nil when the pattern has no
// wildcard. Templates see the values as .request.path_params.
func (m Match) PathParams(path string) map[string]string {
	if !strings.Contains(m.Path, "{") {
		return nil
	}
	pattern := strings.Split(strings.TrimPrefix(m.Path, "/"), "/")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	params := make(map[string]string, 2)
	for i, p := range pattern {
		name, ok := strings.CutPrefix(p, "{")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, "}")
		value := ""
		if rest, isRest := strings.CutSuffix(name, "..."); isRest {
			if i < len(segs) {
				value = strings.Join(segs[i:], "/")
			}
			params[rest] = value
			break
		}
		if i < len(segs) {
			value = segs[i]
		}
		params[name] = value
	}
	return params
}

// stepName reports whether s is a valid step name: [A-Za-z_][A-Za-z0-9_]*.
func stepName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// normalizeSteps upper-cases the steps' methods.
func (r *Route) normalizeSteps() {
	for _, s := range r.Steps {
		if s != nil {
			s.Method = strings.ToUpper(s.Method)
		}
	}
}

// routeSteps checks the steps, respond and async keys of a route, and
// that a steps route lists no targets. known is whether the route's mode
// is a known one.
func (v *validator) routeSteps(p fieldPath, r *Route, known bool) {
	if r.Mode != ModeSteps {
		if known {
			for _, key := range []string{"steps", "respond", "async"} {
				if set := key == "steps" && r.Steps != nil || key == "respond" && r.Respond != "" || key == "async" && r.Async; set {
					v.add(p.key(key), "is only allowed with mode steps, not %s", r.Mode)
				}
			}
		}
		return
	}
	if len(r.Targets) > 0 {
		v.add(p.key("targets"), "is not used with mode steps: each step names its target")
	}
	if r.Async && r.Respond != "" {
		v.add(p.key("respond"), "is not used with async: the caller gets 202 with the message id, and each step's result is in GET /v1/messages/{id}")
	}
	sp := p.key("steps")
	if len(r.Steps) == 0 {
		v.add(sp, "mode steps needs at least one step")
		return
	}

	index := map[string]int{} // step name → index of the first step with it
	for i, s := range r.Steps {
		if s == nil {
			v.add(sp.index(i), "is empty")
			continue
		}
		np := sp.index(i).key("name")
		switch first, dup := index[s.Name]; {
		case s.Name == "":
			v.add(np, "is required")
		case !stepName(s.Name):
			v.add(np, "step name %q may only contain letters, digits and '_', and must not start with a digit (it is used as .steps.%s in templates)", s.Name, s.Name)
		case dup:
			v.add(np, "step name %q is already used by steps[%d]%s", s.Name, first, v.where(sp.index(first).key("name")))
		default:
			index[s.Name] = i
		}
	}
	names := slices.Sorted(maps.Keys(index))

	for i, s := range r.Steps {
		if s == nil {
			continue
		}
		ep := sp.index(i)
		tp := ep.key("target")
		switch {
		case s.Target == "":
			v.add(tp, "is required")
		case v.c.Targets[s.Target] == nil:
			msg := fmt.Sprintf("unknown target %q", s.Target)
			if sug := closest(s.Target, slices.Sorted(maps.Keys(v.c.Targets))); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			v.add(tp, "%s", msg)
		}
		seen := map[string]bool{}
		for j, a := range s.After {
			ap := ep.key("after").index(j)
			_, ok := index[a]
			switch {
			case a == s.Name:
				v.add(ap, "a step cannot run after itself")
			case !ok:
				msg := fmt.Sprintf("unknown step %q", a)
				if sug := closest(a, names); sug != "" {
					msg += fmt.Sprintf("; did you mean %q?", sug)
				}
				v.add(ap, "%s", msg)
			case seen[a]:
				v.add(ap, "step %q is listed twice", a)
			}
			seen[a] = true
		}
		if s.Method != "" && !token(s.Method) {
			v.add(ep.key("method"), "%q is not a valid HTTP method", s.Method)
		}
	}

	if r.Respond != "" {
		if _, ok := index[r.Respond]; !ok {
			msg := fmt.Sprintf("unknown step %q", r.Respond)
			if sug := closest(r.Respond, names); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			v.add(p.key("respond"), "%s", msg)
		}
	}

	cyclic := v.stepCycles(sp, r.Steps, index)
	refs := refScope{params: r.Match.Wildcards(), steps: index}
	for i, s := range r.Steps {
		if s == nil {
			continue
		}
		ep := sp.index(i)
		scope := refs
		scope.step = s.Name
		if !cyclic {
			scope.before = ancestors(r.Steps, index, i)
		}
		if s.Path != "" {
			pp := ep.key("path")
			if !strings.HasPrefix(s.Path, "/") && !strings.HasPrefix(s.Path, "?") || strings.HasPrefix(s.Path, "//") {
				v.add(pp, "must start with \"/\" or \"?\" (it is appended to the target's URL), not %q", s.Path)
			} else {
				v.template(pp, s.Path, template.Options{Kind: template.URL}, scope)
			}
		}
		for _, h := range slices.Sorted(maps.Keys(s.Headers)) {
			hp := ep.key("headers").key(h)
			switch ck := textproto.CanonicalMIMEHeaderKey(h); {
			case !token(h):
				v.add(hp, "%q is not a valid header name", h)
			case ck == "Host" || ck == "Content-Length":
				v.add(hp, "%s is set by Fanout and cannot be configured", ck)
			case !headerValue(s.Headers[h]):
				v.add(hp, "the value must not contain control characters such as a line break")
			default:
				v.template(hp, s.Headers[h], template.Options{}, scope)
			}
		}
		if s.Body != "" {
			bp := ep.key("body")
			v.jsonHazards(bp, s.Body, v.template(bp, s.Body, BodyTemplateOptions(r.MaxBody), scope))
		}
		for j, sec := range s.Secret {
			if msg := secretEntry(sec); msg != "" {
				v.add(ep.key("secret").index(j), "%s", msg)
			}
		}
	}
}

// secretEntry checks one entry of a step's secret list and returns what is
// wrong with it, or "".
func secretEntry(s string) string {
	if s == "" {
		return `is empty: give a JSON pointer into the response body ("/access_token") or a response header name`
	}
	if !strings.HasPrefix(s, "/") {
		if !token(s) {
			return fmt.Sprintf("%q is neither a JSON pointer (it would start with \"/\") nor a valid header name", s)
		}
		return ""
	}
	if _, err := ParseJSONPointer(s); err != nil {
		return err.Error()
	}
	return ""
}

// ParseJSONPointer splits p, a JSON pointer (RFC 6901) such as
// "/data/0/token", into its unescaped reference tokens. The pointer ""
// (the whole document) is refused: a secret is a value inside it.
func ParseJSONPointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q is not a JSON pointer: it must start with \"/\"", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		for j := 0; j < len(part); j++ {
			if part[j] == '~' && (j+1 == len(part) || part[j+1] != '0' && part[j+1] != '1') {
				return nil, fmt.Errorf("%q is not a valid JSON pointer: '~' must be followed by 0 or 1 (\"~0\" is '~', \"~1\" is '/')", p)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// stepCycles reports every cycle of the steps' after lists, naming the
// steps on it, and whether there is one.
func (v *validator) stepCycles(sp fieldPath, steps []*Step, index map[string]int) bool {
	const (
		white = iota // not visited
		grey         // on the current path
		black        // done
	)
	color := make([]int, len(steps))
	var (
		stack    []int
		reported = map[string]bool{}
		found    bool
		visit    func(i int)
	)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for j, a := range steps[i].After {
			k, ok := index[a]
			if !ok || k == i {
				continue // reported as unknown or as after itself
			}
			switch color[k] {
			case white:
				visit(k)
			case grey:
				found = true
				start := slices.Index(stack, k)
				cycle := make([]string, 0, len(stack)-start+1)
				for _, s := range stack[start:] {
					cycle = append(cycle, steps[s].Name)
				}
				key := slices.Sorted(slices.Values(cycle))
				if !reported[strings.Join(key, " ")] {
					reported[strings.Join(key, " ")] = true
					cycle = append(cycle, steps[k].Name)
					v.add(sp.index(i).key("after").index(j), "the steps form a cycle: %s (each runs after the next)", strings.Join(cycle, " → "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i, s := range steps {
		if s != nil && color[i] == white && index[s.Name] == i {
			visit(i)
		}
	}
	return found
}

// ancestors returns the names of the steps that step i runs after,
// directly or not. The steps must not form a cycle.
func ancestors(steps []*Step, index map[string]int, i int) map[string]bool {
	out := map[string]bool{}
	var walk func(i int)
	walk = func(i int) {
		for _, a := range steps[i].After {
			if k, ok := index[a]; ok && !out[a] && steps[k] != nil {
				out[a] = true
				walk(k)
			}
		}
	}
	walk(i)
	return out
}

// refScope is what a template may name: the route path's wildcards, and
// for steps the route's steps and those that run before this one.
type refScope struct {
	params []string
	// steps maps the route's step names to their index; nil for the body
	// of a route target, which sees no steps.
	steps map[string]int
	step  string
	// before holds the steps this one runs after; nil when unknown
	// because of a cycle (then .steps.NAME is not checked).
	before map[string]bool
}

// template checks that src parses as a template and that the fields it
// names exist in scope.
func (v *validator) template(p fieldPath, src string, opts template.Options, scope refScope) *template.Template {
	t, err := template.Parse(p.String(), src, opts)
	if err != nil {
		var te *template.Error
		if errors.As(err, &te) {
			v.add(p, "the template does not parse: %s", te.Msg)
		} else {
			v.add(p, "the template does not parse: %v", err)
		}
		return nil
	}
	for _, ref := range t.Refs() {
		if msg := scope.check(ref); msg != "" {
			v.add(p, "%s", msg)
		}
	}
	return t
}

// check returns what is wrong with the field path ref, or "".
func (s refScope) check(ref []string) string {
	field := "." + strings.Join(ref, ".")
	switch ref[0] {
	case template.KeyRequest:
		if len(ref) < 2 {
			return ""
		}
		if !slices.Contains(template.RequestFields, ref[1]) {
			return unknownField(".request", ref[1], template.RequestFields)
		}
		if len(ref) < 3 {
			return ""
		}
		switch ref[1] {
		case "path_params":
			if !slices.Contains(s.params, ref[2]) {
				return fmt.Sprintf("%s: the route's path has no {%s}", field, ref[2])
			}
		case "headers":
			return canonicalHeader(".request.headers", ref[2])
		}
		return ""
	case template.KeySteps:
		if s.steps == nil {
			return fmt.Sprintf("%s: only the templates of a steps route see .steps", field)
		}
		if len(ref) < 2 {
			return ""
		}
		name := ref[1]
		if _, ok := s.steps[name]; !ok {
			msg := fmt.Sprintf("%s: unknown step %q", field, name)
			if sug := closest(name, slices.Sorted(maps.Keys(s.steps))); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			return msg
		}
		switch {
		case name == s.step:
			return fmt.Sprintf("%s: a step cannot use its own response", field)
		case s.before != nil && !s.before[name]:
			return fmt.Sprintf("%s: step %q does not run after step %q; add it to after", field, s.step, name)
		}
		if len(ref) < 3 {
			return ""
		}
		if !slices.Contains(template.ResponseFields, ref[2]) {
			return unknownField(".steps."+name, ref[2], template.ResponseFields)
		}
		if ref[2] == "headers" && len(ref) > 3 {
			return canonicalHeader(".steps."+name+".headers", ref[3])
		}
		return ""
	}
	if s.steps == nil {
		return fmt.Sprintf("unknown field %s: the templates of a route target see .request", field)
	}
	return fmt.Sprintf("unknown field %s: templates see .request and .steps", field)
}

func unknownField(parent, name string, known []string) string {
	msg := fmt.Sprintf("unknown field %s.%s; want %s", parent, name, orList(known))
	if sug := closest(name, known); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	return msg
}

// canonicalHeader checks that a header named as a field is written in its
// canonical form, the form of the keys.
func canonicalHeader(parent, name string) string {
	if ck := textproto.CanonicalMIMEHeaderKey(name); ck != name {
		return fmt.Sprintf("%s.%s: header names are canonical: write %s.%s (and index %s \"X-Name\" for names with '-')", parent, name, parent, ck, parent)
	}
	return ""
}

// targetBody checks the body template of route target rt of r, at p. It
// applies in every mode: the gateway renders it for sync calls, the
// durable queue when it delivers (async, mirror copies, on_failure:
// queue).
func (v *validator) targetBody(p fieldPath, r *Route, rt RouteTarget) {
	if rt.Body == "" {
		return
	}
	if r.Mode == ModeSteps {
		return // targets are reported as not used
	}
	bp := p.key("body")
	v.jsonHazards(bp, rt.Body, v.template(bp, rt.Body, BodyTemplateOptions(r.MaxBody), refScope{params: r.Match.Wildcards()}))
}
