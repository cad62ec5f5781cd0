package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/fanouthq/fanout/apierror"
)

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
	if rt.json && !json.Valid(body) {
		return nil, invalidJSON(body)
	}
	return body, nil
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
	return apierror.New(http.StatusBadRequest, "bad_request", "the request body could not be read")
}

// invalidJSON describes why body is not JSON, with the byte offset.
func invalidJSON(body []byte) *apierror.Error {
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	details := map[string]any{"offset": 0}
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
