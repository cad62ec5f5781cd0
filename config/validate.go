package config

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the config and returns an ErrorList of every problem, or
// nil. For a config from Load or Parse (which already validated it) each
// error names the line and column of the value; for one built in code it
// names the field only. Validate does not change the config.
func (c *Config) Validate() error {
	if c == nil {
		return ErrorList{{Msg: "no config"}}
	}
	return c.validate(nil).err()
}

// Warnings returns what the config says that is allowed but probably a
// mistake, sorted by position: body templates that print a caller's value
// into JSON without json, which lets the caller add fields (see
// docs/modes.md, Templates). For a config from Load or Parse each names
// the file, line and column. fanout validate prints them; the server logs
// them when it loads a config.
func (c *Config) Warnings() []*Warning {
	if c == nil {
		return nil
	}
	v := &validator{c: c}
	v.config()
	slices.SortStableFunc(v.warns, func(a, b *Warning) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return v.warns
}

// validator collects the problems of one config.
type validator struct {
	c     *Config
	errs  ErrorList
	warns []*Warning
	// skip holds paths that failed to decode: their problem is already
	// reported, and what follows from it would be noise.
	skip map[string]bool
}

// validate returns the problems of c, leaving out those under a path in
// skip.
func (c *Config) validate(skip map[string]bool) ErrorList {
	v := &validator{c: c, skip: skip}
	v.config()
	return v.errs
}

// add reports a problem with the value at p.
func (v *validator) add(p fieldPath, format string, args ...any) {
	if len(v.errs) > maxErrors {
		return // the list is cut to maxErrors anyway
	}
	for i := 1; i <= len(p); i++ {
		if v.skip[p[:i].String()] {
			return
		}
	}
	pos := v.c.pos.find(p)
	v.errs = append(v.errs, &Error{File: v.c.File, Line: pos.line, Col: pos.col, Field: p.String(), Msg: fmt.Sprintf(format, args...)})
}

// inFile reports whether the value at p was written in the file.
func (v *validator) inFile(p fieldPath) bool {
	_, ok := v.c.pos[p.String()]
	return ok
}

// where returns " (line N)" for the value at p, or "" when unknown.
func (v *validator) where(p fieldPath) string {
	if pos := v.c.pos.find(p); pos.line > 0 {
		return fmt.Sprintf(" (line %d)", pos.line)
	}
	return ""
}

func (v *validator) positive(p fieldPath, d Duration) {
	if d <= 0 {
		v.add(p, "must be greater than 0, not %s", d)
	}
}

func (v *validator) atLeast(p fieldPath, n, least int) {
	if n < least {
		v.add(p, "must be at least %d, not %d", least, n)
	}
}

func (v *validator) config() {
	c := v.c
	var root fieldPath
	if msg := checkListen(c.Listen); msg != "" {
		v.add(root.key("listen"), "%s", msg)
	}
	admin := root.key("admin")
	if c.Admin.Listen != AdminOff {
		if msg := checkListen(c.Admin.Listen); msg != "" {
			v.add(admin.key("listen"), "%s (or \"off\")", msg)
		} else if c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			v.add(admin.key("listen"), "must differ from listen (%q)", c.Listen)
		}
	}
	store := root.key("store")
	switch c.Store.Driver {
	case "sqlite", "postgres":
		if c.Store.DSN == "" {
			v.add(store.key("dsn"), "is required with driver %s", c.Store.Driver)
		}
	default:
		v.add(store.key("driver"), "must be sqlite or postgres, not %q", c.Store.Driver)
	}
	v.positive(store.key("timeout"), c.Store.Timeout)
	log := root.key("log")
	v.oneOf(log.key("level"), c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf(log.key("format"), c.Log.Format, "json", "text", "auto")
	delivery := root.key("delivery")
	v.positive(delivery.key("retention"), c.Delivery.Retention)
	v.positive(delivery.key("dedup_window"), c.Delivery.DedupWindow)
	v.positive(delivery.key("lease_timeout"), c.Delivery.LeaseTimeout)
	if d := c.Delivery.HeartbeatTimeout; d < Duration(2*time.Second) {
		v.add(delivery.key("heartbeat_timeout"), "must be at least 2s (two heartbeats), not %s", d)
	}
	v.positive(root.key("shutdown_timeout"), c.ShutdownTimeout)

	targets := root.key("targets")
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		v.target(targets.key(name), name, c.Targets[name])
	}
	v.routes(root.key("routes"))
	v.security()
}

