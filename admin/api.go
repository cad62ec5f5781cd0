package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/fanouthq/fanout/upstream"
)

// The types below are the JSON bodies of the admin API, shared by the
// server and Client. Durations are Go duration strings ("1.5s", "10m0s");
// times are RFC 3339 in UTC.

// StatusResponse is the body of GET /healthz and of a ready GET /readyz.
type StatusResponse struct {
	// Status is "ok" (healthz) or "ready" (readyz).
	Status string `json:"status"`
}

// RoutesResponse is the body of GET /v1/routes.
type RoutesResponse struct {
	// Routes in the order of the config file.
	Routes []Route `json:"routes"`
}

// Route is a configured route as the admin API shows it.
type Route struct {
	Name    string        `json:"name"`
	Mode    string        `json:"mode"`
	Match   RouteMatch    `json:"match"`
	Targets []RouteTarget `json:"targets"`
	// Deadline bounds a sync request, retries included.
	Deadline        string   `json:"deadline,omitempty"`
	FailFast        bool     `json:"fail_fast,omitempty"`
	Require         int      `json:"require,omitempty"`
	ContentType     string   `json:"content_type,omitempty"`
	MaxBody         int64    `json:"max_body,omitempty"`          // bytes
	MaxResponseBody int64    `json:"max_response_body,omitempty"` // bytes
	Primary         string   `json:"primary,omitempty"`
	SamplePercent   *float64 `json:"sample_percent,omitempty"`
	HedgeAfter      string   `json:"hedge_after,omitempty"`
	Durable         *bool    `json:"durable,omitempty"`
	OnFailure       string   `json:"on_failure,omitempty"`
	// Steps are the calls of a steps route.
	Steps []RouteStep `json:"steps,omitempty"`
	// Respond names the step whose response a steps route returns.
	Respond string `json:"respond,omitempty"`
	Async   bool   `json:"async,omitempty"`
	// Auth is none, api_key or jwt; empty means none.
	Auth string `json:"auth,omitempty"`
	// Tenants allowed to call the route; empty means any.
	Tenants   []string        `json:"tenants,omitempty"`
	RateLimit *RouteRateLimit `json:"rate_limit,omitempty"`
	// Schema is the configured path of the route's JSON Schema.
	Schema string `json:"schema,omitempty"`
	// Lifecycle is where the route is in its life; nil means published
	// with nothing announced.
	Lifecycle *RouteLifecycle `json:"lifecycle,omitempty"`
}

// RouteLifecycle is a route's lifecycle as the admin API shows it.
type RouteLifecycle struct {
	// State is draft (upcoming: listed here, not served yet), published,
	// deprecated (served, with the deprecation headers) or retired (410).
	State string `json:"state"`
	// DeprecatedAt, Sunset (RFC 3339) and Link are as configured; empty
	// when unset.
	DeprecatedAt string `json:"deprecated_at,omitempty"`
	Sunset       string `json:"sunset,omitempty"`
	Link         string `json:"link,omitempty"`
}

// RouteStep is one call of a steps route. Header values and body
// templates are not shown: only header names, and whether a body
// template is set.
type RouteStep struct {
	Name   string   `json:"name"`
	Target string   `json:"target"`
	After  []string `json:"after,omitempty"`
	Method string   `json:"method,omitempty"`
	// Path is the URL template appended to the target URL.
	Path string `json:"path,omitempty"`
	// Headers are the names of the configured headers, sorted.
	Headers      []string `json:"headers,omitempty"`
	BodyTemplate bool     `json:"body_template,omitempty"`
	// Secret is the step's secret list as configured: JSON pointers and
	// header names of its response whose values are masked.
	Secret []string `json:"secret,omitempty"`
}

// RouteRateLimit is a route's token bucket.
type RouteRateLimit struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst,omitempty"`
}

// RouteMatch is what requests a route takes.
type RouteMatch struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Host   string `json:"host,omitempty"`
}

// RouteTarget is one target of a route.
type RouteTarget struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional,omitempty"`
	// BodyTemplate is whether a body template is set (its source is not
	// shown).
	BodyTemplate bool `json:"body_template,omitempty"`
}

// TargetsResponse is the body of GET /v1/targets.
type TargetsResponse struct {
	// Targets sorted by name.
	Targets []Target `json:"targets"`
}

