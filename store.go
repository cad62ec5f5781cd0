package fanout

import (
	"context"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/oklog/ulid/v2"
)

// Store keeps messages, deliveries and attempts durably. The durable queue,
// the data plane and the admin API all use it; sqlite and postgres implement
// it, and storetest holds the contract every implementation passes.
//
// Times are stored with at least millisecond precision and returned in UTC.
// Methods that change state take the current time in their params so that
// tests control the clock.
type Store interface {
	// Migrate applies the embedded migrations that have not run yet.
	Migrate(ctx context.Context) error

	// Accept stores each message with one pending delivery per target, all
	// in one transaction: when Accept returns nil every message is durable;
	// when it returns an error none is. A message whose IdempotencyKey
	// matches an earlier message of the same route received within its
	// DedupWindow is not stored again: its result carries the earlier id and
	// Replayed. Results are in the order of params. When a message of the
	// batch can never be stored as it is (invalid steps, a value the
	// engine cannot hold), the error wraps ErrInvalidMessage and not
	// ErrStoreUnavailable, so that the caller can commit the others
	// without it.
	Accept(ctx context.Context, params []AcceptParams) ([]AcceptResult, error)

	// Lease claims up to Limit deliveries of one target that are due: pending
	// or retrying with NextAttemptAt <= Now, or delivering with an expired
	// lease. Each leased delivery moves to delivering, its Attempts grows by
	// one, and it is owned by Owner until Now+LeaseFor. Oldest due first.
	// A step delivery comes with the stored responses of its message's
	// succeeded steps.
	Lease(ctx context.Context, params LeaseParams) ([]LeasedDelivery, error)

	// Complete records the attempts and moves the deliveries to their new
	// state, in one transaction. A delivery no longer leased by Owner (its
	// lease expired and another worker took it) is left alone and its
	// attempt is still recorded. A step that succeeds keeps its
	// StepResponse; the message's blocked steps whose every earlier step
	// has now succeeded become pending, and those after a dead step
	// skipped (see SettleSteps), in the same transaction.
	Complete(ctx context.Context, params []CompleteParams) error

	// ReleaseLeases gives back deliveries leased by Owner that were not
	// attempted (all of them when IDs is empty): they become due again and
	// their Attempts count drops by one. With IDs empty Owner is done: a
	// store that keeps Reclaim's heartbeats forgets Owner's.
	ReleaseLeases(ctx context.Context, params ReleaseParams) (int, error)

	// Reclaim records that Owner is alive and takes back the deliveries
	// leased by owners that are gone, processes that stopped without
	// giving their leases back (kill -9, a crash, a lost host), so that
	// they are delivered now rather than when their leases expire. A
	// delivery taken back is due again at once (retrying; pending if it
	// has no attempts) and keeps its Attempts: the attempt its owner was
	// making may have reached the target, so the next one counts from it,
	// as after a lease expiry. Owner's own leases are never taken back. It
	// returns how many deliveries it took back.
	//
	// Who is gone is the engine's to know, and documented with it (see
	// docs/operations.md): SQLite has one Store per file (Open locks it),
	// so the first Reclaim of a Store takes back every lease the file
	// holds and later calls find none; PostgreSQL takes back the leases
	// of Owner's Node's earlier owners (the node restarted) at once, and
	// those of any owner whose last Reclaim is older than DeadAfter.
	// Callers call it before they lease and then regularly, well within
	// DeadAfter: it is their heartbeat.
	Reclaim(ctx context.Context, params ReclaimParams) (int, error)

	// NextDue returns when the next delivery of target becomes leasable, and
	// false when the target has nothing left to deliver.
	NextDue(ctx context.Context, target string) (time.Time, bool, error)

	// GetMessage returns a message with its deliveries and attempts, or
	// ErrNotFound.
	GetMessage(ctx context.Context, id string) (MessageDetail, error)

	// ListMessages returns messages newest first, filtered, and the cursor
	// of the next page ("" on the last page).
	ListMessages(ctx context.Context, params ListMessagesParams) ([]MessageSummary, string, error)

	// Replay makes matching deliveries due again with a fresh attempt budget
	// (Attempts 0; their attempts so far move to AttemptsBefore, so that
	// attempt numbers count on) and returns how many. With MessageID set it returns ErrNotFound when
	// the message does not exist. Replayed steps are settled again: a step
	// whose earlier steps have not all succeeded waits blocked, and the
	// skipped steps after a replayed one wait for it.
	Replay(ctx context.Context, params ReplayParams) (int, error)

	// Backfill adds a pending delivery to Target for every message of Route
	// received in [Since, Until) that has none, and returns how many.
	Backfill(ctx context.Context, params BackfillParams) (int, error)

	// DeleteMessage removes a message with its deliveries and attempts, or
	// returns ErrNotFound.
	DeleteMessage(ctx context.Context, id string) error

	// Purge deletes messages whose deliveries all succeeded and that were
	// received before SucceededBefore, and forgets idempotency keys older
	// than KeysBefore. It returns the number of messages deleted.
	Purge(ctx context.Context, params PurgeParams) (int, error)

	// Backlog reports, per target with undelivered work, how many deliveries
	// are waiting (pending, retrying, delivering), how many are dead, and the
	// receive time of the oldest waiting message.
	Backlog(ctx context.Context) ([]TargetBacklog, error)

	// Close releases the store's resources.
	Close() error
}