// oneOf checks that s is one of the allowed values.
func (v *validator) oneOf(p fieldPath, s string, allowed ...string) {
	if slices.Contains(allowed, s) {
		return
	}
	msg := fmt.Sprintf("must be %s, not %q", orList(allowed), s)
	if sug := closest(s, allowed); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	v.add(p, "%s", msg)
}

// orList formats ["a", "b", "c"] as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// checkListen checks a listen address; it returns a message or "".
func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port, such as \":8080\" or \"127.0.0.1:8080\", not %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q must be a number from 0 to 65535", port)
	}
	if strings.ContainsFunc(host, func(c rune) bool { return c <= ' ' || c == 0x7f || c == '/' }) {
		return fmt.Sprintf("%q is not a valid host", host)
	}
	return ""
}

func (v *validator) target(p fieldPath, name string, t *Target) {
	if !validName(name) {
		v.add(p, "target name %q may only contain letters, digits, '_', '-' and '.'", name)
	}
	if t == nil {
		v.add(p, "is empty")
		return
	}
	v.servers(p, t)
	if t.Method != "" && !token(t.Method) {
		v.add(p.key("method"), "%q is not a valid HTTP method", t.Method)
	}
	for _, h := range slices.Sorted(maps.Keys(t.Headers)) {
		hp := p.key("headers").key(h)
		if !token(h) {
			v.add(hp, "%q is not a valid header name", h)
		}
		if !headerValue(t.Headers[h]) {
			v.add(hp, "the value must not contain control characters such as a line break")
		}
	}
	if t.Auth != nil {
		v.auth(p.key("auth"), t.Auth)
	}
	v.positive(p.key("timeout"), t.Timeout)
	r, rp := t.Retry, p.key("retry")
	v.positive(rp.key("initial"), r.Initial)
	v.positive(rp.key("max"), r.Max)
	if r.Initial > 0 && r.Max > 0 && r.Initial > r.Max {
		v.add(rp.key("initial"), "must not exceed max (%s > %s)", r.Initial, r.Max)
	}
	v.atLeast(rp.key("max_attempts"), r.MaxAttempts, 1)
	v.positive(rp.key("max_age"), r.MaxAge)
	v.atLeast(rp.key("sync_max_attempts"), r.SyncMaxAttempts, 1)
	for i, s := range r.RetryStatus {
		if s < 100 || s > 599 {
			v.add(rp.key("retry_status").index(i), "must be an HTTP status from 100 to 599, not %d", s)
		}
	}
	v.atLeast(p.key("max_in_flight"), t.MaxInFlight, 1)
	v.resilience(p, t)
	for i, h := range t.Redact {
		if !token(h) {
			v.add(p.key("redact").index(i), "%q is not a valid header name", h)
		}
	}
}

// servers checks a target's url or servers: one of them, servers each with
// a URL and a weight from 1 to 1000, at least one of them primary.
func (v *validator) servers(p fieldPath, t *Target) {
	sp := p.key("servers")
	switch {
	case t.Servers == nil:
		v.httpURL(p.key("url"), t.URL)
		return
	case v.inFile(p.key("url")):
		v.add(p.key("url"), "set url (one server) or servers, not both")
		return
	case len(t.Servers) == 0:
		v.add(sp, "must list at least one server")
		return
	}
	primary := false
	seen := make(map[string]bool, len(t.Servers))
	for i, s := range t.Servers {
		ip := sp.index(i)
		if s == nil {
			v.add(ip, "is empty")
			continue
		}
		v.httpURL(ip.key("url"), s.URL)
		if s.URL != "" && seen[s.URL] {
			v.add(ip.key("url"), "%q is listed twice", s.URL)
		}
		seen[s.URL] = true
		if s.Weight < 1 || s.Weight > maxWeight {
			v.add(ip.key("weight"), "must be from 1 to %d, not %d", maxWeight, s.Weight)
		}
		primary = primary || !s.Backup
	}
	if !primary {
		v.add(sp, "needs at least one server that is not a backup")
	}
}

// maxWeight is the largest weight of a server.
const maxWeight = 1000

