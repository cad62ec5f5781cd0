package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/ratelimit"
)

// Options configure a Server. Only Store is required.
type Options struct {
	// Store holds the messages the API manages.
	Store fanout.Store
	// Config returns the current configuration (it changes on hot
	// reload). Nil, or a nil result, means no routes and no targets.
	Config func() *config.Config
	// Token is the bearer token of every /v1 endpoint and /debug/pprof/.
	// Empty: they all answer 401.
	Token string
	// Ready reports readiness for GET /readyz. Nil: always ready.
	Ready func() bool
	// Notify wakes the delivery workers of a target after a replay or a
	// backfill made deliveries due. Nil: workers find them on their own.
	Notify func(target string)
	// Pprof mounts /debug/pprof/ (behind the token).
	Pprof bool
	// Logger receives errors and an audit line per change (replay,
	// backfill, delete). Nil: slog.Default().
	Logger *slog.Logger
	// Metrics is mounted at GET /metrics, without auth, when non-nil.
	Metrics http.Handler
	// Stats serves GET /v1/stats (behind the token) when non-nil; see
	// package stats.
	Stats http.Handler
	// StatsSeries serves GET /v1/stats/series (behind the token) when
	// non-nil: stats.SeriesHandler.
	StatsSeries http.Handler
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Targets returns the live state of the targets (servers, ejection,
	// circuit) for GET /v1/targets; upstream.Client.TargetStatus is one.
	// Nil: every server is shown up, with no circuit state.
	Targets func() []balance.TargetStatus
	// Access keeps subscriptions, self-service keys and the audit log
	// (the store, when it implements fanout.AccessStore). Nil: the
	// /v1/subscriptions, /v1/keys and /v1/audit endpoints are not mounted.
	Access fanout.AccessStore
	// AccessChanged is called after a change to Access, so that this
	// node's view of it reloads at once. Nil: nothing to tell.
	AccessChanged func()
}

// Server is the admin API. It is an http.Handler; create it with New.
type Server struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	tokenHash []byte // sha256 of Token; nil when Token is empty
	mux       *http.ServeMux
	keyLimit  *ratelimit.Limiter // key creation, per tenant (access.go)
}

// handlerFunc is an admin handler: it writes a success answer itself and
// returns an error for anything else, which serveError writes.
type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request) error

// endpoint is one row of the route table. The same table registers the
// mux and, in the tests, is checked against the OpenAPI document.
type endpoint struct {
	method string
	// path is the path as written in the OpenAPI document; a path ending
	// in "/" matches only itself (the mux pattern gets "{$}").
	path string
	// public endpoints need no bearer token.
	public bool
	handle handlerFunc
	// enabled reports whether the endpoint is mounted; nil means always.
	enabled func(o *Options) bool
}

// pattern is the ServeMux pattern of e.
func (e endpoint) pattern() string {
	p := e.path
	if strings.HasSuffix(p, "/") {
		p += "{$}"
	}
	return e.method + " " + p
}

func withPprof(o *Options) bool   { return o.Pprof }
func withMetrics(o *Options) bool { return o.Metrics != nil }
func withStats(o *Options) bool   { return o.Stats != nil }
func withSeries(o *Options) bool  { return o.StatsSeries != nil }

// endpoints is the admin API. Keep it in step with openapi.yaml: a test
// fails when they differ.
var endpoints = []endpoint{
	{method: http.MethodGet, path: "/healthz", public: true, handle: (*Server).healthz},
	{method: http.MethodGet, path: "/readyz", public: true, handle: (*Server).readyz},
	{method: http.MethodGet, path: "/openapi.json", public: true, handle: (*Server).openAPI},
	{method: http.MethodGet, path: "/metrics", public: true, handle: (*Server).metrics, enabled: withMetrics},

	{method: http.MethodGet, path: "/v1/routes", handle: (*Server).listRoutes},
	{method: http.MethodGet, path: "/v1/targets", handle: (*Server).listTargets},
	{method: http.MethodGet, path: "/v1/messages", handle: (*Server).listMessages},
	{method: http.MethodGet, path: "/v1/messages/{id}", handle: (*Server).getMessage},
	{method: http.MethodDelete, path: "/v1/messages/{id}", handle: (*Server).deleteMessage},
	{method: http.MethodPost, path: "/v1/messages/{id}/replay", handle: (*Server).replayMessage},
	{method: http.MethodPost, path: "/v1/deliveries/replay", handle: (*Server).replayDeliveries},
	{method: http.MethodPost, path: "/v1/routes/{name}/backfill", handle: (*Server).backfill},
	{method: http.MethodGet, path: "/v1/stats", handle: (*Server).stats, enabled: withStats},
	{method: http.MethodGet, path: "/v1/stats/series", handle: (*Server).statsSeries, enabled: withSeries},

	{method: http.MethodPost, path: "/v1/subscriptions", handle: (*Server).createSubscription, enabled: withAccess},
	{method: http.MethodGet, path: "/v1/subscriptions", handle: (*Server).listSubscriptions, enabled: withAccess},
	{method: http.MethodGet, path: "/v1/subscriptions/{id}", handle: (*Server).getSubscription, enabled: withAccess},
	{method: http.MethodPost, path: "/v1/subscriptions/{id}/approve", handle: (*Server).approveSubscription, enabled: withAccess},
	{method: http.MethodPost, path: "/v1/subscriptions/{id}/reject", handle: (*Server).rejectSubscription, enabled: withAccess},
	{method: http.MethodPost, path: "/v1/subscriptions/{id}/revoke", handle: (*Server).revokeSubscription, enabled: withAccess},
	{method: http.MethodGet, path: "/v1/audit", handle: (*Server).listAudit, enabled: withAccess},
	{method: http.MethodPost, path: "/v1/keys", handle: (*Server).createKey, enabled: withAccess},
	{method: http.MethodGet, path: "/v1/keys", handle: (*Server).listKeys, enabled: withAccess},
	{method: http.MethodDelete, path: "/v1/keys/{id}", handle: (*Server).revokeKey, enabled: withAccess},

	{method: http.MethodGet, path: "/debug/pprof/", handle: (*Server).pprofIndex, enabled: withPprof},
	{method: http.MethodGet, path: "/debug/pprof/{profile}", handle: (*Server).pprofProfile, enabled: withPprof},
	{method: http.MethodPost, path: "/debug/pprof/symbol", handle: (*Server).pprofProfile, enabled: withPprof},
}

