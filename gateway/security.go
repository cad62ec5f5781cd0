package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/ratelimit"
	"github.com/fanouthq/fanout/schema"
	"github.com/fanouthq/fanout/upstream"
)

// This file wires inbound security into the request path (docs/security.md):
// authentication and the route's tenants, then the rate limit, both before
// the body is read; then the route's JSON Schema once it is.

// Log attribute keys of the security outcome.
const (
	keyTenant  = "tenant"
	keyAPIKey  = "key"
	keyRefused = "refused"
)

// Access is the access state decided at run time (package access
// provides it): the self-service API keys and the tenants' active
// subscriptions.
type Access interface {
	// LookupKey returns the identity of a self-service key that is valid
	// now.
	LookupKey(secret string) (auth.Identity, bool)
	// Subscribed reports whether tenant has an active subscription to
	// route.
	Subscribed(tenant, route string) bool
}

// tableSecurity is the security state of one compiled config.
type tableSecurity struct {
	keys   auth.KeyLookup // nil: no key at all (no config key, no Access)
	jwt    *auth.JWT      // nil: no jwt settings
	access Access         // nil: none
}

// keyChain looks a key up in the config's keys, then in the self-service
// keys.
type keyChain struct {
	config *auth.Keys // nil: none
	access Access     // nil: none
}

func (k keyChain) Lookup(key string) (auth.Identity, bool) {
	if k.config != nil {
		if id, ok := k.config.Lookup(key); ok {
			return id, true
		}
	}
	if k.access != nil {
		return k.access.LookupKey(key)
	}
	return auth.Identity{}, false
}

// routeSecurity is a route's compiled security settings.
type routeSecurity struct {
	guard *auth.Guard // nil: auth none
	// subscription: callers need their tenant's active subscription
	// (access.subscription auto or approval); access tells (nil: nobody
	// has one).
	subscription bool
	access       Access
	limit        *ratelimit.Limiter // nil: no rate limit
	schema       *schema.Schema     // nil: no schema
	// rps and burst are the limit's settings, to keep its buckets across
	// a reload that does not change them.
	rps   float64
	burst int
}

// newTableSecurity builds the key index and the JWT verifier of cfg.
func newTableSecurity(cfg *config.Config, log *slog.Logger, acc Access) (tableSecurity, error) {
	s := tableSecurity{access: acc}
	chain := keyChain{access: acc}
	if len(cfg.Tenants) > 0 {
		keys, err := auth.NewKeys(cfg.Tenants)
		if err != nil {
			return s, fmt.Errorf("tenants: %w", err)
		}
		chain.config = keys
	}
	if chain.config != nil || chain.access != nil {
		s.keys = chain
	}
	if cfg.JWT != nil {
		j, err := auth.NewJWT(cfg.JWT, auth.KeySetOptions{Logger: log})
		if err != nil {
			return s, err
		}
		s.jwt = j
	}
	return s, nil
}

// secureRoute compiles the security settings of rc into rt.
func (t *table) secureRoute(cfg *config.Config, rc *config.Route, rt *route) error {
	g, err := auth.NewGuard(rc.Auth, rc.Tenants, t.sec.keys, t.sec.jwt)
	if err != nil {
		return err
	}
	rt.sec.guard = g
	rt.sec.subscription, rt.sec.access = rc.NeedsSubscription(), t.sec.access
	if rl := rc.RateLimit; rl != nil {
		if !(rl.RPS > 0) {
			return fmt.Errorf("rate_limit: rps %v: want > 0", rl.RPS)
		}
		rt.sec.limit = ratelimit.New(rl.RPS, rl.Burst, ratelimit.Options{})
		rt.sec.rps, rt.sec.burst = rl.RPS, rl.Burst
	}
	if rc.Schema != "" {
		s := rc.CompiledSchema
		if s == nil {
			// A config built in code: compile it now.
			if s, err = schema.Compile(cfg.SchemaPath(rc)); err != nil {
				return fmt.Errorf("schema %s: %w", rc.Schema, err)
			}
		}
		rt.sec.schema = s
		rt.json = true // a schema implies a JSON body
	}
	return nil
}

// inherit carries state over from the table in force before a reload: the
// JWT key set when its URL is unchanged (no refetch), the rate limit
// buckets of routes whose name and limit are unchanged (a reload does not
// hand every caller a full bucket), and the default deprecation time of
// routes that stay deprecated.
func (t *table) inherit(old *table) {
	if old == nil {
		return
	}
	if t.sec.jwt != nil {
		t.sec.jwt.Reuse(old.sec.jwt)
	}
	prev := map[string]*ratelimit.Limiter{}
	prevRoute := map[string]*route{}
	old.router.each(func(rt *route) {
		if rt.sec.limit != nil {
			prev[rt.name] = rt.sec.limit
		}
		prevRoute[rt.name] = rt
	})
	t.router.each(func(rt *route) {
		if l := prev[rt.name]; l != nil && rt.sec.limit != nil && l.Same(rt.sec.rps, rt.sec.burst) {
			rt.sec.limit = l
		}
		if o := prevRoute[rt.name]; o != nil {
			inheritLifecycle(rt, o) // lifecycle.go
		}
	})
}

// authState is the outcome of inbound security for one request.
type authState struct {
	id     auth.Identity
	reason string // why it was refused, for the log
}

