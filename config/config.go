package config

import (
	"net/url"
	"time"

	"github.com/fanouthq/fanout/schema"
)

// Mode is how a route handles a request.
type Mode string

// The route modes. ModeSteps runs the route's Steps (a small DAG of
// dependent calls) instead of sending to Targets.
const (
	ModeAsync   Mode = "async"
	ModeAll     Mode = "all"
	ModeSettled Mode = "settled"
	ModeRace    Mode = "race"
	ModeMirror  Mode = "mirror"
	ModeSteps   Mode = "steps"
)

// Config is a whole Fanout configuration. Load and Parse return it with
// defaults applied, ${ENV} expanded and everything validated; treat it as
// read-only afterwards.
type Config struct {
	// File is the path the config was read from ("" for the demo).
	File string `yaml:"-"`

	// Listen is the data-plane address, host:port. Default ":8080".
	Listen string `yaml:"listen"`
	// Admin is the control-plane listener.
	Admin Admin `yaml:"admin"`
	// Store is where messages are kept.
	Store Store `yaml:"store"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Delivery holds process-wide settings of the durable queue.
	Delivery Delivery `yaml:"delivery"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight work.
	// Default 30s; must be > 0.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// Targets by name.
	Targets map[string]*Target `yaml:"targets"`
	// Routes in the order of the file. When two routes could match a
	// request the more specific wins (a host beats none; segment by
	// segment a literal beats "{name}", which beats "{name...}");
	// validation refuses identical matches.
	Routes []*Route `yaml:"routes"`

	// Tenants by name: their API keys and tenant admin tokens (see
	// security.go). Default none.
	Tenants map[string]*Tenant `yaml:"tenants"`
	// JWT validates the tokens of routes with auth: jwt. Default nil: no
	// route may use jwt.
	JWT *JWT `yaml:"jwt"`

	// pos is where each value was in the file, by field path, so that
	// Validate can name lines and columns. Nil for a Config built in code.
	pos positions
	// src is the file, so that warnings can point inside a value.
	src []byte
}

// Admin is the control-plane listener.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9090". Empty string
	// in the file keeps the default; "off" disables the admin listener.
	Listen string `yaml:"listen"`
	// Token is the bearer token the admin API requires. Empty: the admin
	// API (but not /healthz, /readyz, /metrics) answers 401 to everything.
	Token string `yaml:"token"`
	// Pprof mounts /debug/pprof/ on the admin listener. Default false.
	Pprof bool `yaml:"pprof"`
}