// resilience checks balance, outlier, health_check, circuit_breaker,
// rate_limit and failure_status.
func (v *validator) resilience(p fieldPath, t *Target) {
	if t.Balance != "" {
		v.oneOf(p.key("balance"), t.Balance, BalanceRoundRobin, BalanceLeastRequests, BalanceP2C)
	}
	if o := t.Outlier; o != nil {
		op := p.key("outlier")
		if n := o.ConsecutiveFailures; n < 0 || n > 1000 {
			v.add(op.key("consecutive_failures"), "must be from 0 (off) to 1000, not %d", n)
		}
		v.positive(op.key("ejection_time"), o.EjectionTime)
		if o.EjectionTime > 0 && o.MaxEjectionTime < o.EjectionTime {
			v.add(op.key("max_ejection_time"), "must be at least ejection_time (%s), not %s", o.EjectionTime, o.MaxEjectionTime)
		}
	}
	if h := t.HealthCheck; h != nil {
		hp := p.key("health_check")
		switch {
		case h.Path == "":
			v.add(hp.key("path"), "is required")
		case h.Path[0] != '/':
			v.add(hp.key("path"), "must start with /, not %q", h.Path)
		case strings.ContainsFunc(h.Path, func(c rune) bool { return c <= ' ' || c == 0x7f }):
			v.add(hp.key("path"), "must not contain spaces or control characters")
		}
		v.positive(hp.key("interval"), h.Interval)
		v.positive(hp.key("timeout"), h.Timeout)
		if h.Interval > 0 && h.Timeout > h.Interval {
			v.add(hp.key("timeout"), "must not exceed interval (%s > %s)", h.Timeout, h.Interval)
		}
		if s := h.ExpectStatus; s != 0 && (s < 100 || s > 599) {
			v.add(hp.key("expect_status"), "must be an HTTP status from 100 to 599, not %d", s)
		}
	}
	if b := t.CircuitBreaker; b != nil {
		bp := p.key("circuit_breaker")
		v.positive(bp.key("window"), b.Window)
		v.atLeast(bp.key("min_requests"), b.MinRequests, 1)
		if r := b.FailureRatio; !(r > 0 && r <= 1) {
			v.add(bp.key("failure_ratio"), "must be more than 0 and at most 1, not %g", r)
		}
		if n := b.ConsecutiveFailures; n < 0 || n > 1000 {
			v.add(bp.key("consecutive_failures"), "must be from 0 (off) to 1000, not %d", n)
		}
		v.positive(bp.key("open_for"), b.OpenFor)
		if n := b.Probes; n < 1 || n > 100 {
			v.add(bp.key("probes"), "must be from 1 to 100, not %d", n)
		}
	}
	if r := t.RateLimit; r != nil {
		rp := p.key("rate_limit")
		if !(r.RPS > 0 && r.RPS <= maxRate) {
			v.add(rp.key("rps"), "must be greater than 0 and at most %d, not %v", maxRate, r.RPS)
		}
		if r.Burst < 0 || r.Burst > maxRate || r.Burst == 0 && r.RPS > 0 && r.RPS <= maxRate {
			v.add(rp.key("burst"), "must be from 1 to %d (left out: rps rounded up), not %d", maxRate, r.Burst)
		}
	}
	for i, s := range t.FailureStatus {
		if s < 100 || s > 599 {
			v.add(p.key("failure_status").index(i), "must be an HTTP status from 100 to 599, not %d", s)
		}
	}
}

