package config

import (
	"cmp"
	"net/url"
	"strings"
	"time"
)

// This file holds a route's lifecycle settings (docs/configuration.md,
// Lifecycle): where the route is in its life.

// LifecycleState is where a route is in its life.
type LifecycleState string

// The lifecycle states.
const (
	// StateDraft routes are not served (404 as an unknown route); the
	// admin API lists them as upcoming.
	StateDraft LifecycleState = "draft"
	// StatePublished routes are served (the default, also written "").
	StatePublished LifecycleState = "published"
	// StateDeprecated routes are served, and every answer carries the
	// Deprecation header (RFC 9745), Sunset (RFC 8594) when set and a
	// Link with rel="deprecation" when set.
	StateDeprecated LifecycleState = "deprecated"
	// StateRetired routes answer 410 route_retired.
	StateRetired LifecycleState = "retired"
)

// Lifecycle is where a route is in its life.
type Lifecycle struct {
	// State is draft, published (default), deprecated or retired.
	State LifecycleState `yaml:"state"`
	// DeprecatedAt is when the route was (or will be) deprecated, RFC
	// 3339; the Deprecation header carries it. Only with state
	// deprecated or retired. Default: when this node first loaded the
	// route as deprecated.
	DeprecatedAt string `yaml:"deprecated_at"`
	// Sunset is when the route stops being served, RFC 3339; deprecated
	// answers carry it in the Sunset header. Default "": none announced.
	Sunset string `yaml:"sunset"`
	// Link is a page that tells callers what to use instead: an absolute
	// http or https URL, sent as Link: <…>; rel="deprecation" on
	// deprecated answers and in the details of a retired route's 410.
	// Default "".
	Link string `yaml:"link"`

	// SunsetTime and DeprecatedTime are Sunset and DeprecatedAt parsed
	// (set by Parse; zero when unset or invalid).
	SunsetTime     time.Time `yaml:"-"`
	DeprecatedTime time.Time `yaml:"-"`
}

// Draft reports whether the route is a draft (not served).
func (r *Route) Draft() bool { return r.Lifecycle.State == StateDraft }

// normalizeLifecycle parses the times. An empty state stays "" (it means
// published), like an empty auth.
func (r *Route) normalizeLifecycle() {
	l := &r.Lifecycle
	l.SunsetTime, _ = time.Parse(time.RFC3339, l.Sunset)
	l.DeprecatedTime, _ = time.Parse(time.RFC3339, l.DeprecatedAt)
}

// lifecycle checks a route's lifecycle settings.
func (v *validator) lifecycle(p fieldPath, r *Route) {
	lp := p.key("lifecycle")
	l := r.Lifecycle
	states := []string{string(StateDraft), string(StatePublished), string(StateDeprecated), string(StateRetired)}
	if l.State != "" {
		v.oneOf(lp.key("state"), string(l.State), states...)
	}
	rfc3339 := func(key, val string) {
		if val == "" {
			return
		}
		if _, err := time.Parse(time.RFC3339, val); err != nil {
			v.add(lp.key(key), "must be an RFC 3339 time such as 2027-01-31T00:00:00Z, not %q", val)
		}
	}
	rfc3339("sunset", l.Sunset)
	rfc3339("deprecated_at", l.DeprecatedAt)
	ended := l.State == StateDeprecated || l.State == StateRetired
	shown := cmp.Or(string(l.State), string(StatePublished))
	if l.DeprecatedAt != "" && !ended {
		v.add(lp.key("deprecated_at"), "is only allowed with state deprecated or retired, not %s", shown)
	}
	if l.Sunset != "" && !ended {
		v.add(lp.key("sunset"), "is only allowed with state deprecated or retired, not %s", shown)
	}
	if !l.DeprecatedTime.IsZero() && !l.SunsetTime.IsZero() && l.SunsetTime.Before(l.DeprecatedTime) {
		v.add(lp.key("sunset"), "must not be before deprecated_at (%s)", l.DeprecatedAt)
	}
	if l.Link != "" {
		if u, err := url.Parse(l.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(l.Link, "<> \"") {
			v.add(lp.key("link"), "must be an absolute http:// or https:// URL, not %q", l.Link)
		}
	}
}
