package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/steps"
	"github.com/fanouthq/fanout/template"
)

// Defaults for route and target settings left at zero (config.Load fills
// them in; a config built in Go may not).
const (
	DefaultDeadline        = 30 * time.Second
	DefaultMaxBody         = 1 << 20
	DefaultMaxResponseBody = 64 << 10
	DefaultSyncMaxAttempts = 3
	DefaultDedupWindow     = 24 * time.Hour
	// DefaultBodyTimeout is the body_timeout of async routes that set
	// none (sync routes default to their deadline).
	DefaultBodyTimeout        = 30 * time.Second
	defaultNoRouteBodyTimeout = 10 * time.Second
	// handoffTimeout bounds a hand-off to the durable queue that is not
	// bounded by a request (mirror copies, failed legs of on_failure:
	// queue).
	handoffTimeout = 10 * time.Second
)

// table is one compiled configuration: the router and its routes. It is
// never modified once built; Load swaps in a new one.
type table struct {
	router *router
	dedup  time.Duration
	sec    tableSecurity // API keys and JWT verifier (security.go)
}

// route is a config.Route compiled for serving.
type route struct {
	name        string
	mode        config.Mode
	targets     []*config.Target // in route order
	optional    []bool
	names       []string // target names, in route order
	deadline    time.Duration
	bodyTimeout time.Duration // to receive the whole body (body.go)
	maxBody     int64
	maxRespBody int64
	json        bool
	require     int // all: successes needed; 0 means every non-optional target
	failFast    bool
	queueFailed bool // on_failure: queue
	// mirror
	primary    *config.Target
	copies     []*config.Target
	copyNames  []string
	sample     float64 // percent, 0–100
	durable    bool
	hedgeAfter time.Duration // race
	sec        routeSecurity // auth, rate limit, schema (security.go)
	// bodies holds the body template of each target (nil: the inbound
	// body), nil when no target has one (bodymap.go).
	bodies []*template.Template
	match  config.Match // for templates: .request.path_params
	steps  *steps.Route // mode steps (steps.go)
	// acceptSteps is what each message of an async steps route stores.
	acceptSteps []fanout.AcceptStep
	life        routeLifecycle // lifecycle.go
}

