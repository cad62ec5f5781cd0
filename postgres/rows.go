package postgres

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// Conversions between the domain types and their columns, in one place.

// stored is t as a timestamptz keeps it: microseconds, in UTC. Go times
// going into the database pass through it wherever Go code later compares
// them with times read back.
func stored(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// optTime is the stored form of an optional time: nil (NULL) when zero.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	st := stored(t)
	return &st
}

// fromOpt is a nullable timestamptz read back: UTC, and false when NULL.
func fromOpt(t *time.Time) (time.Time, bool) {
	if t == nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// encodeHeader stores h as JSON (fanout.EncodeHeader: the bytes of a value
// that is not UTF-8 are kept too); a nil header is NULL.
func encodeHeader(h http.Header) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	return fanout.EncodeHeader(h)
}

// decodeHeader reverses encodeHeader.
func decodeHeader(b []byte) (http.Header, error) {
	if b == nil {
		return nil, nil
	}
	return fanout.DecodeHeader(b)
}

// text is s as a text column can hold it: PostgreSQL refuses a NUL and
// bytes that are not UTF-8 in text, so each such byte (run) becomes
// U+FFFD. It is for what a target's answer can put into a column (an
// attempt's error, the URL a template built), so that no answer can make a
// completion fail (docs/security.md "What reaches the store").
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// nonNil keeps an empty body an empty bytea rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// emptyNil returns nil for an empty slice: bodies read back are nil when
// empty, whatever was stored.
func emptyNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// messageRow receives messageColumns.
type messageRow struct {
	m          *fanout.Message
	headers    []byte
	receivedAt time.Time
}

func (r *messageRow) dest() []any {
	m := r.m
	return []any{&m.ID, &m.Route, &m.Tenant, &m.Method, &m.Path, &r.headers, &m.Body,
		&m.IdempotencyKey, &r.receivedAt}
}

func (r *messageRow) finish() error {
	h, err := decodeHeader(r.headers)
	if err != nil {
		return fmt.Errorf("message %s: %w", r.m.ID, err)
	}
	r.m.Header = h
	r.m.ReceivedAt = r.receivedAt.UTC()
	r.m.Body = emptyNil(r.m.Body)
	return nil
}

// deliveryRow receives deliveryColumns.
type deliveryRow struct {
	d                      *fanout.Delivery
	after, state, class    string
	next, created, updated time.Time
}

func (r *deliveryRow) dest() []any {
	d := r.d
	return []any{&d.ID, &d.MessageID, &d.Route, &d.Target, &d.Step, &r.after, &r.state, &d.Attempts, &r.next,
		&d.LastStatus, &d.LastError, &r.class, &r.created, &r.updated, &d.AttemptsBefore}
}

func (r *deliveryRow) finish() {
	r.d.After = splitAfter(r.after)
	r.d.State = fanout.DeliveryState(r.state)
	r.d.LastClass = fanout.ErrorClass(r.class)
	r.d.NextAttemptAt = r.next.UTC()
	r.d.CreatedAt = r.created.UTC()
	r.d.UpdatedAt = r.updated.UTC()
}

// scanMessage reads messageColumns (or messageSummaryColumns).
func scanMessage(row pgx.CollectableRow) (fanout.Message, error) {
	var m fanout.Message
	r := messageRow{m: &m}
	if err := row.Scan(r.dest()...); err != nil {
		return m, err
	}
	return m, r.finish()
}

// scanDelivery reads deliveryColumns.
func scanDelivery(row pgx.CollectableRow) (fanout.Delivery, error) {
	var d fanout.Delivery
	r := deliveryRow{d: &d}
	if err := row.Scan(r.dest()...); err != nil {
		return d, err
	}
	r.finish()
	return d, nil
}

// scanLeased reads deliveryColumns followed by messageColumns.
func scanLeased(row pgx.CollectableRow) (fanout.LeasedDelivery, error) {
	var l fanout.LeasedDelivery
	dr, mr := deliveryRow{d: &l.Delivery}, messageRow{m: &l.Message}
	if err := row.Scan(append(dr.dest(), mr.dest()...)...); err != nil {
		return l, err
	}
	dr.finish()
	return l, mr.finish()
}

// scanAttempt reads attemptColumns.
func scanAttempt(row pgx.CollectableRow) (fanout.Attempt, error) {
	var a fanout.Attempt
	var started time.Time
	var durationUS int64
	var reqHeaders, respHeaders []byte
	var class string
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.MessageID, &a.Target, &a.Number, &started, &durationUS,
		&a.RequestMethod, &a.RequestURL, &reqHeaders, &a.Status, &respHeaders, &a.ResponseBody,
		&class, &a.Error); err != nil {
		return a, err
	}
	a.StartedAt = started.UTC()
	a.Duration = time.Duration(durationUS) * time.Microsecond
	a.Class = fanout.ErrorClass(class)
	a.ResponseBody = emptyNil(a.ResponseBody)
	var err error
	if a.RequestHeader, err = decodeHeader(reqHeaders); err != nil {
		return a, fmt.Errorf("attempt %d: request %w", a.ID, err)
	}
	if a.ResponseHeader, err = decodeHeader(respHeaders); err != nil {
		return a, fmt.Errorf("attempt %d: response %w", a.ID, err)
	}
	return a, nil
}
