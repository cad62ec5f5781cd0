// Package apierror is the one error shape of every Fanout HTTP answer,
// data plane and admin API alike:
//
//	{"error":{"code":"payload_too_large","message":"…","details":{…}}}
//
// Handlers return *Error values (or wrap them); Write translates any error
// once, at the edge, and never leaks internal details of unknown errors.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fanouthq/fanout"
)

// Error is an error with an HTTP status and a stable code.
type Error struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	// Header is added to the response (Allow, Retry-After, …).
	Header http.Header `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// New returns an Error.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// WithDetails returns e with details set.
func (e *Error) WithDetails(d map[string]any) *Error { e.Details = d; return e }

// NotFound returns a 404 not_found Error. (fanout.ErrNotFound is the
// store's sentinel, which From turns into one of these.)
func NotFound(msg string) *Error { return New(http.StatusNotFound, "not_found", msg) }

// BadRequest returns a 400 bad_request Error.
func BadRequest(msg string) *Error { return New(http.StatusBadRequest, "bad_request", msg) }

// Unauthorized returns a 401 unauthorized Error.
func Unauthorized(msg string) *Error { return New(http.StatusUnauthorized, "unauthorized", msg) }

// Forbidden returns a 403 forbidden Error.
func Forbidden(msg string) *Error { return New(http.StatusForbidden, "forbidden", msg) }

// From converts any error into an *Error: an *Error found with errors.As is
// returned as is; fanout.ErrNotFound becomes 404, fanout.ErrInvalidMessage
// 422 message_not_storable, fanout.ErrStoreUnavailable 503; anything else is a 500 whose message says nothing internal.
func From(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, fanout.ErrNotFound):
		return New(http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, fanout.ErrInvalidMessage):
		return New(http.StatusUnprocessableEntity, "message_not_storable",
			"the message store refused this message; it was not stored, and sending it again as it is will not help")
	case errors.Is(err, fanout.ErrStoreUnavailable):
		return New(http.StatusServiceUnavailable, "store_unavailable", "the message store is unavailable; nothing was stored")
	default:
		return New(http.StatusInternalServerError, "internal", "internal error")
	}
}

// Write writes err in the one error shape.
func Write(w http.ResponseWriter, err error) {
	e := From(err)
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error *Error `json:"error"`
	}{e})
}
