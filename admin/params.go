package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
)

// maxRequestBody bounds the JSON bodies the admin API reads.
const maxRequestBody = 64 << 10

// errParam is a 400 naming the query parameter or body field at fault.
func errParam(name, format string, args ...any) *apierror.Error {
	return apierror.New(http.StatusBadRequest, "invalid_parameter",
		fmt.Sprintf("%s: ", name)+fmt.Sprintf(format, args...)).
		WithDetails(map[string]any{"param": name})
}

// checkQuery refuses query parameters that are not in known, and repeated
// ones: a mistyped filter must not silently select everything.
func checkQuery(q url.Values, known ...string) error {
	for name, vs := range q {
		if !slices.Contains(known, name) {
			return errParam(name, "unknown query parameter (known: %s)", strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return errParam(name, "given %d times", len(vs))
		}
	}
	return nil
}

// parseTime reads a point in time: RFC 3339, or a positive duration
// ("90s", "15m", "1h30m", "7d") meaning that long before now. Empty is the
// zero time.
func parseTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	d, err := parseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, errParam(name, "want an RFC 3339 time (2006-01-02T15:04:05Z) or a positive duration before now (1h, 30m, 7d), got %q", v)
	}
	return now.Add(-d).UTC(), nil
}

// parseDuration is time.ParseDuration that also takes whole days ("7d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("bad day count %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// parseRange reads since and until and checks that since < until.
func parseRange(since, until string, now time.Time) (time.Time, time.Time, error) {
	s, err := parseTime("since", since, now)
	if err != nil {
		return s, s, err
	}
	u, err := parseTime("until", until, now)
	if err != nil {
		return s, u, err
	}
	if !s.IsZero() && !u.IsZero() && !s.Before(u) {
		return s, u, errParam("until", "must be after since")
	}
	return s, u, nil
}

// parseState reads a delivery state; empty stays empty.
func parseState(name, v string) (fanout.DeliveryState, error) {
	st := fanout.DeliveryState(v)
	if v != "" && !st.Valid() {
		return st, errParam(name, "unknown state %q (known: blocked, pending, delivering, retrying, succeeded, dead, skipped)", v)
	}
	return st, nil
}

// decodeBody reads a JSON body into v. Unknown fields are refused, for the
// same reason as unknown query parameters. An empty body leaves v as is.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil {
		var extra json.RawMessage
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return apierror.New(http.StatusBadRequest, "invalid_body", "the request body has data after its JSON value")
		}
		return nil
	}
	var (
		tooBig    *http.MaxBytesError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooBig):
		return apierror.New(http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("the request body is larger than %d bytes", maxRequestBody))
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return errParam(typeErr.Field, "want a JSON %s, got %s", typeErr.Type.Kind(), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errParam(field, "unknown field")
	case errors.As(err, &syntaxErr):
		return apierror.New(http.StatusBadRequest, "invalid_body",
			fmt.Sprintf("the request body is not valid JSON (offset %d)", syntaxErr.Offset))
	default:
		return apierror.New(http.StatusBadRequest, "invalid_body", "the request body is not a valid JSON object")
	}
}
