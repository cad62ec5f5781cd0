package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/config"
)

// This file enforces a route's lifecycle (config lifecycle, docs/configuration.md):
// a draft is not in the router at all (compile skips it, so it answers
// exactly as an unknown route); a deprecated route is served and every
// answer carries Deprecation (RFC 9745), Sunset (RFC 8594) and Link
// rel="deprecation"; a retired route answers 410 route_retired.

// routeLifecycle is a route's lifecycle compiled for serving: the header
// values are built once per config load.
type routeLifecycle struct {
	state config.LifecycleState // "" means published
	// since is when the route was deprecated: deprecated_at, or, when
	// unset, when this node first loaded it as deprecated (kept across
	// reloads by inherit).
	since        time.Time
	defaultSince bool
	link         string   // the URL, for the details of a retired route's 410
	deprecation  []string // "@<unix seconds>", an RFC 9651 Date
	sunset       []string // IMF-fixdate; nil when none is announced
	linkHeader   string   // `<url>; rel="deprecation"`; "" when no link
}

// compileLifecycle builds the serving form of l; now is the deprecation
// time when l has none.
func compileLifecycle(l config.Lifecycle, now time.Time) routeLifecycle {
	rl := routeLifecycle{state: l.State, link: l.Link}
	if l.State != config.StateDeprecated && l.State != config.StateRetired {
		return rl
	}
	rl.since = l.DeprecatedTime
	if rl.since.IsZero() {
		rl.since, rl.defaultSince = now, true
	}
	rl.setDeprecation()
	if !l.SunsetTime.IsZero() {
		rl.sunset = []string{l.SunsetTime.UTC().Format(http.TimeFormat)}
	}
	if l.Link != "" {
		rl.linkHeader = "<" + l.Link + `>; rel="deprecation"`
	}
	return rl
}

func (rl *routeLifecycle) setDeprecation() {
	rl.deprecation = []string{"@" + strconv.FormatInt(rl.since.Unix(), 10)}
}

// ended reports whether the route is deprecated or retired: its answers
// carry the deprecation headers.
func (rl *routeLifecycle) ended() bool {
	return rl.state == config.StateDeprecated || rl.state == config.StateRetired
}

// inheritLifecycle keeps the default deprecation time of a route that was
// already deprecated (without deprecated_at) before a reload, so that the
// Deprecation header does not move with every reload.
func inheritLifecycle(rt, old *route) {
	if rt.life.defaultSince && old.life.ended() && old.life.defaultSince {
		rt.life.since = old.life.since
		rt.life.setDeprecation()
	}
}

// checkLifecycle is called once a request has matched its route: it makes
// every answer of a deprecated or retired route carry the deprecation
// headers, and refuses a retired route with 410 route_retired.
func (c *call) checkLifecycle() *apierror.Error {
	l := &c.rt.life
	if !l.ended() {
		return nil
	}
	c.w = &deprecatedWriter{ResponseWriter: c.w, life: l}
	if l.state != config.StateRetired {
		return nil
	}
	e := apierror.New(http.StatusGone, "route_retired", "this route is retired and no longer served")
	if l.link != "" {
		e = e.WithDetails(map[string]any{"link": l.link})
	}
	return e
}

// countDeprecated reports a finished request of a deprecated route to the
// OnDeprecated hook, with the caller's tenant ("" when none is known).
func (c *call) countDeprecated() {
	if c.rt == nil || c.rt.life.state != config.StateDeprecated {
		return
	}
	if h := c.g.hooks.OnDeprecated; h != nil {
		h(c.rt.name, c.auth.id.Tenant)
	}
}

// deprecatedWriter adds the deprecation headers when the answer's header
// is written, whoever writes it (the error shape, an envelope, a proxied
// target answer whose own headers replaced the map's): a target's own Link
// values are kept and ours added beside them.
type deprecatedWriter struct {
	http.ResponseWriter
	life *routeLifecycle
	done bool
}

func (w *deprecatedWriter) stamp() {
	if w.done {
		return
	}
	w.done = true
	h := w.ResponseWriter.Header()
	h["Deprecation"] = w.life.deprecation
	if w.life.sunset != nil {
		h["Sunset"] = w.life.sunset
	}
	if w.life.linkHeader != "" {
		h.Add("Link", w.life.linkHeader)
	}
}

// WriteHeader stamps the headers, then writes the status.
func (w *deprecatedWriter) WriteHeader(status int) {
	w.stamp()
	w.ResponseWriter.WriteHeader(status)
}

// Write stamps the headers when no status was written yet.
func (w *deprecatedWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines, flushes).
func (w *deprecatedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
