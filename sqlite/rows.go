package sqlite

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fanouthq/fanout"
)

// Conversions between the domain types and their columns, in one place.

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// millis is t in the stored form, Unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis is the stored form back as a UTC time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMillis is an optional stored time.
func nullMillis(ms sql.NullInt64) (time.Time, bool) {
	if !ms.Valid {
		return time.Time{}, false
	}
	return fromMillis(ms.Int64), true
}

// encodeHeader stores h as JSON (fanout.EncodeHeader: the bytes of a value
// that is not UTF-8 are kept too); a nil header is NULL.
func encodeHeader(h http.Header) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	if b, ok := appendHeaderJSON(nil, h); ok {
		return b, nil
	}
	return fanout.EncodeHeader(h)
}

// appendHeaderJSON appends h as json.Marshal writes it (keys sorted) when
// every name and value is plain printable ASCII that JSON needs no escape
// for, which covers nearly every header, without reflection; ok is false
// otherwise, and then the caller marshals h with encoding/json.
func appendHeaderJSON(b []byte, h http.Header) (_ []byte, ok bool) {
	var small [16]string
	keys := small[:0]
	size := 2
	for k, vs := range h {
		if !plainJSON(k) {
			return b, false
		}
		size += len(k) + 8
		for _, v := range vs {
			if !plainJSON(v) {
				return b, false
			}
			size += len(v) + 3
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = slices.Grow(b, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// plainJSON reports whether s is written as is inside a JSON string by
// encoding/json: printable ASCII other than the quote, the backslash and
// the characters it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e:
			return false
		case c == '"' || c == '\\' || c == '<' || c == '>' || c == '&':
			return false
		}
	}
	return true
}

// decodeHeader reverses encodeHeader.
func decodeHeader(b []byte) (http.Header, error) {
	if b == nil {
		return nil, nil
	}
	if h, ok := parseHeaderJSON(b); ok {
		return h, nil
	}
	return fanout.DecodeHeader(b)
}

// parseHeaderJSON parses what appendHeaderJSON writes, without reflection:
// an object of arrays of strings (or null), with no whitespace and only
// printable ASCII with no backslash. ok is false for anything else, which
// the caller then decodes with encoding/json; the result is the same.
func parseHeaderJSON(b []byte) (_ http.Header, ok bool) {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
	}
	// str reads a string at b[i] ('"' ... '"') and returns it and the
	// index after it.
	str := func(i int) (string, int, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", 0, false
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return "", 0, false
		}
		return string(b[i+1 : i+1+end]), i + end + 2, true
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, false
	}
	h := make(http.Header)
	i := 1
	if b[i] == '}' {
		return h, i+1 == len(b)
	}
	for {
		k, j, ok := str(i)
		if !ok || j >= len(b) || b[j] != ':' {
			return nil, false
		}
		i = j + 1
		switch {
		case bytes.HasPrefix(b[i:], []byte("null")):
			h[k] = nil
			i += 4
		case i < len(b) && b[i] == '[':
			i++
			vs := []string{}
			if i < len(b) && b[i] == ']' {
				i++
			} else {
				for {
					v, j, ok := str(i)
					if !ok || j >= len(b) {
						return nil, false
					}
					vs = append(vs, v)
					i = j + 1
					if b[j] == ']' {
						break
					}
					if b[j] != ',' {
						return nil, false
					}
				}
			}
			h[k] = vs
		default:
			return nil, false
		}
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return h, i+1 == len(b)
		default:
			return nil, false
		}
	}
}

// nonNil keeps an empty body an empty BLOB rather than NULL.
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
	receivedAt int64
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
	r.m.ReceivedAt = fromMillis(r.receivedAt)
	r.m.Body = emptyNil(r.m.Body)
	return nil
}

// deliveryRow receives deliveryColumns.
type deliveryRow struct {
	d                      *fanout.Delivery
	after, state, class    string
	next, created, updated int64
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
	r.d.NextAttemptAt = fromMillis(r.next)
	r.d.CreatedAt = fromMillis(r.created)
	r.d.UpdatedAt = fromMillis(r.updated)
}

// scanMessage reads messageColumns (or messageSummaryColumns).
func scanMessage(row scanner, m *fanout.Message) error {
	r := messageRow{m: m}
	if err := row.Scan(r.dest()...); err != nil {
		return err
	}
	return r.finish()
}

// scanDelivery reads deliveryColumns.
func scanDelivery(row scanner, d *fanout.Delivery) error {
	r := deliveryRow{d: d}
	if err := row.Scan(r.dest()...); err != nil {
		return err
	}
	r.finish()
	return nil
}

// scanLeased reads deliveryColumns followed by messageColumns.
func scanLeased(row scanner, l *fanout.LeasedDelivery) error {
	dr, mr := deliveryRow{d: &l.Delivery}, messageRow{m: &l.Message}
	if err := row.Scan(append(dr.dest(), mr.dest()...)...); err != nil {
		return err
	}
	dr.finish()
	return mr.finish()
}

// scanAttempt reads attemptColumns.
func scanAttempt(row scanner, a *fanout.Attempt) error {
	var started, durationUS int64
	var reqHeaders, respHeaders []byte
	var class string
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.MessageID, &a.Target, &a.Number, &started, &durationUS,
		&a.RequestMethod, &a.RequestURL, &reqHeaders, &a.Status, &respHeaders, &a.ResponseBody,
		&class, &a.Error); err != nil {
		return err
	}
	a.StartedAt = fromMillis(started)
	a.Duration = time.Duration(durationUS) * time.Microsecond
	a.Class = fanout.ErrorClass(class)
	a.ResponseBody = emptyNil(a.ResponseBody)
	var err error
	if a.RequestHeader, err = decodeHeader(reqHeaders); err != nil {
		return fmt.Errorf("attempt %d: request %w", a.ID, err)
	}
	if a.ResponseHeader, err = decodeHeader(respHeaders); err != nil {
		return fmt.Errorf("attempt %d: response %w", a.ID, err)
	}
	return nil
}
