package upstream

import (
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
)

// Header names set on every outbound request.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderMessageID      = "Fanout-Message-Id"
	HeaderAttempt        = "Fanout-Attempt"
	HeaderTarget         = "Fanout-Target"
	HeaderTraceparent    = "Traceparent"
	HeaderTracestate     = "Tracestate"
	HeaderForwardedFor   = "X-Forwarded-For"
	HeaderForwardedProto = "X-Forwarded-Proto"
	HeaderForwardedHost  = "X-Forwarded-Host"
)

// Redacted replaces the values of secret headers in Redact's copies.
const Redacted = "[REDACTED]"

// IsHopByHop reports whether the canonical header name k is a hop-by-hop
// header that a proxy must not forward (RFC 9110 §7.6.1): Connection,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding and Upgrade. Headers
// named by a Connection header are hop-by-hop too; see RemoveHopByHop.
func IsHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(k, "Proxy-")
}

// RemoveHopByHop deletes from h, in place, the hop-by-hop headers and the
// headers named by its Connection header.
func RemoveHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for k := range h {
		if IsHopByHop(textproto.CanonicalMIMEHeaderKey(k)) {
			delete(h, k)
		}
	}
}

// namedByConnection reports whether the header k is listed in one of the
// Connection header values conn.
func namedByConnection(k string, conn []string) bool {
	for _, v := range conn {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(name), k) {
				return true
			}
		}
	}
	return false
}

// skipForward reports whether the inbound header k is left out of an
// outbound request.
func skipForward(k string, conn []string) bool {
	switch k {
	case "Host", "Content-Length":
		return true
	}
	return IsHopByHop(k) || (conn != nil && namedByConnection(k, conn))
}

// ForwardedHeader returns a copy of the inbound header h without the
// hop-by-hop headers, Host and Content-Length, with X-Forwarded-For
// (appended), X-Forwarded-Proto, X-Forwarded-Host and a valid traceparent
// set from in. It is the header a message keeps for later delivery: a
// delivery worker that sends it with an empty Inbound forwards these values
// unchanged.
func ForwardedHeader(h http.Header, in Inbound) http.Header {
	out := make(http.Header, len(h)+4)
	conn := h["Connection"]
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if skipForward(ck, conn) {
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	if xff := forwardedFor(h, in.RemoteAddr); xff != "" {
		out[HeaderForwardedFor] = []string{xff}
	}
	if in.Proto != "" {
		out[HeaderForwardedProto] = []string{in.Proto}
	}
	if in.Host != "" {
		out[HeaderForwardedHost] = []string{in.Host}
	}
	tp, fresh := traceparentFor(h, in.Traceparent)
	out[HeaderTraceparent] = []string{tp}
	if fresh {
		delete(out, HeaderTracestate)
	}
	return out
}

// outboundHeader builds the header of one attempt of r. All values share
// one backing array, so that the whole header costs three allocations.
func outboundHeader(r *Request) http.Header {
	h, _ := appendOutboundHeader(nil, nil, r)
	return h
}

// headerBuf is the memory of one outbound header, reused across attempts
// whose caller does not keep the header (Request.DiscardRecord).
type headerBuf struct {
	h    http.Header
	vals []string
}

var headerBufPool = sync.Pool{New: func() any { return new(headerBuf) }}

// pooledOutboundHeader is outboundHeader into hb's memory: no allocation
// once hb has served a request of the same shape.
func pooledOutboundHeader(hb *headerBuf, r *Request) http.Header {
	if hb.h == nil {
		hb.h = make(http.Header, 16)
	}
	clear(hb.h)
	clear(hb.vals)
	hb.h, hb.vals = appendOutboundHeader(hb.h, hb.vals[:0], r)
	return hb.h
}

// appendOutboundHeader builds the header of r into h (nil: a new map),
// with the values in vals' array when it is large enough, and returns the
// array used.
func appendOutboundHeader(h http.Header, vals []string, r *Request) (http.Header, []string) {
	in := r.Header
	conn := in["Connection"]
	n := 0
	for _, vs := range in {
		n += len(vs)
	}
	var th map[string]string
	if r.Target != nil {
		th = r.Target.Headers
	}
	const own = 10 // the headers set below
	if need := n + len(th) + own; cap(vals) < need {
		vals = make([]string, 0, need)
	}
	if h == nil {
		h = make(http.Header, len(in)+len(th)+own)
	}

	for k, vs := range in {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if skipForward(ck, conn) || len(vs) == 0 {
			continue
		}
		// Encoding is negotiated by the transport in Exchange, which
		// reads the body itself (and must be able to embed it).
		if ck == "Accept-Encoding" && r.decodeBody {
			continue
		}
		start := len(vals)
		vals = append(vals, h[ck]...) // a non-canonical duplicate, rare
		vals = append(vals, vs...)
		h[ck] = vals[start:len(vals):len(vals)]
	}
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range th {
		set(textproto.CanonicalMIMEHeaderKey(k), v)
	}
	if r.MessageID != "" {
		set(HeaderIdempotencyKey, r.MessageID)
		set(HeaderMessageID, r.MessageID)
	}
	if r.IdempotencyKey != "" {
		set(HeaderIdempotencyKey, r.IdempotencyKey)
	}
	attempt := r.Attempt
	if attempt < 1 {
		attempt = 1
	}
	set(HeaderAttempt, strconv.Itoa(attempt))
	if r.Target != nil && r.Target.Name != "" {
		set(HeaderTarget, r.Target.Name)
	}
	if xff := forwardedFor(in, r.Inbound.RemoteAddr); xff != "" {
		set(HeaderForwardedFor, xff)
	}
	if r.Inbound.Proto != "" {
		set(HeaderForwardedProto, r.Inbound.Proto)
	}
	if r.Inbound.Host != "" {
		set(HeaderForwardedHost, r.Inbound.Host)
	}
	tp, fresh := traceparentFor(in, r.Inbound.Traceparent)
	set(HeaderTraceparent, tp)
	if fresh {
		delete(h, HeaderTracestate)
	}
	return h, vals
}

// forwardedFor returns the X-Forwarded-For value with the client address of
// remoteAddr appended to the earlier hops in h; the earlier value alone when
// remoteAddr is empty.
func forwardedFor(h http.Header, remoteAddr string) string {
	prior := h[HeaderForwardedFor]
	ip := remoteAddr
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		ip = host
	}
	switch {
	case ip == "" && len(prior) == 0:
		return ""
	case ip == "":
		return strings.Join(prior, ", ")
	case len(prior) == 0:
		return ip
	}
	return strings.Join(prior, ", ") + ", " + ip
}