// httpURL checks an absolute http or https URL.
func (v *validator) httpURL(p fieldPath, raw string) {
	if raw == "" {
		v.add(p, "is required")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(p, "%q is not a valid URL: %v", raw, unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(p, "must be an absolute http:// or https:// URL, not %q", raw)
	case u.Host == "":
		v.add(p, "must include a host, not %q", raw)
	}
}

// unwrapURLError drops the `parse "…":` prefix of a url.Error, since the
// message already quotes the URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (v *validator) auth(p fieldPath, a *Auth) {
	var set []string
	if a.Bearer != "" {
		set = append(set, "bearer")
		if !headerValue(a.Bearer) {
			v.add(p.key("bearer"), "must not contain control characters such as a line break")
		}
	}
	if a.Basic != nil {
		set = append(set, "basic")
		if a.Basic.Username == "" {
			v.add(p.key("basic").key("username"), "is required")
		}
	}
	if a.APIKey != nil {
		set = append(set, "api_key")
		kp := p.key("api_key")
		switch q := a.APIKey.Query; {
		case q != "" && a.APIKey.Header != "":
			v.add(kp, "set header or query, not both")
		case q != "":
			if strings.ContainsFunc(q, func(c rune) bool { return c <= ' ' || c == 0x7f || strings.ContainsRune("&=#?%+", c) }) {
				v.add(kp.key("query"), "%q is not a valid query parameter name", q)
			}
		case !token(a.APIKey.Header):
			v.add(kp.key("header"), "%q is not a valid header name", a.APIKey.Header)
		}
		if a.APIKey.Value == "" {
			v.add(kp.key("value"), "is required")
		} else if !headerValue(a.APIKey.Value) {
			v.add(kp.key("value"), "must not contain control characters such as a line break")
		}
	}
	if o := a.OAuth2ClientCredentials; o != nil {
		set = append(set, "oauth2_client_credentials")
		op := p.key("oauth2_client_credentials")
		v.httpURL(op.key("token_url"), o.TokenURL)
		if o.ClientID == "" {
			v.add(op.key("client_id"), "is required")
		}
		if o.ClientSecret == "" {
			v.add(op.key("client_secret"), "is required")
		}
		for i, s := range o.Scopes {
			if s == "" || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c == '"' || c == '\\' || c == 0x7f }) {
				v.add(op.key("scopes").index(i), "%q is not a valid OAuth 2.0 scope", s)
			}
		}
	}
	if a.HMAC != nil {
		set = append(set, "hmac")
		hp := p.key("hmac").key("standard_webhooks_secret")
		secrets := a.HMAC.StandardWebhooksSecret
		if len(secrets) == 0 {
			v.add(hp, "is required")
		}
		seen := map[string]int{}
		for i, s := range secrets {
			sp := hp.index(i)
			if len(secrets) == 1 {
				sp = hp // written as one string, or a list of one
			}
			key := strings.TrimPrefix(s, "whsec_")
			b, err := base64.StdEncoding.DecodeString(key)
			switch {
			case key == "":
				v.add(sp, "is required")
			case err != nil || len(b) == 0:
				v.add(sp, "must be base64, optionally prefixed with \"whsec_\" (a Standard Webhooks secret)")
			default:
				if j, dup := seen[string(b)]; dup {
					v.add(sp, "is the same secret as [%d]", j)
				} else {
					seen[string(b)] = i
				}
			}
		}
	}
	switch len(set) {
	case 0:
		v.add(p, "must set one of bearer, basic, api_key, oauth2_client_credentials or hmac (an empty value counts as not set)")
	case 1:
	default:
		v.add(p, "must set only one of bearer, basic, api_key, oauth2_client_credentials or hmac, not %s", strings.Join(set, " and "))
	}
}

// supportedModes returns the modes a route may have in this version.
func supportedModes() []string {
	return []string{string(ModeAsync), string(ModeAll), string(ModeSettled), string(ModeRace), string(ModeMirror), string(ModeSteps)}
}

func (v *validator) routes(rp fieldPath) {
	names := map[string]int{}   // route name → index of the route
	matches := map[string]int{} // method, host and path shape → index of the route
	for i, r := range v.c.Routes {
		p := rp.index(i)
		if r == nil {
			v.add(p, "is empty")
			continue
		}
		np := p.key("name")
		switch first, dup := names[r.Name]; {
		case r.Name == "":
			v.add(np, "is required")
		case !validName(r.Name):
			v.add(np, "route name %q may only contain letters, digits, '_', '-' and '.'", r.Name)
		case dup:
			v.add(np, "route name %q is already used by routes[%d]%s", r.Name, first, v.where(rp.index(first).key("name")))
		default:
			names[r.Name] = i
		}
		v.route(p, r)
		if segs, err := parsePath(r.Match.Path); err == nil && token(r.Match.Method) {
			key := r.Match.Method + " " + r.Match.Host + shape(segs)
			if first, dup := matches[key]; dup {
				v.add(p.key("match"), "route %q already matches %s %s%s%s",
					v.c.Routes[first].Name, r.Match.Method, r.Match.Host, r.Match.Path, v.where(rp.index(first).key("match")))
			} else {
				matches[key] = i
			}
		}
	}
}

