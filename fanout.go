package fanout

import (
	"net/http"
	"time"
)

// DeliveryState is where one delivery (one message to one target) stands.
type DeliveryState string

// The states of a delivery: pending → delivering → succeeded, or
// delivering → retrying → … → dead. A step of an async steps route that
// runs after other steps starts blocked, becomes pending once every step
// it runs after succeeded, and is skipped (for good, until a replay) when
// one of them is dead or skipped.
const (
	StateBlocked    DeliveryState = "blocked"
	StatePending    DeliveryState = "pending"
	StateDelivering DeliveryState = "delivering"
	StateRetrying   DeliveryState = "retrying"
	StateSucceeded  DeliveryState = "succeeded"
	StateDead       DeliveryState = "dead"
	StateSkipped    DeliveryState = "skipped"
)

// Valid reports whether s is one of the known states.
func (s DeliveryState) Valid() bool {
	switch s {
	case StateBlocked, StatePending, StateDelivering, StateRetrying, StateSucceeded, StateDead, StateSkipped:
		return true
	}
	return false
}

// ErrorClass says why an attempt failed.
type ErrorClass string

// The error classes (docs/modes.md). An empty class means the attempt got a
// response that counted as success.
const (
	ClassNone     ErrorClass = ""
	ClassTimeout  ErrorClass = "timeout"
	ClassConnect  ErrorClass = "connect"
	ClassTLS      ErrorClass = "tls"
	ClassStatus   ErrorClass = "status"
	ClassCanceled ErrorClass = "canceled"
	// ClassOther covers failures that fit no other class (a malformed
	// response, a request that could not be built).
	ClassOther ErrorClass = "other"
	// ClassTemplate is a call that was not made because one of its
	// templates (a step's path, headers or body, a route target's body)
	// failed to render.
	ClassTemplate ErrorClass = "template"
	// ClassSkipped is a step that did not run because a step it runs
	// after failed.
	ClassSkipped ErrorClass = "skipped"
	// ClassCircuitOpen is an attempt that was not made because the
	// target's circuit breaker is open (or half-open with its probes
	// taken): it failed at once (docs/operations.md).
	ClassCircuitOpen ErrorClass = "circuit_open"
	// ClassRateLimited is a sync attempt that was not made because the
	// target's egress budget (rate_limit, max_in_flight) had no room for
	// it within the request's deadline.
	ClassRateLimited ErrorClass = "rate_limited"
)

// Message is one accepted inbound request.
type Message struct {
	ID             string      // "msg_" + ULID, time-sortable
	Route          string      // route name from config
	Tenant         string      // empty when the route has no tenants
	Method         string      // inbound method
	Path           string      // inbound path with query, as received
	Header         http.Header // inbound headers kept for delivery (hop-by-hop removed)
	Body           []byte
	IdempotencyKey string // empty when the client sent none
	ReceivedAt     time.Time
}

// Delivery is one message to one target.
type Delivery struct {
	ID        int64
	MessageID string
	Route     string
	Target    string
	// Step is the step's name for a delivery of an async steps route, ""
	// otherwise; After lists the steps it runs after.
	Step  string
	After []string
	State DeliveryState
	// Attempts counts the attempts of the current run: the retry budget
	// (max_attempts) applies to it, and a replay sets it to 0.
	Attempts int
	// AttemptsBefore counts the attempts made before the last replay. The
	// number of an attempt (Fanout-Attempt, Attempt.Number) is
	// AttemptsBefore + Attempts: it keeps counting across replays
	// (docs/delivery.md).
	AttemptsBefore int
	NextAttemptAt  time.Time // when the delivery is due (pending, retrying)
	LastStatus     int       // HTTP status of the last attempt, 0 if none
	LastError      string    // error of the last failed attempt
	LastClass      ErrorClass
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// AttemptNumber is the number of the delivery's last attempt, counted
// across replays: AttemptsBefore + Attempts.
func (d Delivery) AttemptNumber() int { return d.AttemptsBefore + d.Attempts }

// Attempt is one HTTP exchange with a target.
type Attempt struct {
	ID             int64
	DeliveryID     int64
	MessageID      string
	Target         string
	Number         int // 1-based attempt number of the delivery
	StartedAt      time.Time
	Duration       time.Duration
	RequestMethod  string
	RequestURL     string
	RequestHeader  http.Header // secrets already redacted
	Status         int         // 0 when no response arrived
	ResponseHeader http.Header
	ResponseBody   []byte // truncated to the first KiB
	Class          ErrorClass
	Error          string
}