// Store selects the storage engine.
type Store struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the SQLite file path (default "fanout.db") or the PostgreSQL
	// connection URL.
	DSN string `yaml:"dsn"`
	// NodeID names this process among the nodes sharing a PostgreSQL
	// database, the same across its restarts, so that a restarted node
	// takes back its own leases at once (docs/operations.md). Default
	// "<hostname>:<port of listen>". Each node needs its own. Not used
	// with SQLite.
	NodeID string `yaml:"node_id"`
	// Timeout bounds how long an async request waits for the store to
	// commit its message (then 503 with Retry-After) and how long the
	// /readyz probe waits for the store to answer (then 503 not_ready).
	// Default 2s; must be > 0.
	Timeout Duration `yaml:"timeout"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json, text, or auto (default: text on a terminal, JSON
	// otherwise).
	Format string `yaml:"format"`
}

// Delivery holds settings of the durable queue.
type Delivery struct {
	// Retention is how long succeeded messages are kept. Default 168h (7d);
	// must be > 0.
	Retention Duration `yaml:"retention"`
	// DedupWindow is how long an Idempotency-Key is remembered per route.
	// Default 24h; must be > 0.
	DedupWindow Duration `yaml:"dedup_window"`
	// LeaseTimeout is how long a worker owns a delivery before another
	// process may take it over. Default 1m; it is raised to twice the
	// largest target timeout if that is longer.
	LeaseTimeout Duration `yaml:"lease_timeout"`
	// HeartbeatTimeout is how long a node sharing the store may miss its
	// heartbeats (one a second) before the others take back its leases
	// (docs/operations.md). Default 5s; must be at least 2s.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
}

// Target is one downstream API.
type Target struct {
	// Name is the key of the target in the targets map: letters, digits,
	// '_', '-' and '.'.
	Name string `yaml:"-"`
	// URL is the target's address: an absolute http or https URL. Required
	// unless Servers is set, and the one-server shorthand of Servers; with
	// Servers, Parse sets it to the first primary server's URL (records,
	// steps and the admin API name the target by it).
	URL string `yaml:"url"`
	// ParsedURL is URL parsed (set by Parse).
	ParsedURL *url.URL `yaml:"-"`
	// Servers are the target's servers when it has several (docs/configuration.md,
	// targets.<name>.servers): each an absolute http or https URL with a weight
	// and an optional backup flag. They share everything else of the
	// target. Default none: URL is the only server. Not with URL.
	Servers []*Server `yaml:"servers"`
	// Balance is how attempts are spread over the servers: round_robin
	// (smooth weighted; the default, also when empty), least_requests (fewest in flight
	// per weight) or p2c (the less busy of two picked at random).
	Balance string `yaml:"balance"`
	// Outlier is the passive health check: a server that fails
	// ConsecutiveFailures attempts in a row is ejected for a while.
	// Default nil: on, with the defaults of its fields (DefaultOutlier).
	Outlier *Outlier `yaml:"outlier"`
	// HealthCheck is the optional active health check of each server.
	// Default nil: none.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// CircuitBreaker stops attempts to a failing target for a while.
	// Default nil: none.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// RateLimit bounds the attempts per second to this target, sync and
	// durable together, on each node (a token bucket: rps, burst). Default
	// nil: no bound.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// FailureStatus lists the response statuses that count as a failure
	// of the server for Outlier and CircuitBreaker (connect errors,
	// timeouts and TLS failures always do). Nil (the default) means every
	// 5xx; an empty list counts no status.
	FailureStatus []int `yaml:"failure_status"`
	// Method overrides the outbound method (upper-cased by Parse). Default:
	// the inbound method.
	Method string `yaml:"method"`
	// Headers are added to every outbound request (values may use ${ENV}).
	Headers map[string]string `yaml:"headers"`
	// Auth is how Fanout authenticates to the target. Default: none.
	Auth *Auth `yaml:"auth"`
	// Timeout bounds one attempt (connect to last body byte). Default 10s;
	// must be > 0.
	Timeout Duration `yaml:"timeout"`
	// Retry is the retry policy.
	Retry Retry `yaml:"retry"`
	// MaxInFlight bounds concurrent async deliveries to this target.
	// Default 64; must be ≥ 1. Written in the file, it bounds the
	// attempts in flight of sync and durable traffic together, on each
	// node (SharedInFlight).
	MaxInFlight int `yaml:"max_in_flight"`
	// inFlightSet: MaxInFlight was written in the file.
	inFlightSet bool
	// Redact lists extra header names whose values never appear in logs,
	// attempts or the admin API (Authorization, Cookie, Set-Cookie and
	// X-Api-Key always are).
	Redact []string `yaml:"redact"`
	// HTTP1FastPath: false sends every request to this target through
	// net/http's transport instead of the HTTP/1.1 fast path. Default (nil):
	// the fast path takes the requests it can (docs/operations.md).
	HTTP1FastPath *bool `yaml:"http1_fast_path"`
}

// SharedInFlight is the bound on the attempts in flight to t, sync and
// durable together: MaxInFlight when the file sets max_in_flight, else 0
// (sync attempts are not bounded; durable ones by MaxInFlight, in the
// queue).
func (t *Target) SharedInFlight() int {
	if t.inFlightSet {
		return t.MaxInFlight
	}
	return 0
}

// SetSharedInFlight makes MaxInFlight bound sync and durable traffic
// together, as when the file sets max_in_flight (for configs built in
// code).
func (t *Target) SetSharedInFlight() { t.inFlightSet = true }

// The balance values of a target.
const (
	BalanceRoundRobin    = "round_robin"
	BalanceLeastRequests = "least_requests"
	BalanceP2C           = "p2c"
)

// Server is one server of a target.
type Server struct {
	// URL is the server's address: an absolute http or https URL.
	// Required. A step's path is joined to it as to a target's URL.
	URL string `yaml:"url"`
	// ParsedURL is URL parsed (set by Parse).
	ParsedURL *url.URL `yaml:"-"`
	// Weight is the server's share of attempts relative to the others.
	// Default 1; from 1 to 1000.
	Weight int `yaml:"weight"`
	// Backup servers take attempts only when no primary server is
	// available (ejected or failing its health check). Default false; a
	// target needs at least one primary server.
	Backup bool `yaml:"backup"`
}

// Outlier is a target's passive health check (outlier ejection).
type Outlier struct {
	// ConsecutiveFailures ejects a server after this many failed attempts
	// in a row (connect errors, timeouts, TLS failures, FailureStatus).
	// Default 5; 0 turns ejection off; at most 1000.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// EjectionTime is how long a first ejection lasts; it doubles with
	// each ejection in a row (one failure after an ejection ejects again)
	// up to MaxEjectionTime, and starts over after a success. Default
	// 10s; must be > 0.
	EjectionTime Duration `yaml:"ejection_time"`
	// MaxEjectionTime caps one ejection. Default 5m; must be ≥
	// EjectionTime.
	MaxEjectionTime Duration `yaml:"max_ejection_time"`
	// EjectLast ejects the last available server too (attempts then go
	// to the ejected servers anyway, as if none was). Default false: the
	// last available server is never ejected.
	EjectLast bool `yaml:"eject_last"`
}

// HealthCheck is a target's active health check: each server is asked
// Path every Interval; a server that fails gets no attempts until it
// passes again.
type HealthCheck struct {
	// Path is requested with GET on each server. Required; starts with /.
	Path string `yaml:"path"`
	// Interval is the time between two checks of a server. Default 10s;
	// must be > 0.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one check. Default 2s, or Interval when that is
	// shorter; must be > 0 and ≤ Interval.
	Timeout Duration `yaml:"timeout"`
	// ExpectStatus is the status that passes. Default 0: any 2xx.
	ExpectStatus int `yaml:"expect_status"`
}

// CircuitBreaker is a target's circuit breaker (docs/operations.md,
// "Resilient targets").
type CircuitBreaker struct {
	// Window is the rolling window over which FailureRatio is measured.
	// Default 10s; must be > 0.
	Window Duration `yaml:"window"`
	// MinRequests is how many attempts the window needs before
	// FailureRatio can open the circuit. Default 10; must be ≥ 1.
	MinRequests int `yaml:"min_requests"`
	// FailureRatio opens the circuit when this share of the window's
	// attempts failed. Default 0.5; more than 0, at most 1.
	FailureRatio float64 `yaml:"failure_ratio"`
	// ConsecutiveFailures opens the circuit after this many failed
	// attempts in a row, whatever the window says. Default 5; 0 turns it
	// off.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// OpenFor is how long the circuit stays open before it lets probes
	// through (half-open). Default 5s; must be > 0.
	OpenFor Duration `yaml:"open_for"`
	// Probes is how many attempts the half-open circuit lets through at
	// once; one success closes it, one failure opens it again. Default 1;
	// from 1 to 100.
	Probes int `yaml:"probes"`
}

// FastPath reports whether requests to t may take the HTTP/1.1 fast path
// (HTTP1FastPath unset or true).
func (t *Target) FastPath() bool { return t.HTTP1FastPath == nil || *t.HTTP1FastPath }

// Retry is a target's retry policy.
type Retry struct {
	// Initial is the first backoff. Default 1s; must be > 0 and ≤ Max.
	Initial Duration `yaml:"initial"`
	// Max caps one backoff. Default 1h; must be > 0.
	Max Duration `yaml:"max"`
	// MaxAttempts is the most attempts of one delivery, the first included.
	// Default 10 for async deliveries; sync modes use SyncMaxAttempts.
	// Must be ≥ 1.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge is how long after the message was received a delivery is
	// still tried. Default 24h; must be > 0.
	MaxAge Duration `yaml:"max_age"`
	// SyncMaxAttempts is the most attempts per target inside a sync
	// route's deadline. Default 3; must be ≥ 1.
	SyncMaxAttempts int `yaml:"sync_max_attempts"`
	// RetryStatus lists the statuses (100–599) that are retried. Nil (the
	// default) means 408, 425, 429 and every 5xx; an empty list retries no
	// status (connection errors and timeouts still are).
	RetryStatus []int `yaml:"retry_status"`
	// RetryAll4xx retries every 4xx too instead of declaring it dead.
	// Default false.
	RetryAll4xx bool `yaml:"retry_all_4xx"`
}

// Route says where requests come in and what happens to them.
type Route struct {
	// Name identifies the route in logs, metrics and the admin API.
	// Required, unique; letters, digits, '_', '-' and '.'.
	Name string `yaml:"name"`
	// Match selects requests.
	Match Match `yaml:"match"`
	// Mode is async, all, settled, race, mirror or steps. Required.
	Mode Mode `yaml:"mode"`
	// Targets lists the route's targets: names, or {name, optional,
	// body}. Required, each a key of Config.Targets, no duplicates; with
	// mode steps it must be empty (each step names its target).
	Targets []RouteTarget `yaml:"targets"`
	// Deadline bounds the whole request, retries included (sync modes).
	// Default 30s; must be > 0.
	Deadline Duration `yaml:"deadline"`
	// FailFast cancels the other targets on the first failure (all only).
	// Default false.
	FailFast bool `yaml:"fail_fast"`
	// Require is how many targets must succeed (all only), 1 to the number
	// of targets. Default 0: every target not marked optional.
	Require int `yaml:"require"`
	// ContentType "json" rejects other content types (415) and malformed
	// JSON (400). Default "" accepts anything.
	ContentType string `yaml:"content_type"`
	// MaxBody is the largest accepted body. Default 1MiB; must be > 0.
	MaxBody Size `yaml:"max_body"`
	// BodyTimeout bounds the time a client has to send the whole request
	// body, from when Fanout starts reading it; a body still arriving then
	// is answered 408 and its connection closed. Default: the route's
	// Deadline, or 30s with mode async; must be > 0.
	BodyTimeout Duration `yaml:"body_timeout"`
	// MaxResponseBody is how much of each target's response body the sync
	// envelope embeds before marking it truncated. Default 64KiB.
	MaxResponseBody Size `yaml:"max_response_body"`
	// Primary is the target whose response is returned (mirror only).
	// Required for mirror; one of Targets, and at least one other target
	// must be listed.
	Primary string `yaml:"primary"`
	// SamplePercent is the share of requests mirrored, 0–100 (mirror
	// only). Parse sets it to 100 on mirror routes that leave it out; it is
	// nil on other routes.
	SamplePercent *float64 `yaml:"sample_percent"`
	// HedgeAfter sends the next target only when the previous one has not
	// answered after this long (race only). Default 0: all at once.
	HedgeAfter Duration `yaml:"hedge_after"`
	// Durable sends mirror copies through the durable queue instead of
	// best-effort (mirror only). Parse sets it to true on mirror routes
	// that leave it out; it is nil on other routes.
	Durable *bool `yaml:"durable"`
	// OnFailure "queue" hands failed legs of all/settled to the durable
	// queue. Default "" (report only).
	OnFailure string `yaml:"on_failure"`

	// Steps are the calls of a steps route (steps only; required there,
	// and Targets must then be empty): see Step.
	Steps []*Step `yaml:"steps"`
	// Respond names the step whose response is proxied back when every
	// step succeeded (steps only). Default "": the envelope of every step.
	Respond string `yaml:"respond"`
	// Async runs a steps route through the durable queue, answering 202
	// (steps only). Default false. Not supported by this version: Parse
	// refuses true.
	Async bool `yaml:"async"`

	// Auth is how callers authenticate: none (default, also ""), api_key
	// or jwt.
	Auth AuthMode `yaml:"auth"`
	// Tenants lists the tenants allowed to call the route (auth api_key
	// or jwt). Default empty: any tenant with a valid credential.
	Tenants []string `yaml:"tenants"`
	// RateLimit is a token bucket per API key (auth api_key), per tenant
	// (auth jwt) or for the whole route (auth none), per node. Default nil:
	// no limit.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Schema is the path of a JSON Schema (2020-12 unless it says
	// otherwise) that request bodies must match (422 otherwise); relative
	// to the config file's directory. It implies content_type json.
	// Default "": no schema.
	Schema string `yaml:"schema"`
	// CompiledSchema is Schema compiled (set by Parse; a Route built in
	// code may leave it nil and the gateway compiles Schema itself).
	CompiledSchema *schema.Schema `yaml:"-"`

	// Lifecycle is where the route is in its life (lifecycle.go). Default:
	// published.
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Access says whether a tenant needs a subscription to call the route
	// (access.go). Default: no subscription needed.
	Access Access `yaml:"access"`
}

// Match selects the requests of a route.
type Match struct {
	// Method is the HTTP method, upper-cased by Parse. Default POST.
	Method string `yaml:"method"`
	// Path is the path pattern, starting with "/"; a segment is literal,
	// "{name}" (one segment) or, last, "{name...}" (the rest of the path).
	// Required.
	Path string `yaml:"path"`
	// Host restricts the route to one Host header: a host name or IP
	// address without scheme or port, lower-cased by Parse. Default "": any
	// host.
	Host string `yaml:"host"`
}

// RouteTarget is one target of a route.
type RouteTarget struct {
	// Name of a target in the targets map.
	Name string `yaml:"name"`
	// Optional targets may fail without failing the route (all only).
	Optional bool `yaml:"optional"`
	// Body is a template (see package template) whose output is sent to
	// this target instead of the inbound body, e.g.
	// '{"contact": {{ json .request.body }}}', in every mode (the durable
	// queue renders it when it delivers). Default "": the inbound body.
	Body string `yaml:"body"`
}

// Auth is how Fanout authenticates to a target. Exactly one field is set.
// Secrets come from the environment: write them as "${VAR}".
type Auth struct {
	// Bearer sends "Authorization: Bearer <token>".
	Bearer string `yaml:"bearer"`
	// Basic sends HTTP basic authentication.
	Basic *BasicAuth `yaml:"basic"`
	// APIKey sends a key in a header.
	APIKey *APIKeyAuth `yaml:"api_key"`
	// OAuth2ClientCredentials gets a token from an OAuth 2.0 token
	// endpoint (client credentials grant) and sends it as a bearer token.
	OAuth2ClientCredentials *OAuth2ClientCredentials `yaml:"oauth2_client_credentials"`
	// HMAC signs every request per the Standard Webhooks specification.
	HMAC *HMACAuth `yaml:"hmac"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	// Username is required.
	Username string `yaml:"username"`
	// Password may be empty.
	Password string `yaml:"password"`
}

