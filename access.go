package fanout

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/oklog/ulid/v2"
)

// AccessStore keeps what API management decides at run time, beside the
// config file: tenants' subscriptions to routes, the API keys tenants
// create for themselves, and the audit log of every decision and key
// change. sqlite and postgres implement it on the same database as
// their Store; storetest holds its contract.
//
// Every change writes its audit entry in the same transaction and moves
// the access version on, so that every node, polling AccessVersion, sees
// the change and reloads AccessSnapshot.
type AccessStore interface {
	// CreateSubscription records Tenant's request for Route: in State
	// (pending, or active for a route whose access is auto). A tenant has
	// at most one subscription per route: when it has one that is pending
	// or active the error wraps ErrConflict (and the subscription is
	// returned); one that was rejected or revoked is requested again, in
	// place, with the same id.
	CreateSubscription(ctx context.Context, p CreateSubscriptionParams) (Subscription, error)

	// GetSubscription returns a subscription, or ErrNotFound.
	GetSubscription(ctx context.Context, id string) (Subscription, error)

	// ListSubscriptions returns subscriptions, oldest first, filtered.
	ListSubscriptions(ctx context.Context, p ListSubscriptionsParams) ([]Subscription, error)

	// DecideSubscription moves a subscription to p.State: active
	// (approve; from pending, rejected or revoked), rejected (from
	// pending) or revoked (from active or pending). Any other move wraps
	// ErrConflict; an unknown id is ErrNotFound.
	DecideSubscription(ctx context.Context, p DecideSubscriptionParams) (Subscription, error)

	// CreateKey stores a new API key (its hash, never the key). A key
	// whose Name another key of the tenant that is not revoked has wraps
	// ErrConflict.
	CreateKey(ctx context.Context, p CreateKeyParams) error

	// ListKeys returns Tenant's keys (every tenant's when Tenant is ""),
	// oldest first, revoked ones included.
	ListKeys(ctx context.Context, tenant string) ([]APIKey, error)

	// RevokeKey revokes a key of p.Tenant (any tenant's when p.Tenant is
	// ""): ErrNotFound when there is none with that id, ErrConflict when
	// it is already revoked.
	RevokeKey(ctx context.Context, p RevokeKeyParams) (APIKey, error)

	// TouchKeys records when keys were last used, by key id. A time older
	// than the one stored is ignored. It is not audited and does not move
	// the access version.
	TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error

	// ListAudit returns audit entries, oldest first, filtered.
	ListAudit(ctx context.Context, p ListAuditParams) ([]AuditEntry, error)

	// AccessVersion returns a number that changes whenever a subscription
	// or a key does (every change except TouchKeys).
	AccessVersion(ctx context.Context) (int64, error)

	// AccessSnapshot returns, in one consistent read, the active
	// subscriptions, the keys that are not revoked (expired ones
	// included: expiry is checked when a key is used) and the version
	// they are at.
	AccessSnapshot(ctx context.Context) (AccessSnapshot, error)
}

// SubscriptionState is where a subscription is.
type SubscriptionState string

// The subscription states.
const (
	SubscriptionPending  SubscriptionState = "pending"
	SubscriptionActive   SubscriptionState = "active"
	SubscriptionRejected SubscriptionState = "rejected"
	SubscriptionRevoked  SubscriptionState = "revoked"
)

// Subscription is a tenant's access to a route that needs one.
type Subscription struct {
	ID     string // "sub_" and a ULID
	Tenant string
	Route  string
	State  SubscriptionState
	// Note is what the tenant wrote when it asked.
	Note string
	// Reason is the reason given with the last decision, "" when none.
	Reason string
	// DecidedBy is who made the last decision (an Actor), "" when none.
	DecidedBy   string
	RequestedAt time.Time // when last requested
	DecidedAt   time.Time // zero when undecided
}

// CreateSubscriptionParams is a tenant's request for a route.
type CreateSubscriptionParams struct {
	ID     string // NewSubscriptionID(); kept only when the request is new
	Tenant string
	Route  string
	Note   string
	// State is SubscriptionPending, or SubscriptionActive for a route
	// whose access is auto.
	State SubscriptionState
	Actor string // who asked: an Actor
	Now   time.Time
}

