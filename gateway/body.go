package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fanouthq/fanout/apierror"
)

// codeBodyTimeout is the error code of a body that did not arrive in time.
const codeBodyTimeout = "body_timeout"

// bodyDeadline gives the client until d after the start of the request
// (right after its headers were read) to send the whole body, with the
// connection's read deadline (docs/configuration.md, body_timeout): a
// client that trickles its body cannot hold a connection. A request
// without a body is left alone, and so is a ResponseWriter that cannot
// set deadlines (a test's recorder; net/http's HTTP/1 and HTTP/2 ones
// can).
func (c *call) bodyDeadline(d time.Duration) {
	r := c.r
	if c.readDeadline || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	c.readDeadline = http.NewResponseController(c.w).SetReadDeadline(c.start.Add(d)) == nil
}

// readBody reads the body into c.body. Once it is read, the read deadline
// is lifted: it must not end the request later, when the connection is
// read again to notice a client that leaves (net/http's HTTP/1 server
// lifts it too when the body ends; this does not depend on that). A body
// that missed its deadline is answered 408 with Connection: close, and
// counted.
func (c *call) readBody() *apierror.Error {
	body, aerr := readBody(c.w, c.r, c.rt)
	if aerr != nil {
		if aerr.Code == codeBodyTimeout {
			c.cut = true
			if h := c.g.hooks.OnBodyTimeout; h != nil {
				h(c.rt.name)
			}
		}
		return aerr
	}
	if c.readDeadline {
		_ = http.NewResponseController(c.w).SetReadDeadline(time.Time{})
	}
	c.body = body
	return nil
}

// readBody reads the inbound body once, up to the route's limit, and
// checks it against the route's content type. The returned slice is owned
// by the request: every target reads it, and async routes store it, so it
// is never pooled.
func readBody(w http.ResponseWriter, r *http.Request, rt *route) ([]byte, *apierror.Error) {
	if rt.json && !isJSONType(r.Header.Get("Content-Type")) {
		return nil, apierror.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"this route accepts application/json only").
			WithDetails(map[string]any{"content_type": r.Header.Get("Content-Type")})
	}
	if r.ContentLength > rt.maxBody {
		return nil, tooLarge(rt.maxBody)
	}
	var body []byte
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
	case r.ContentLength > 0:
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, bodyError(err, rt)
		}
	default: // unknown length: bounded by MaxBytesReader
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, rt.maxBody))
		if err == nil && buf.Len() > 0 {
			body = bytes.Clone(buf.Bytes())
		}
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
		if err != nil {
			return nil, bodyError(err, rt)
		}
	}
	if rt.json {
		if e := checkJSON(body); e != nil {
			return nil, e
		}
	}
	return body, nil
}

// checkJSON returns nil when body is JSON as RFC 8259 defines it, UTF-8
// included (encoding/json alone lets invalid UTF-8 inside strings
// through), and otherwise an invalid_json error with the byte offset.
func checkJSON(body []byte) *apierror.Error {
	if !json.Valid(body) {
		return invalidJSON(body)
	}
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return apierror.New(http.StatusBadRequest, "invalid_json",
		"the request body is not valid JSON: it is not UTF-8 (RFC 8259)").
		WithDetails(map[string]any{"offset": int64(off) + 1}) // as json.SyntaxError counts
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func tooLarge(limit int64) *apierror.Error {
	return apierror.New(http.StatusRequestEntityTooLarge, "payload_too_large",
		"the request body is larger than this route accepts").
		WithDetails(map[string]any{"limit": limit})
}

func bodyError(err error, rt *route) *apierror.Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(rt.maxBody)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The rest of the body is still on its way: the connection cannot
		// carry another request.
		e := apierror.New(http.StatusRequestTimeout, codeBodyTimeout,
			"the request body did not arrive within the route's body_timeout").
			WithDetails(map[string]any{"body_timeout": rt.bodyTimeout.String()})
		e.Header = http.Header{"Connection": {"close"}}
		return e
	}
	return apierror.New(http.StatusBadRequest, "bad_request", "the request body could not be read")
}

// invalidJSON describes why body is not JSON, with the byte offset.
func invalidJSON(body []byte) *apierror.Error {
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	details := map[string]any{"offset": int64(0)}
	msg := "the request body is not valid JSON"
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		msg = "the request body is empty; this route expects JSON"
	case errors.As(err, &se):
		details["offset"] = se.Offset
		msg += ": " + se.Error()
	}
	return apierror.New(http.StatusBadRequest, "invalid_json", msg).WithDetails(details)
}

// isJSONType reports whether the Content-Type value ct is JSON:
// application/json or any +json type, with or without parameters.
func isJSONType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if strings.EqualFold(ct, "application/json") {
		return true
	}
	slash := strings.IndexByte(ct, '/')
	return slash > 0 && len(ct) > slash+1+5 && strings.EqualFold(ct[len(ct)-5:], "+json")
}