// compile builds the routing table of cfg; log receives the warnings of
// the JWT key set; now dates the routes deprecated without deprecated_at.
func compile(cfg *config.Config, log *slog.Logger, now time.Time, acc Access) (*table, error) {
	if cfg == nil {
		return nil, errors.New("no config")
	}
	t := &table{router: newRouter(), dedup: cfg.Delivery.DedupWindow.D()}
	if t.dedup <= 0 {
		t.dedup = DefaultDedupWindow
	}
	var err error
	if t.sec, err = newTableSecurity(cfg, log, acc); err != nil {
		return nil, err
	}
	var errs []error
	for i, rc := range cfg.Routes {
		if rc == nil {
			errs = append(errs, fmt.Errorf("routes[%d]: empty", i))
			continue
		}
		rt, err := compileRoute(cfg, rc)
		if err == nil {
			err = t.secureRoute(cfg, rc, rt)
		}
		if err == nil && rc.Draft() {
			continue // compiled but not served: a draft answers as an unknown route
		}
		if err == nil {
			rt.life = compileLifecycle(rc.Lifecycle, now) // lifecycle.go
			err = t.router.add(normalizeMethod(rc.Match.Method), rc.Match.Host, rc.Match.Path, rt)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("route %q: %w", rc.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func compileRoute(cfg *config.Config, rc *config.Route) (*route, error) {
	rt := &route{
		name:        rc.Name,
		mode:        rc.Mode,
		deadline:    rc.Deadline.D(),
		maxBody:     int64(rc.MaxBody),
		maxRespBody: int64(rc.MaxResponseBody),
		json:        rc.ContentType == "json",
		require:     rc.Require,
		failFast:    rc.FailFast,
		queueFailed: rc.OnFailure == "queue",
		sample:      100,
		durable:     true,
		hedgeAfter:  rc.HedgeAfter.D(),
	}
	if rt.name == "" {
		return nil, errors.New("no name")
	}
	if rt.deadline <= 0 {
		rt.deadline = DefaultDeadline
	}
	if rt.bodyTimeout = rc.BodyTimeout.D(); rt.bodyTimeout <= 0 {
		rt.bodyTimeout = rt.deadline
		if rc.Mode == config.ModeAsync || rc.Mode == config.ModeSteps && rc.Async {
			rt.bodyTimeout = DefaultBodyTimeout
		}
	}
	if rt.maxBody <= 0 {
		rt.maxBody = DefaultMaxBody
	}
	if rt.maxRespBody <= 0 {
		rt.maxRespBody = DefaultMaxResponseBody
	}
	if rc.SamplePercent != nil {
		rt.sample = *rc.SamplePercent
	}
	if rc.Durable != nil {
		rt.durable = *rc.Durable
	}
	switch rc.ContentType {
	case "", "json":
	default:
		return nil, fmt.Errorf("content_type %q: want json or nothing", rc.ContentType)
	}
	switch rc.OnFailure {
	case "", "queue":
	default:
		return nil, fmt.Errorf("on_failure %q: want queue or nothing", rc.OnFailure)
	}
	switch rc.Mode {
	case config.ModeAsync, config.ModeAll, config.ModeSettled, config.ModeRace, config.ModeMirror:
	case config.ModeSteps:
		return rt, rt.compileSteps(cfg, rc) // steps.go
	default:
		return nil, fmt.Errorf("unknown mode %q", rc.Mode)
	}
	if len(rc.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	seen := make(map[string]bool, len(rc.Targets))
	for _, rtc := range rc.Targets {
		tc := cfg.Targets[rtc.Name]
		if tc == nil {
			return nil, fmt.Errorf("unknown target %q", rtc.Name)
		}
		if seen[rtc.Name] {
			return nil, fmt.Errorf("target %q listed twice", rtc.Name)
		}
		seen[rtc.Name] = true
		if tc.ParsedURL == nil {
			return nil, fmt.Errorf("target %q has no parsed URL", rtc.Name)
		}
		if tc.Name == "" {
			// A hand-built config: the name is the map key.
			c := *tc
			c.Name = rtc.Name
			tc = &c
		}
		rt.targets = append(rt.targets, tc)
		rt.optional = append(rt.optional, rtc.Optional)
		rt.names = append(rt.names, rtc.Name)
		if err := rt.compileBody(rc, rtc); err != nil { // bodymap.go
			return nil, err
		}
	}
	if rt.require < 0 || rt.require > len(rt.targets) {
		return nil, fmt.Errorf("require %d: the route has %d targets", rt.require, len(rt.targets))
	}
	if rt.sample < 0 || rt.sample > 100 {
		return nil, fmt.Errorf("sample_percent %v: want 0–100", rt.sample)
	}
	if rt.mode == config.ModeMirror {
		for i, tc := range rt.targets {
			if rt.names[i] == rc.Primary {
				rt.primary = tc
			} else {
				rt.copies = append(rt.copies, tc)
				rt.copyNames = append(rt.copyNames, rt.names[i])
			}
		}
		if rt.primary == nil {
			// A primary not listed in targets: every listed target gets
			// a copy.
			tc := cfg.Targets[rc.Primary]
			if tc == nil || tc.ParsedURL == nil {
				return nil, fmt.Errorf("mirror: primary %q is not a target", rc.Primary)
			}
			if tc.Name == "" {
				c := *tc
				c.Name = rc.Primary
				tc = &c
			}
			rt.primary = tc
		}
	}
	return rt, nil
}

// syncMaxAttempts is how many attempts a sync route makes to t.
func syncMaxAttempts(t *config.Target) int {
	if n := t.Retry.SyncMaxAttempts; n > 0 {
		return n
	}
	return DefaultSyncMaxAttempts
}