// admit authenticates the request, checks that its tenant may use the
// route, checks its Idempotency-Key and takes a token from its rate limit
// bucket. The credential
// header that authenticated it is dropped from the request, so that it is
// neither forwarded to the targets nor stored with the message.
func (c *call) admit() *apierror.Error {
	sec := &c.rt.sec
	if g := sec.guard; g != nil {
		id, err := g.Check(c.ctx, c.r.Header)
		if err != nil {
			var ae *auth.Error
			if !errors.As(err, &ae) {
				ae = &auth.Error{Status: http.StatusUnauthorized, Reason: err.Error(), Message: "the credential is not valid"}
			}
			c.auth.id, c.auth.reason = ae.Identity, ae.Reason
			return ae.APIError()
		}
		c.auth.id = id
		if id.Header != "" {
			r := *c.r
			r.Header = c.r.Header.Clone()
			delete(r.Header, id.Header)
			c.r = &r
		}
	}
	if sec.subscription && (sec.access == nil || !sec.access.Subscribed(c.auth.id.Tenant, c.rt.name)) {
		c.auth.reason = "no active subscription"
		return apierror.New(http.StatusForbidden, "subscription_required",
			"this route needs a subscription, and the caller's tenant has no active one: its tenant admin asks for one with POST /v1/subscriptions on the admin API (or in the dashboard's portal)").
			WithDetails(map[string]any{"route": c.rt.name, "tenant": c.auth.id.Tenant})
	}
	if aerr := checkIdempotencyKey(c.r.Header); aerr != nil {
		c.auth.reason = "invalid Idempotency-Key"
		return aerr
	}
	if l := sec.limit; l != nil {
		if ok, wait := l.Allow(c.auth.id.Principal()); !ok {
			secs := ratelimit.RetryAfterSeconds(wait)
			c.auth.reason = "rate limited"
			e := apierror.New(http.StatusTooManyRequests, "rate_limited",
				"too many requests for this route; retry after "+strconv.Itoa(secs)+"s").
				WithDetails(map[string]any{"retry_after_seconds": secs})
			e.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
			return e
		}
	}
	return nil
}

// validateBody checks the body against the route's JSON Schema: 422 with
// the failing places (JSON pointers) when it does not match.
func (c *call) validateBody() *apierror.Error {
	s := c.rt.sec.schema
	if s == nil {
		return nil
	}
	res, err := s.Validate(c.body)
	switch {
	case err != nil:
		return invalidJSON(c.body)
	case res == nil:
		return nil
	}
	details := map[string]any{"errors": res.Violations}
	if res.More > 0 {
		details["more"] = res.More
	}
	return apierror.New(http.StatusUnprocessableEntity, "schema_validation_failed",
		"the request body does not match the route's JSON Schema").WithDetails(details)
}

// maxIdempotencyKey is the longest Idempotency-Key accepted, in bytes, as
// Stripe and the IETF httpapi draft expect.
const maxIdempotencyKey = 255

// checkIdempotencyKey refuses, on every route, an Idempotency-Key that is
// not one header of 1 to maxIdempotencyKey printable ASCII bytes (0x20 to
// 0x7E; HTTP has already trimmed spaces at both ends, so a space can only
// be inside, as in the draft's quoted form "a b"). The key is stored with
// the message and compared byte for byte; a key no client library makes
// (not UTF-8, kilobytes long) is refused here, the same for every store,
// rather than by the store (docs/security.md).
func checkIdempotencyKey(h http.Header) *apierror.Error {
	vs, ok := h[upstream.HeaderIdempotencyKey]
	if !ok {
		return nil
	}
	invalid := func(why string) *apierror.Error {
		return apierror.New(http.StatusBadRequest, "invalid_idempotency_key",
			"the Idempotency-Key header "+why+"; it must be 1 to 255 printable ASCII characters").
			WithDetails(map[string]any{"max_length": maxIdempotencyKey})
	}
	if len(vs) != 1 {
		return invalid("is sent " + strconv.Itoa(len(vs)) + " times")
	}
	k := vs[0]
	switch {
	case k == "":
		return invalid("is empty")
	case len(k) > maxIdempotencyKey:
		return invalid("is " + strconv.Itoa(len(k)) + " bytes long")
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return invalid("holds the byte 0x" + strconv.FormatUint(uint64(k[i]), 16) + " at offset " + strconv.Itoa(i))
		}
	}
	return nil
}

// idempotencyKey is the key a message is deduplicated by. On a route with
// auth it is scoped to the caller's tenant ("acme/" + key, "/" + key
// without a tenant; tenant names hold no "/"), so that one tenant's key
// can neither suppress another tenant's message nor reveal its id.
func (c *call) idempotencyKey() string {
	k := c.r.Header.Get(upstream.HeaderIdempotencyKey)
	if k == "" || c.rt == nil || c.rt.sec.guard == nil {
		return k
	}
	return c.auth.id.Tenant + "/" + k
}

// appendAuthAttrs adds the caller's tenant and key name (never the key)
// and, for a refused request (401, 403, 429, 503), the reason to a log
// line.
func (c *call) appendAuthAttrs(attrs []slog.Attr) []slog.Attr {
	if t := c.auth.id.Tenant; t != "" {
		attrs = append(attrs, slog.String(keyTenant, t))
	}
	if k := c.auth.id.Key; k != "" {
		attrs = append(attrs, slog.String(keyAPIKey, k))
	}
	if c.auth.reason != "" {
		attrs = append(attrs, slog.String(keyRefused, c.auth.reason))
	}
	return attrs
}

// each calls f with every route of the router.
func (rr *router) each(f func(*route)) {
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil {
			return
		}
		for _, mr := range n.routes {
			f(mr.route)
		}
		for _, c := range n.lit {
			walk(c)
		}
		walk(n.param)
		walk(n.rest)
	}
	walk(rr.any)
	for _, n := range rr.hosts {
		walk(n)
	}
}