// Target is a configured target as the admin API shows it. Configured
// header values are never shown: Headers maps each configured header name
// to RedactedValue. A password in the URL is redacted too.
type Target struct {
	Name        string            `json:"name"`
	URL         string            `json:"url"`
	Method      string            `json:"method,omitempty"` // empty: the inbound method
	Headers     map[string]string `json:"headers,omitempty"`
	Timeout     string            `json:"timeout,omitempty"`
	Retry       Retry             `json:"retry"`
	MaxInFlight int               `json:"max_in_flight,omitempty"`
	Redact      []string          `json:"redact,omitempty"`
	// Balance is the balancing policy: round_robin, least_requests or p2c.
	Balance string `json:"balance"`
	// InFlight counts the target's attempts in flight on this node.
	InFlight int64 `json:"in_flight"`
	// Servers are the target's servers (one for a target with url) and
	// their live state on this node.
	Servers []TargetServer `json:"servers"`
	// Circuit is the state of the circuit breaker; absent without one.
	Circuit *Circuit `json:"circuit,omitempty"`
	// RateLimit is the egress rate limit; absent without one.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// TargetServer is one server of a target with its live state.
type TargetServer struct {
	URL    string `json:"url"` // a password in it is redacted
	Weight int    `json:"weight"`
	Backup bool   `json:"backup,omitempty"`
	// Up: it takes attempts (healthy and not ejected).
	Up bool `json:"up"`
	// Healthy is the result of its last active health check (true
	// without one).
	Healthy bool `json:"healthy"`
	// Ejected: out after consecutive failures until EjectedUntil.
	Ejected             bool       `json:"ejected"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	ConsecutiveFailures int64      `json:"consecutive_failures"`
	InFlight            int64      `json:"in_flight"`
	// Attempts counts the attempts it was given since the process
	// started.
	Attempts uint64 `json:"attempts"`
}

// Circuit is a target's circuit breaker state.
type Circuit struct {
	// State is closed, open or half_open.
	State string `json:"state"`
	// OpenUntil is when an open circuit lets probes through.
	OpenUntil *time.Time `json:"open_until,omitempty"`
}

// RateLimit is a target's egress rate limit.
type RateLimit struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst"`
}

// Retry is a target's retry policy.
type Retry struct {
	Initial         string `json:"initial,omitempty"`
	Max             string `json:"max,omitempty"`
	MaxAttempts     int    `json:"max_attempts,omitempty"`
	MaxAge          string `json:"max_age,omitempty"`
	SyncMaxAttempts int    `json:"sync_max_attempts,omitempty"`
	RetryStatus     []int  `json:"retry_status,omitempty"`
	RetryAll4xx     bool   `json:"retry_all_4xx,omitempty"`
}

// ListParams filters GET /v1/messages. Empty fields do not filter.
type ListParams struct {
	Route  string
	Target string // messages with a delivery to this target
	Tenant string
	// State keeps messages with a delivery in this state (to Target when
	// Target is set): blocked, pending, delivering, retrying, succeeded,
	// dead or skipped.
	State string
	// Since and Until bound the receive time: RFC 3339, or a duration
	// ("90m", "2d") meaning that long before now. Since is inclusive,
	// Until exclusive.
	Since string
	Until string
	// Cursor is NextCursor of the previous page.
	Cursor string
	// Limit is the page size, 1 to 1000; 0 means the default (100).
	Limit int
}

// ListResponse is the body of GET /v1/messages: one page, newest first.
type ListResponse struct {
	Messages []Message `json:"messages"`
	// NextCursor fetches the next page; "" on the last page.
	NextCursor string `json:"next_cursor"`
}

// Message is a message without its headers and body, with its deliveries.
type Message struct {
	ID             string     `json:"id"`
	Route          string     `json:"route"`
	Tenant         string     `json:"tenant,omitempty"`
	Method         string     `json:"method"`
	Path           string     `json:"path"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	ReceivedAt     time.Time  `json:"received_at"`
	Deliveries     []Delivery `json:"deliveries"`
}

// Delivery is one message to one target.
type Delivery struct {
	ID     int64  `json:"id"`
	Target string `json:"target"`
	// Step and After are set on the deliveries of an async steps route:
	// the step's name and the steps it runs after.
	Step  string   `json:"step,omitempty"`
	After []string `json:"after,omitempty"`
	State string   `json:"state"` // a fanout.DeliveryState
	// Attempts counts the attempts made, across replays.
	Attempts int `json:"attempts"`
	// NextAttemptAt is when a pending or retrying delivery is due.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastClass     string     `json:"last_class,omitempty"` // a fanout.ErrorClass
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// The encodings of a body in MessageDetail and Attempt.
const (
	// EncodingJSON: the body is valid JSON, embedded as is.
	EncodingJSON = "json"
	// EncodingText: the body is UTF-8 text, embedded as a JSON string.
	EncodingText = "text"
	// EncodingBase64: the body is binary, embedded as a base64 (standard
	// encoding, padded) JSON string.
	EncodingBase64 = "base64"
)

// RedactedValue replaces the value of every secret header in answers.
const RedactedValue = upstream.Redacted

// MessageDetail is the body of GET /v1/messages/{id}: a message with its
// redacted headers, its body, its deliveries and its attempts.
type MessageDetail struct {
	Message
	// Headers are the kept inbound headers, secrets redacted.
	Headers http.Header `json:"headers"`
	// Body is the inbound body: JSON embedded as JSON, UTF-8 text as a
	// string, anything else as a base64 string, per BodyEncoding. Absent
	// when the body is empty.
	Body         json.RawMessage `json:"body,omitempty"`
	BodyEncoding string          `json:"body_encoding,omitempty"`
	// Attempts of every delivery, oldest first.
	Attempts []Attempt `json:"attempts"`
}

// Attempt is one HTTP exchange with a target.
type Attempt struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"delivery_id"`
	Target     string    `json:"target"`
	Number     int       `json:"number"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	// The outbound request; secret header values redacted.
	RequestMethod  string      `json:"request_method"`
	RequestURL     string      `json:"request_url"`
	RequestHeaders http.Header `json:"request_headers,omitempty"`
	// Status is 0 when no response arrived.
	Status          int         `json:"status,omitempty"`
	ResponseHeaders http.Header `json:"response_headers,omitempty"`
	// ResponseBody is the start of the response body: text, or base64
	// when ResponseBodyEncoding says so.
	ResponseBody         string `json:"response_body,omitempty"`
	ResponseBodyEncoding string `json:"response_body_encoding,omitempty"`
	// Class is empty for a successful attempt, else timeout, connect,
	// tls, status, canceled or other.
	Class string `json:"class,omitempty"`
	Error string `json:"error,omitempty"`
}

// ReplayFilter is the body of POST /v1/deliveries/replay: it selects the
// deliveries to replay. Empty fields do not filter.
type ReplayFilter struct {
	Route  string `json:"route,omitempty"`
	Target string `json:"target,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	// State of the deliveries to replay; default dead. Deliveries being
	// delivered cannot be replayed.
	State string `json:"state,omitempty"`
	// Since and Until bound the messages' receive time, as in ListParams.
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
}

// ReplayResponse is the body of the replay endpoints.
type ReplayResponse struct {
	// Replayed is how many deliveries were made due again.
	Replayed int `json:"replayed"`
}

// BackfillRequest is the body of POST /v1/routes/{name}/backfill.
type BackfillRequest struct {
	// Target is one of the route's targets. Required.
	Target string `json:"target"`
	// Since is the receive time of the first message to send, RFC 3339
	// or a duration before now. Required.
	Since string `json:"since"`
	// Until bounds the receive time (exclusive); default now.
	Until string `json:"until,omitempty"`
}

// BackfillResponse is the body of POST /v1/routes/{name}/backfill.
type BackfillResponse struct {
	// Queued is how many deliveries were added.
	Queued int `json:"queued"`
}

// SubscriptionRequest is the body of POST /v1/subscriptions.
type SubscriptionRequest struct {
	// Route is the route asked for; its access.subscription must be auto
	// or approval.
	Route string `json:"route"`
	// Note tells the operator why (at most 1000 bytes).
	Note string `json:"note,omitempty"`
	// Tenant is the tenant asked for, with the admin token only; a
	// tenant token asks for its own tenant.
	Tenant string `json:"tenant,omitempty"`
}

// DecisionRequest is the body of POST /v1/subscriptions/{id}/approve,
// /reject and /revoke.
type DecisionRequest struct {
	// Reason is kept with the decision and in the audit log (at most
	// 1000 bytes).
	Reason string `json:"reason,omitempty"`
}

// Subscription is a tenant's access to a route that needs one.
type Subscription struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Route  string `json:"route"`
	// State is pending, active, rejected or revoked.
	State       string     `json:"state"`
	Note        string     `json:"note,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
}

// SubscriptionsResponse is the body of GET /v1/subscriptions.
type SubscriptionsResponse struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// AuditEntry is one decision or key change.
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Actor is "admin" or "tenant:<name>".
	Actor string `json:"actor"`
	// Action is subscription.request, subscription.approve,
	// subscription.reject, subscription.revoke, key.create or key.revoke.
	Action string `json:"action"`
	// Subject is the id of the subscription or the key.
	Subject string `json:"subject"`
	Tenant  string `json:"tenant"`
	Route   string `json:"route,omitempty"`
	// Reason is the note, the reason or (key.create) the key's name.
	Reason string `json:"reason,omitempty"`
}

// AuditResponse is the body of GET /v1/audit.
type AuditResponse struct {
	Entries []AuditEntry `json:"entries"`
	// NextAfter is the after of the next page; 0 on the last page.
	NextAfter int64 `json:"next_after,omitempty"`
}

// KeyRequest is the body of POST /v1/keys.
type KeyRequest struct {
	// Name tells the tenant's keys apart: letters, digits, '_', '-', '.'.
	Name string `json:"name"`
	// ExpiresAt is when the key stops working, RFC 3339; "" never.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Tenant, with the admin token only; a tenant token makes its own.
	Tenant string `json:"tenant,omitempty"`
}

// Key is a self-service API key as listed: never the key itself.
type Key struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Prefix is the key's first characters.
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// NewKeyResponse is the body of POST /v1/keys: the key, shown this once.
type NewKeyResponse struct {
	Key
	// Secret is the API key to send (Authorization: Bearer or
	// X-Api-Key). It is not stored and cannot be shown again.
	Secret string `json:"key"`
}

// KeysResponse is the body of GET /v1/keys.
type KeysResponse struct {
	Keys []Key `json:"keys"`
}