// AcceptParams is one message to store with its deliveries.
type AcceptParams struct {
	Message Message
	// Targets get one pending delivery each, due at Message.ReceivedAt.
	Targets []string
	// Steps, for a message of an async steps route (instead of Targets),
	// get one delivery each: pending when it runs after no other step,
	// blocked otherwise. Their names are unique and After names only
	// steps of the list.
	Steps []AcceptStep
	// DedupWindow is how long Message.IdempotencyKey is remembered for the
	// route. Zero means the key is not checked.
	DedupWindow time.Duration
}

// AcceptResult is the outcome of one AcceptParams.
type AcceptResult struct {
	MessageID string
	// Replayed is true when an earlier message with the same route and
	// idempotency key was found; MessageID is then the earlier one's.
	Replayed bool
}

// LeaseParams selects deliveries to lease.
type LeaseParams struct {
	Target   string
	Owner    string
	Limit    int
	Now      time.Time
	LeaseFor time.Duration
}

// AcceptStep is one step of a message of an async steps route.
type AcceptStep struct {
	Name   string
	Target string
	After  []string
}

// LeasedDelivery is a delivery claimed by a worker, with its message.
type LeasedDelivery struct {
	Delivery Delivery
	Message  Message
	// Steps holds, for a step delivery, the responses of the message's
	// steps that succeeded, by step name; nil otherwise.
	Steps map[string]StepResponse
}

// StepResponse is what a step's target answered when it succeeded: the
// input of the steps after it.
type StepResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// CompleteParams records one attempt and the delivery's new state.
type CompleteParams struct {
	DeliveryID int64
	Owner      string
	Attempt    Attempt
	// State is StateSucceeded, StateRetrying or StateDead.
	State DeliveryState
	// NextAttemptAt is when a retrying delivery is due again.
	NextAttemptAt time.Time
	// Uncounted records the attempt without spending the delivery's
	// budget: Attempts goes back by one and AttemptsBefore on by one, so
	// that the next attempt has the next number but the same budget. The
	// delivery worker sets it for a failed probe of a half-open circuit,
	// which says the target is still down, not that the delivery failed.
	Uncounted bool
	Now       time.Time
	// Step is set for a step delivery: its message, and the response kept
	// for the steps after it when State is StateSucceeded.
	Step *StepCompletion
}

// StepCompletion is the step part of a CompleteParams.
type StepCompletion struct {
	MessageID string
	Response  StepResponse
}

// ReleaseParams gives leases back.
type ReleaseParams struct {
	Owner string
	IDs   []int64 // empty: every delivery leased by Owner
	Now   time.Time
}

// ReclaimParams is one heartbeat of a lease owner; see Store.Reclaim.
type ReclaimParams struct {
	// Owner is the caller, as it names itself in LeaseParams.
	Owner string
	// Node is the caller's identity that survives a restart; the owners
	// of its earlier runs are gone by definition. Empty: none.
	Node string
	// Now is the time of the heartbeat. Zero is the store's own clock:
	// PostgreSQL's server clock, one clock for every node.
	Now time.Time
	// DeadAfter is how long an owner may go without a Reclaim before the
	// others take its leases back. Zero keeps other owners' leases.
	DeadAfter time.Duration
}

// MessageDetail is a message with everything that happened to it.
type MessageDetail struct {
	Message    Message
	Deliveries []Delivery
	Attempts   []Attempt // oldest first
}

// MessageSummary is a message (without its body) and its deliveries.
type MessageSummary struct {
	Message    Message
	Deliveries []Delivery
}

// ListMessagesParams filters ListMessages. Zero fields do not filter.
type ListMessagesParams struct {
	Route  string
	Target string // messages with a delivery to this target
	Tenant string
	// State keeps messages with a delivery in this state (to Target when
	// Target is set).
	State  DeliveryState
	Since  time.Time // received at or after
	Until  time.Time // received before
	Cursor string    // from a previous page
	Limit  int       // default 100, at most 1000
}

// ReplayParams selects deliveries to replay. With MessageID set, every
// delivery of that message (to Target if set) that is not being delivered
// is replayed whatever its state; otherwise the filters select deliveries
// in State (default dead).
type ReplayParams struct {
	MessageID string
	Route     string
	Target    string
	Tenant    string
	State     DeliveryState
	Since     time.Time // message received at or after
	Until     time.Time // message received before
	Now       time.Time
}

// BackfillParams sends a route's past messages to a target.
type BackfillParams struct {
	Route  string
	Target string
	Since  time.Time
	Until  time.Time // zero: now
	Now    time.Time
}

// PurgeParams says what retention removes.
type PurgeParams struct {
	SucceededBefore time.Time
	KeysBefore      time.Time
}

// TargetBacklog is the undelivered work of one target.
type TargetBacklog struct {
	Target        string
	Waiting       int
	Dead          int
	OldestWaiting time.Time // zero when Waiting is 0
}

// NewMessageID returns a new time-sortable message id: "msg_" and a ULID.
func NewMessageID() string {
	return "msg_" + ulid.MustNew(ulid.Now(), rand.Reader).String()
}