// ListSubscriptionsParams filters ListSubscriptions. Zero fields do not
// filter.
type ListSubscriptionsParams struct {
	Tenant string
	Route  string
	State  SubscriptionState
}

// DecideSubscriptionParams is an operator's decision on a subscription.
type DecideSubscriptionParams struct {
	ID     string
	State  SubscriptionState // active, rejected or revoked
	Reason string
	Actor  string
	Now    time.Time
}

// APIKey is a key a tenant created for itself. The key itself is shown
// once, when it is made, and never stored.
type APIKey struct {
	ID     string // "key_" and a ULID
	Tenant string
	Name   string
	// Prefix is the key's first characters, to tell keys apart.
	Prefix string
	// SHA256 is the hex SHA-256 of the key.
	SHA256     string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time // zero: never used (as far as recorded)
}

// Valid reports whether k authenticates a request at now: not revoked
// and not expired.
func (k APIKey) Valid(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// CreateKeyParams is a new key.
type CreateKeyParams struct {
	Key   APIKey // CreatedAt is the time of the change
	Actor string
}

// RevokeKeyParams revokes a key.
type RevokeKeyParams struct {
	ID     string
	Tenant string // "": any tenant's key
	Reason string
	Actor  string
	Now    time.Time
}

// AuditEntry is one decision or key change.
type AuditEntry struct {
	ID     int64 // increasing
	At     time.Time
	Actor  string // ActorAdmin or ActorTenant(name)
	Action string // one of the Audit* actions
	// Subject is the id of the subscription or key the entry is about.
	Subject string
	Tenant  string // the tenant the subject belongs to
	Route   string // the route of a subscription, "" for a key
	Reason  string // the reason or note given, "" when none
}

// The audit actions.
const (
	AuditSubscriptionRequest = "subscription.request"
	AuditSubscriptionApprove = "subscription.approve"
	AuditSubscriptionReject  = "subscription.reject"
	AuditSubscriptionRevoke  = "subscription.revoke"
	AuditKeyCreate           = "key.create"
	AuditKeyRevoke           = "key.revoke"
)

// ActorAdmin is the actor of a change made with the admin token.
const ActorAdmin = "admin"

// ActorTenant is the actor of a change made with tenant's admin token.
func ActorTenant(tenant string) string { return "tenant:" + tenant }

// ListAuditParams filters ListAudit. Zero fields do not filter.
type ListAuditParams struct {
	Since  time.Time // at or after
	Tenant string
	After  int64 // entries with a larger ID (a cursor)
	Limit  int   // default 100, at most 1000
}

// AccessSnapshot is the access state a node enforces.
type AccessSnapshot struct {
	Version       int64
	Subscriptions []Subscription // active only
	Keys          []APIKey       // not revoked
}

// NewSubscriptionID returns a new subscription id: "sub_" and a ULID.
func NewSubscriptionID() string { return "sub_" + ulid.MustNew(ulid.Now(), rand.Reader).String() }

// NewKeyID returns a new key id: "key_" and a ULID.
func NewKeyID() string { return "key_" + ulid.MustNew(ulid.Now(), rand.Reader).String() }

// CanMoveTo reports whether a subscription in s may be decided to: active
// from pending, rejected or revoked (approve, also an operator undoing a
// rejection or a revocation); rejected from pending; revoked from active
// or pending.
func (s SubscriptionState) CanMoveTo(to SubscriptionState) bool {
	switch to {
	case SubscriptionActive:
		return s == SubscriptionPending || s == SubscriptionRejected || s == SubscriptionRevoked
	case SubscriptionRejected:
		return s == SubscriptionPending
	case SubscriptionRevoked:
		return s == SubscriptionActive || s == SubscriptionPending
	}
	return false
}

// DecisionAction is the audit action of a decision that moves a
// subscription to to.
func DecisionAction(to SubscriptionState) string {
	switch to {
	case SubscriptionActive:
		return AuditSubscriptionApprove
	case SubscriptionRejected:
		return AuditSubscriptionReject
	}
	return AuditSubscriptionRevoke
}
