package fanout

import "errors"

// Sentinel errors that stores and the core return; the HTTP edges map them
// to status codes in one place.
var (
	// ErrNotFound is returned when a message or delivery does not exist.
	ErrNotFound = errors.New("not found")
	// ErrStoreUnavailable wraps failures to reach or write the store; the
	// data plane answers 503 to them ("not stored").
	ErrStoreUnavailable = errors.New("store unavailable")
	// ErrInvalidMessage wraps a store's refusal of a message's content:
	// stored as it is, the message would fail again however often it is
	// retried (a value its columns cannot hold, steps that do not form a
	// valid list). It does not wrap ErrStoreUnavailable. A store that
	// returns it from Accept stored nothing of the batch; the committer
	// then commits the other messages without the refused one, and the
	// data plane answers that one 422 (docs/delivery.md).
	ErrInvalidMessage = errors.New("message cannot be stored")
	// ErrCircuitOpen is the error of an attempt not made because the
	// target's circuit breaker is open (ClassCircuitOpen).
	ErrCircuitOpen = errors.New("circuit open")
	// ErrRateLimited is the error of an attempt not made because the
	// target's egress budget had no room for it in time
	// (ClassRateLimited).
	ErrRateLimited = errors.New("egress rate limited")
	// ErrConflict is returned when a change does not fit the current
	// state: a subscription that cannot move to the state asked for, a
	// second subscription of a tenant to a route, a key name in use.
	ErrConflict = errors.New("conflict")
	// ErrClosed is returned by components used after Close.
	ErrClosed = errors.New("closed")
)
