package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/config"
)

// Identity is who made a request.
type Identity struct {
	// Tenant is the caller's tenant: the tenant of its API key or the
	// tenant claim of its JWT; "" when unknown (auth none, or a JWT
	// without the claim).
	Tenant string
	// Key is the name of the API key used; "" for a JWT.
	Key string
	// Subject is the JWT's "sub" claim; "" for an API key.
	Subject string
	// Header is the canonical name of the header that carried the
	// credential, "" when there was none. The gateway drops it.
	Header string
}

// Principal names the caller for rate limits: the key ("key:acme/ci") for
// an API key, the tenant ("tenant:acme") for a JWT that has one, else the
// subject ("sub:…"), else "" (everyone shares one bucket).
func (id Identity) Principal() string {
	switch {
	case id.Key != "":
		return "key:" + id.Tenant + "/" + id.Key
	case id.Tenant != "":
		return "tenant:" + id.Tenant
	case id.Subject != "":
		return "sub:" + id.Subject
	}
	return ""
}

// Error is an authentication or authorization failure.
type Error struct {
	// Status is 401 (no valid credential), 403 (a valid credential whose
	// tenant may not use the route) or 503 (the JWT key set cannot be
	// fetched).
	Status int
	// Reason says why, for logs: short, without the credential.
	Reason string
	// Message is what the caller is told.
	Message string
	// Identity is who the caller is, for a 403.
	Identity Identity
	// invalidToken marks a credential that was present but refused
	// (RFC 6750 error="invalid_token").
	invalidToken bool
}

// Error returns the status and the reason, never the credential.
func (e *Error) Error() string { return fmt.Sprintf("auth: %d: %s", e.Status, e.Reason) }

// Realm is the realm of the WWW-Authenticate challenges.
const Realm = "fanout"

// APIError is e in the one error shape: 401 unauthorized with a
// WWW-Authenticate challenge, 403 forbidden, or 503 auth_unavailable with
// Retry-After.
func (e *Error) APIError() *apierror.Error {
	switch e.Status {
	case http.StatusForbidden:
		return apierror.Forbidden(e.Message)
	case http.StatusServiceUnavailable:
		ae := apierror.New(http.StatusServiceUnavailable, "auth_unavailable", e.Message)
		ae.Header = http.Header{"Retry-After": {strconv.Itoa(int(retryAfterFailure.Seconds()))}}
		return ae
	}
	ae := apierror.Unauthorized(e.Message)
	challenge := `Bearer realm="` + Realm + `"`
	if e.invalidToken {
		challenge += `, error="invalid_token"`
	}
	ae.Header = http.Header{"Www-Authenticate": {challenge}}
	return ae
}

func unauthorized(reason, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Reason: reason, Message: msg}
}

func invalid(reason, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Reason: reason, Message: msg, invalidToken: true}
}

// KeyLookup finds the identity of an API key: *Keys (the keys of the
// config file) is one, the gateway's chain of those and the self-service
// keys of the store (package access) another.
type KeyLookup interface {
	Lookup(key string) (Identity, bool)
}

// Guard applies one route's auth setting. It is immutable and safe for
// concurrent use.
type Guard struct {
	mode    config.AuthMode
	tenants map[string]bool // nil: any tenant
	keys    KeyLookup
	jwt     *JWT
}

// NewGuard returns the guard of a route with the given auth mode and
// allowed tenants (empty: any). keys is needed for api_key, jwt for jwt.
// It returns nil for mode none (or ""): nothing to check.
func NewGuard(mode config.AuthMode, tenants []string, keys KeyLookup, jwt *JWT) (*Guard, error) {
	g := &Guard{mode: mode, keys: keys, jwt: jwt}
	switch mode {
	case "", config.AuthNone:
		if len(tenants) > 0 {
			return nil, errors.New("tenants need auth api_key or jwt")
		}
		return nil, nil
	case config.AuthAPIKey:
		if keys == nil {
			return nil, errors.New("auth api_key: no keys")
		}
	case config.AuthJWT:
		if jwt == nil {
			return nil, errors.New("auth jwt: no jwt settings")
		}
	default:
		return nil, fmt.Errorf("unknown auth %q", mode)
	}
	if len(tenants) > 0 {
		g.tenants = make(map[string]bool, len(tenants))
		for _, t := range tenants {
			g.tenants[t] = true
		}
	}
	return g, nil
}

// Mode returns the guard's auth mode.
func (g *Guard) Mode() config.AuthMode { return g.mode }

// Check authenticates the request whose headers are h and checks that its
// tenant may use the route. A failure is an *Error.
func (g *Guard) Check(ctx context.Context, h http.Header) (Identity, error) {
	var (
		id  Identity
		err error
	)
	switch g.mode {
	case config.AuthAPIKey:
		id, err = g.apiKey(h)
	case config.AuthJWT:
		id, err = g.bearerJWT(ctx, h)
	}
	if err != nil {
		return Identity{}, err
	}
	if g.tenants != nil && !g.tenants[id.Tenant] {
		reason := "tenant " + strconv.Quote(id.Tenant) + " not allowed on the route"
		if id.Tenant == "" {
			reason = "the credential has no tenant"
		}
		return Identity{}, &Error{Status: http.StatusForbidden, Reason: reason, Identity: id,
			Message: "this credential may not use this route"}
	}
	return id, nil
}

func (g *Guard) apiKey(h http.Header) (Identity, error) {
	cred, err := APIKeyCredential(h)
	switch {
	case errors.Is(err, ErrNoCredential):
		return Identity{}, unauthorized("no API key",
			"this route requires an API key: send Authorization: Bearer <key> or X-Api-Key: <key>")
	case err != nil:
		return Identity{}, invalid("malformed API key header", "the API key header is malformed")
	}
	id, ok := g.keys.Lookup(cred.Value)
	if !ok {
		return Identity{}, invalid("unknown API key", "the API key is not valid")
	}
	id.Header = cred.Header
	return id, nil
}

func (g *Guard) bearerJWT(ctx context.Context, h http.Header) (Identity, error) {
	cred, err := BearerCredential(h)
	switch {
	case errors.Is(err, ErrNoCredential):
		return Identity{}, unauthorized("no bearer token",
			"this route requires a bearer token: send Authorization: Bearer <jwt>")
	case err != nil:
		return Identity{}, invalid("malformed Authorization header", "the Authorization header is malformed")
	}
	id, err := g.jwt.Verify(ctx, cred.Value)
	if err != nil {
		return Identity{}, err
	}
	id.Header = cred.Header
	return id, nil
}