// APIKeyAuth sends a key in a request header or a query parameter.
type APIKeyAuth struct {
	// Header is the header name. Default "X-Api-Key" when Query is not
	// set; set only one of Header and Query.
	Header string `yaml:"header"`
	// Query sends the key as this query parameter instead of a header
	// (for APIs that want ?api_key=…). Default "". The key is left out of
	// the URL recorded in attempts.
	Query string `yaml:"query"`
	// Value is the key. Required.
	Value string `yaml:"value"`
}

// OAuth2ClientCredentials is the OAuth 2.0 client credentials grant.
type OAuth2ClientCredentials struct {
	// TokenURL is the token endpoint, an absolute http or https URL.
	// Required.
	TokenURL string `yaml:"token_url"`
	// ClientID is required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is required.
	ClientSecret string `yaml:"client_secret"`
	// Scopes are requested with the token. Default none.
	Scopes []string `yaml:"scopes"`
}

// HMACAuth signs requests per the Standard Webhooks specification
// (webhook-id, webhook-timestamp and webhook-signature headers).
type HMACAuth struct {
	// StandardWebhooksSecret is the base64 signing secret, with or without
	// its "whsec_" prefix, or a list of them while a receiver rotates its
	// secret: each request then carries one signature per secret in
	// webhook-signature, space separated, and a receiver that knows any of
	// them accepts it. Required.
	StandardWebhooksSecret SecretList `yaml:"standard_webhooks_secret"`
}

// SecretList is one secret or several, written as a string or as a list
// of strings.
type SecretList []string

// Duration is a time.Duration written as "250ms", "5s", "1h30m" or "7d"
// (see ParseDuration).
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as 1024, "512KiB", "1MiB", "1MB" or "2GiB"
// (see ParseSize).
type Size int64

// Route returns the route named name, or nil.
func (c *Config) Route(name string) *Route {
	for _, r := range c.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}
