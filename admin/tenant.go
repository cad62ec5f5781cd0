package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/config"
)

// Tenant-scoped admin tokens (config tenants.<name>.admin_token_sha256):
// a tenant's token reaches only the message endpoints, and through them
// only the tenant's messages. Another tenant's message is "not found",
// exactly like a message that does not exist, so a tenant learns nothing
// of the others.

// tenantEndpoints are the endpoints a tenant admin token may call, by
// ServeMux pattern.
var tenantEndpoints = map[string]bool{
	"GET /v1/messages":              true,
	"GET /v1/messages/{id}":         true,
	"DELETE /v1/messages/{id}":      true,
	"POST /v1/messages/{id}/replay": true,
	"POST /v1/deliveries/replay":    true,
	// Access (access.go): a tenant asks for subscriptions and manages its
	// own keys; only the admin token decides.
	"POST /v1/subscriptions":     true,
	"GET /v1/subscriptions":      true,
	"GET /v1/subscriptions/{id}": true,
	"GET /v1/audit":              true,
	"POST /v1/keys":              true,
	"GET /v1/keys":               true,
	"DELETE /v1/keys/{id}":       true,
}

// scopeKey is the context key of the tenant a request is limited to.
type scopeKey struct{}

// tenantScope returns the tenant r's token is limited to, "" for the
// admin token (every tenant).
func tenantScope(r *http.Request) string {
	t, _ := r.Context().Value(scopeKey{}).(string)
	return t
}

// tenantRequest admits a request that does not carry the admin token when
// it carries a tenant's admin token and e is open to tenants: it returns r
// limited to that tenant. Otherwise it returns 401, or 403 for a tenant
// token on an endpoint of the operator.
func (s *Server) tenantRequest(r *http.Request, e endpoint) (*http.Request, error) {
	tenant, ok := s.tenantToken(r)
	switch {
	case !ok:
		return r, errUnauthorized()
	case !tenantEndpoints[e.pattern()]:
		return r, apierror.Forbidden("a tenant admin token may only manage its tenant's messages, subscription requests and keys; decisions need the admin token")
	}
	return r.WithContext(context.WithValue(r.Context(), scopeKey{}, tenant)), nil
}

// tenantToken returns the tenant whose admin token r carries.
func (s *Server) tenantToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", false
	}
	name := TenantOfToken(s.config(), token)
	return name, name != ""
}

// TenantOfToken returns the tenant of cfg whose admin token is token, ""
// when none. The token is hashed once and compared with every tenant's
// hash in constant time.
func TenantOfToken(cfg *config.Config, token string) string {
	sum := sha256.Sum256([]byte(token))
	found := ""
	for name, t := range cfg.Tenants {
		if t == nil || t.AdminTokenSHA256 == "" {
			continue
		}
		want, err := hex.DecodeString(t.AdminTokenSHA256)
		if err != nil || len(want) != sha256.Size {
			continue
		}
		if subtle.ConstantTimeCompare(want, sum[:]) == 1 {
			found = name
		}
	}
	return found
}

// tenantFilter returns the tenant a listing or a bulk replay is limited
// to: the one asked for, or, for a tenant token, its own tenant (asking
// for another is refused).
func tenantFilter(r *http.Request, asked string) (string, error) {
	scope := tenantScope(r)
	switch {
	case scope == "":
		return asked, nil
	case asked != "" && asked != scope:
		return "", apierror.Forbidden("this token sees only the messages of tenant " + scope).
			WithDetails(map[string]any{"tenant": asked})
	}
	return scope, nil
}

// visible reports whether r may see m: always with the admin token, only
// its own tenant's messages with a tenant token.
func visible(r *http.Request, m fanout.Message) bool {
	scope := tenantScope(r)
	return scope == "" || m.Tenant == scope
}
