package queue

import (
	"io"
	"log/slog"
)

// Log attribute keys, snake_case, shared by every log line of the package.
const (
	keyRoute     = "route"
	keyTarget    = "target"
	keyMessageID = "message_id"
	keyDelivery  = "delivery_id"
	keyAttempt   = "attempt"
	keyClass     = "class"
	keyStatus    = "status"
	keyState     = "state"
	keyError     = "error"
	keyCount     = "count"
	keyOwner     = "owner"
)

// loggerOrDiscard returns l, or a logger that drops everything when l is nil.
func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
