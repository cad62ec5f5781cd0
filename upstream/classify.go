package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// Defaults applied when a config value is zero (config.Load fills them in;
// a hand-built config may not).
const (
	// DefaultTimeout is the per-attempt timeout of a target without one.
	DefaultTimeout = 10 * time.Second
	// DefaultBackoffInitial is the first backoff of a policy without one.
	DefaultBackoffInitial = time.Second
	// DefaultBackoffMax caps the backoff of a policy without a Max.
	DefaultBackoffMax = time.Hour
)

// StatusError is the error of an attempt that got a response whose status
// is not a success.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string {
	return "unexpected status " + strconv.Itoa(e.Status)
}

// errBuild marks errors raised before anything was sent (a request that
// could not be built); they are never retried.
var errBuild = errors.New("build request")

// IsSuccess reports whether status counts as a successful delivery: 2xx.
func IsSuccess(status int) bool { return status >= 200 && status <= 299 }

// Classify says why an attempt failed: ClassStatus for a *StatusError,
// ClassCircuitOpen and ClassRateLimited for an attempt the target's state
// refused (fanout.ErrCircuitOpen, fanout.ErrRateLimited),
// ClassCanceled when the caller's context was canceled, ClassTimeout for a
// deadline or a network timeout, ClassTLS for handshake and certificate
// failures, ClassConnect for failures to reach the target or connections
// lost before the response was complete, ClassOther for the rest. It
// returns ClassNone for a nil error.
func Classify(err error) fanout.ErrorClass {
	if err == nil {
		return fanout.ClassNone
	}
	var se *StatusError
	if errors.As(err, &se) {
		return fanout.ClassStatus
	}
	switch {
	case errors.Is(err, fanout.ErrCircuitOpen):
		return fanout.ClassCircuitOpen
	case errors.Is(err, fanout.ErrRateLimited):
		return fanout.ClassRateLimited
	}
	if errors.Is(err, context.Canceled) {
		return fanout.ClassCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fanout.ClassTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fanout.ClassTimeout
	}
	if isTLS(err) {
		return fanout.ClassTLS
	}
	if headerTooLarge(err) {
		return fanout.ClassOther // a malformed answer, however it arrived
	}
	if isConnect(err) {
		return fanout.ClassConnect
	}
	return fanout.ClassOther
}

func isTLS(err error) bool {
	var (
		cve  *tls.CertificateVerificationError
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		uae  x509.UnknownAuthorityError
		he   x509.HostnameError
		cie  x509.CertificateInvalidError
		ech  *tls.ECHRejectionError
		oe   *net.OpError
		errs = []any{&cve, &rhe, &ae, &uae, &he, &cie, &ech}
	)
	for _, target := range errs {
		if errors.As(err, target) {
			return true
		}
	}
	// Alerts sent by the peer or raised locally during the handshake.
	if errors.As(err, &oe) && (oe.Op == "remote error" || oe.Op == "local error") {
		return true
	}
	return strings.Contains(err.Error(), "tls: ")
}

// headerTooLarge: the target's status line and headers passed the 1 MiB
// bound, on the fast path or (an error with no sentinel, wrapped in
// "connection broken") on the transport.
func headerTooLarge(err error) bool {
	return errors.Is(err, errHeaderTooLarge) ||
		strings.Contains(err.Error(), "server response headers exceeded")
}

func isConnect(err error) bool {
	var (
		dns *net.DNSError
		oe  *net.OpError
	)
	switch {
	case errors.As(err, &dns),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &oe):
		return true
	}
	// Transport errors about a lost connection carry no sentinel.
	msg := err.Error()
	return strings.Contains(msg, "server closed idle connection") ||
		strings.Contains(msg, "connection broken") ||
		strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "connection refused")
}

// Retryable reports whether an attempt that ended with class (and, for
// ClassStatus, status) is tried again under policy p (docs/delivery.md): connection
// errors, TLS failures, timeouts and malformed responses are; a canceled
// attempt and a request that could not be built are not; statuses follow
// p.RetryStatus (default 408, 425, 429 and 5xx), plus every 4xx with
// p.RetryAll4xx.
func Retryable(p config.Retry, class fanout.ErrorClass, status int, err error) bool {
	switch class {
	case fanout.ClassNone, fanout.ClassCanceled, fanout.ClassCircuitOpen, fanout.ClassRateLimited:
		// Not sent: an open circuit fails fast, and a budget that had no
		// room within the deadline would not have it on a retry either.
		return false
	case fanout.ClassStatus:
		return RetryableStatus(p, status)
	case fanout.ClassOther:
		return !errors.Is(err, errBuild)
	}
	return true
}

// RetryableStatus reports whether status is retried under p: p.RetryStatus
// when it is not nil (an empty list retries no status), else 408, 425, 429
// and 5xx; every 4xx too with p.RetryAll4xx.
func RetryableStatus(p config.Retry, status int) bool {
	if IsSuccess(status) {
		return false
	}
	if p.RetryAll4xx && status >= 400 && status <= 499 {
		return true
	}
	if p.RetryStatus != nil { // an empty list retries no status
		return slices.Contains(p.RetryStatus, status)
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500 && status <= 599
}

// Backoff returns how long to wait after the failed attempt number attempt
// (1-based) before the next one: exponential with full jitter, uniform in
// [0, min(Max, Initial*2^(attempt-1))]. Zero Initial and Max take the
// defaults (1s, 1h). A nil rnd uses the goroutine-safe global source of
// math/rand/v2.
func Backoff(p config.Retry, attempt int, rnd *rand.Rand) time.Duration {
	initial, maxB := p.Initial.D(), p.Max.D()
	if initial <= 0 {
		initial = DefaultBackoffInitial
	}
	if maxB <= 0 {
		maxB = DefaultBackoffMax
	}
	ceil := min(initial, maxB)
	for i := 1; i < attempt && ceil < maxB; i++ {
		ceil = min(ceil*2, maxB) // ceil <= maxB, so *2 cannot overflow
	}
	if ceil <= 0 {
		return 0
	}
	if rnd == nil {
		return time.Duration(rand.Int64N(int64(ceil) + 1))
	}
	return time.Duration(rnd.Int64N(int64(ceil) + 1))
}

// ParseRetryAfter parses a Retry-After value, delay-seconds or an HTTP
// date, into a duration from now. It returns 0 for an empty, malformed or
// past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return 0
		}
		const maxSecs = int64((1<<63 - 1) / time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}
