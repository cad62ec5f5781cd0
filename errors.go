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
	// ErrClosed is returned by components used after Close.
	ErrClosed = errors.New("closed")
)