// traceparentFor returns the traceparent to send: want if valid, else the
// one in h if valid, else a new one. dropState is true when h's
// traceparent is malformed or a new one is made: h's tracestate then
// belongs to no valid trace and is not passed on.
func traceparentFor(h http.Header, want string) (tp string, dropState bool) {
	var own string
	if vs := h[HeaderTraceparent]; len(vs) > 0 {
		own = vs[0]
	}
	ownValid := own != "" && len(h[HeaderTraceparent]) == 1 && ValidTraceparent(own)
	switch {
	case ValidTraceparent(want):
		return want, own != "" && !ownValid
	case ownValid:
		return own, false
	}
	return NewTraceparent(), true
}

// NewTraceparent returns a new W3C traceparent with a random trace id and
// parent id, flagged sampled so that downstream tracers record the trace
// Fanout started.
func NewTraceparent() string {
	var b [55]byte
	var id [24]byte
	for i := 0; i < 24; i += 8 {
		u := rand.Uint64()
		for j := range 8 {
			id[i+j] = byte(u >> (8 * j))
		}
	}
	// An all-zero id is invalid; the chance is 2^-64 per field, but make
	// it impossible.
	id[0] |= 1
	id[16] |= 1
	copy(b[:3], "00-")
	hex.Encode(b[3:35], id[:16])
	b[35] = '-'
	hex.Encode(b[36:52], id[16:])
	copy(b[52:], "-01")
	return string(b[:])
}

// ValidTraceparent reports whether s is a well-formed W3C traceparent
// (version 00, or a later version with the version 00 fields first).
func ValidTraceparent(s string) bool {
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return false
	}
	return lowerHex(s[:2]) && lowerHex(s[53:55]) &&
		lowerHex(s[3:35]) && !allZero(s[3:35]) &&
		lowerHex(s[36:52]) && !allZero(s[36:52])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// secretHeaders are always redacted.
var secretHeaders = [...]string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// IsSecretHeader reports whether the header k is redacted: one of
// Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key, or
// one of the extra names (case-insensitive).
func IsSecretHeader(k string, extra []string) bool {
	for _, s := range secretHeaders {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	for _, s := range extra {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

// Redact returns a copy of h in which the values of Authorization,
// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key and the extra header
// names (case-insensitive) are replaced by "[REDACTED]". It returns nil for
// a nil h.
func Redact(h http.Header, extra []string) http.Header {
	if h == nil {
		return nil
	}
	out := h.Clone()
	for k, vs := range out {
		if IsSecretHeader(k, extra) {
			red := make([]string, len(vs))
			for i := range red {
				red[i] = Redacted
			}
			out[k] = red
		}
	}
	return out
}

// redactIfNeeded returns h itself when it holds no secret header (nothing
// writes to an outbound header once sent), a redacted copy otherwise.
func redactIfNeeded(h http.Header, extra []string) http.Header {
	for k := range h {
		if IsSecretHeader(k, extra) {
			return Redact(h, extra)
		}
	}
	return h
}