// New returns the admin API handler.
func New(opts Options) *Server {
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		now:  opts.Now,
		mux:  http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.keyLimit = ratelimit.New(1/keyRefill.Seconds(), keyBurst, ratelimit.Options{Now: s.now})
	if opts.Token != "" {
		h := sha256.Sum256([]byte(opts.Token))
		s.tokenHash = h[:]
	}
	for _, e := range endpoints {
		if e.enabled != nil && !e.enabled(&s.opts) {
			continue
		}
		s.mux.Handle(e.pattern(), s.wrap(e))
	}
	return s
}

// ServeHTTP serves the admin API. Paths and methods it does not know get
// 404 and 405 (with Allow) in the error shape; under /v1/ and /debug/
// they need the token first, so that the API's shape is not probed
// anonymously.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	if isPrivatePath(r.URL.Path) && !s.authorized(r) {
		s.serveError(w, r, errUnauthorized())
		return
	}
	if allow := s.allowed(r); len(allow) > 0 {
		e := apierror.New(http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)).
			WithDetails(map[string]any{"allow": allow})
		e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
		s.serveError(w, r, e)
		return
	}
	s.serveError(w, r, apierror.New(http.StatusNotFound, "not_found",
		"no admin endpoint at "+r.URL.Path))
}

func isPrivatePath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || p == "/v1" || strings.HasPrefix(p, "/debug/")
}

// allowed returns the methods the mux accepts for r's path.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost,
		http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// wrap turns an endpoint into an http.Handler: it checks the token and
// writes the handler's error.
func (s *Server) wrap(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.public && !s.authorized(r) {
			// Not the admin token: perhaps a tenant's (tenant.go).
			var err error
			if r, err = s.tenantRequest(r, e); err != nil {
				s.serveError(w, r, err)
				return
			}
		}
		if err := e.handle(s, w, r); err != nil {
			s.serveError(w, r, err)
		}
	})
}

// authorized reports whether r carries the admin token. Both sides are
// hashed first so that the constant-time comparison does not leak the
// token's length either.
func (s *Server) authorized(r *http.Request) bool {
	if s.tokenHash == nil {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash) == 1
}

func errUnauthorized() *apierror.Error {
	e := apierror.Unauthorized("a valid admin token is required: Authorization: Bearer <token>")
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="fanout-admin"`}}
	return e
}

// serveError writes err in the error shape. Errors that are not already
// an *apierror.Error (store failures, bugs) are logged with their cause,
// which the answer never shows.
func (s *Server) serveError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierror.From(err)
	if !errors.As(err, new(*apierror.Error)) {
		// A failure, not a refusal: say what happened, here only.
		s.log.ErrorContext(r.Context(), "admin request failed",
			slog.String(keyMethod, r.Method),
			slog.String(keyPath, r.URL.Path),
			slog.Int(keyStatus, e.Status),
			slog.Any(keyError, err))
	}
	apierror.Write(w, e)
}

// Log attribute keys.
const (
	keyMethod  = "method"
	keyPath    = "path"
	keyStatus  = "status"
	keyError   = "error"
	keyMessage = "message_id"
	keyRoute   = "route"
	keyTarget  = "target"
	keyCount   = "count"
)

// writeJSON writes v as a JSON answer. It encodes first, so that an
// encoding failure is still a clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// config returns the current configuration, never nil.
func (s *Server) config() *config.Config {
	if s.opts.Config != nil {
		if c := s.opts.Config(); c != nil {
			return c
		}
	}
	return &config.Config{}
}

// notify wakes the workers of each target.
func (s *Server) notify(targets ...string) {
	if s.opts.Notify == nil {
		return
	}
	for _, t := range targets {
		s.opts.Notify(t)
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, StatusResponse{Status: "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) error {
	if s.opts.Ready != nil && !s.opts.Ready() {
		return apierror.New(http.StatusServiceUnavailable, "not_ready", "fanout is not ready to take traffic")
	}
	return writeJSON(w, http.StatusOK, StatusResponse{Status: "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	s.opts.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	s.opts.Stats.ServeHTTP(w, r)
	return nil
}

func (s *Server) statsSeries(w http.ResponseWriter, r *http.Request) error {
	s.opts.StatsSeries.ServeHTTP(w, r)
	return nil
}

func (s *Server) pprofIndex(w http.ResponseWriter, r *http.Request) error {
	pprof.Index(w, r)
	return nil
}

// pprofProfile serves /debug/pprof/{profile}: the four handlers that are
// not runtime profiles by name, and every runtime profile (heap,
// goroutine, …) through pprof.Index.
func (s *Server) pprofProfile(w http.ResponseWriter, r *http.Request) error {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
	return nil
}