// route checks one route (but not its name and match against the others).
func (v *validator) route(p fieldPath, r *Route) {
	v.routeSecurity(p, r) // auth, tenants, rate_limit, schema: every mode
	v.lifecycle(p, r)     // lifecycle (lifecycle.go)
	v.access(p, r)        // access (access.go)
	mode := string(r.Mode)
	modes := supportedModes()
	known := slices.Contains(modes, mode)
	mp := p.key("mode")
	switch {
	case mode == "":
		v.add(mp, "is required (%s)", orList(modes))
	case !known:
		v.oneOf(mp, mode, modes...)
	}
	// only reports a setting that the route's mode does not use. It says
	// nothing when the mode is missing or unknown: that is reported.
	only := func(key string, set bool, modes ...Mode) {
		if set && known && !slices.Contains(modes, r.Mode) {
			names := make([]string, len(modes))
			for i, m := range modes {
				names[i] = string(m)
			}
			v.add(p.key(key), "is only allowed with mode %s, not %s", strings.ReplaceAll(orList(names), " or ", " and "), mode)
		}
	}

	tp := p.key("targets")
	listed := map[string]int{}
	v.routeSteps(p, r, known) // steps, respond, async (steps.go)
	if len(r.Targets) == 0 && r.Mode != ModeSteps {
		v.add(tp, "must list at least one target")
	}
	for j, rt := range r.Targets {
		ep := tp.index(j)
		switch first, dup := listed[rt.Name]; {
		case rt.Name == "":
			v.add(ep, "the target name is required")
		case v.c.Targets[rt.Name] == nil:
			msg := fmt.Sprintf("unknown target %q", rt.Name)
			if s := closest(rt.Name, slices.Sorted(maps.Keys(v.c.Targets))); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			v.add(ep, "%s", msg)
		case dup:
			v.add(ep, "target %q is listed twice (also targets[%d])", rt.Name, first)
		default:
			listed[rt.Name] = j
		}
		if rt.Optional && known && r.Mode != ModeAll {
			v.add(ep.key("optional"), "is only allowed with mode all, not %s", mode)
		}
		v.targetBody(ep, r, rt) // steps.go
	}

	rq := p.key("require")
	only("require", r.Require != 0, ModeAll)
	switch {
	case r.Require < 0 || r.Require == 0 && v.inFile(rq) && r.Mode == ModeAll:
		v.add(rq, "must be at least 1, not %d", r.Require)
	case r.Mode == ModeAll && r.Require > len(r.Targets):
		v.add(rq, "is %d but the route has %d target(s)", r.Require, len(r.Targets))
	}
	only("fail_fast", r.FailFast, ModeAll)
	only("hedge_after", r.HedgeAfter != 0, ModeRace)
	if r.HedgeAfter < 0 {
		v.add(p.key("hedge_after"), "must not be negative")
	}

	only("primary", r.Primary != "", ModeMirror)
	if r.Mode == ModeMirror {
		pp := p.key("primary")
		others := 0
		for _, rt := range r.Targets {
			if rt.Name != r.Primary {
				others++
			}
		}
		switch {
		case r.Primary == "":
			v.add(pp, "is required with mode mirror")
		case !slices.ContainsFunc(r.Targets, func(rt RouteTarget) bool { return rt.Name == r.Primary }):
			v.add(pp, "%q is not one of the route's targets", r.Primary)
		case others == 0:
			v.add(tp, "mode mirror needs at least one target besides the primary %q", r.Primary)
		}
	}
	only("sample_percent", r.SamplePercent != nil, ModeMirror)
	if sp := r.SamplePercent; sp != nil && !(*sp >= 0 && *sp <= 100) {
		v.add(p.key("sample_percent"), "must be from 0 to 100, not %v", *sp)
	}
	only("durable", r.Durable != nil, ModeMirror)

	switch r.OnFailure {
	case "":
	case "queue":
		only("on_failure", true, ModeAll, ModeSettled)
	default:
		v.add(p.key("on_failure"), "must be \"queue\" or left out, not %q", r.OnFailure)
	}
	if r.ContentType != "" && r.ContentType != "json" {
		v.add(p.key("content_type"), "must be \"json\" or left out, not %q", r.ContentType)
	}
	v.positive(p.key("deadline"), r.Deadline)
	// 0 in a Route built in code means the default (see the field).
	if bt := p.key("body_timeout"); r.BodyTimeout < 0 || v.inFile(bt) {
		v.positive(bt, r.BodyTimeout)
	}
	if r.MaxBody <= 0 {
		v.add(p.key("max_body"), "must be greater than 0, not %s", r.MaxBody)
	}
	if r.MaxResponseBody < 0 {
		v.add(p.key("max_response_body"), "must not be negative")
	}

	m := p.key("match")
	if !token(r.Match.Method) {
		v.add(m.key("method"), "%q is not a valid HTTP method", r.Match.Method)
	}
	if _, err := parsePath(r.Match.Path); err != nil {
		v.add(m.key("path"), "%v", err)
	}
	if r.Match.Host != "" {
		if err := checkHost(r.Match.Host); err != nil {
			v.add(m.key("host"), "%v", err)
		}
	}
}

// validName reports whether s is a valid target or route name: letters,
// digits, '_', '-' and '.'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// token reports whether s is an HTTP token (RFC 9110 §5.6.2), as methods
// and header names are.
func token(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", c) {
			return false
		}
	}
	return true
}

// headerValue reports whether s may be sent as a header value: no control
// characters but tab.
func headerValue(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f })
}
