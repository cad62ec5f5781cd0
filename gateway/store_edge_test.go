package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// badIdempotencyKeys are Idempotency-Key header values (one each) that no
// route accepts.
var badIdempotencyKeys = map[string]string{
	"not UTF-8":        "k\xff\xfe",
	"9000 characters":  strings.Repeat("k", 9000),
	"256 characters":   strings.Repeat("k", 256),
	"empty":            "",
	"UTF-8, not ASCII": "clé",
	"tab inside":       "a\tb",
}

// goodIdempotencyKeys are accepted: printable ASCII, 1 to 255 bytes.
var goodIdempotencyKeys = []string{
	"k",
	strings.Repeat("k", 255),
	"8e03978e-40d5-43e8-bc93-6894a57f9324",
	`"quoted as the IETF draft writes it"`,
	"a b",
	"!~{}[]|\\^`",
}

func TestIdempotencyKeyIsCheckedOnEveryRoute(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	cfg := newConfig([]*target{a},
		route("async", config.ModeAsync, "/async", "a"),
		route("all", config.ModeAll, "/all", "a"))
	b := setup(t, cfg)

	for _, path := range []string{"/async", "/all"} {
		for name, key := range badIdempotencyKeys {
			req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header["Idempotency-Key"] = []string{key}
			resp := b.do(t, req)
			require.Equal(t, http.StatusBadRequest, resp.Status, "%s %s: %s", path, name, resp.Body)
			require.Equal(t, "invalid_idempotency_key", resp.errorCode(t), "%s %s", path, name)
			require.Equal(t, float64(255), resp.json(t)["error"].(map[string]any)["details"].(map[string]any)["max_length"])
		}
		// Two keys: which one counts is ambiguous.
		req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header["Idempotency-Key"] = []string{"k1", "k2"}
		resp := b.do(t, req)
		require.Equal(t, http.StatusBadRequest, resp.Status, "%s: two keys", path)
		require.Equal(t, "invalid_idempotency_key", resp.errorCode(t))
	}
	require.Empty(t, b.enq.calls(), "nothing with a bad key reaches the queue")
	require.Zero(t, a.hits.Load(), "nor a target")

	for _, key := range goodIdempotencyKeys {
		req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/async", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", key)
		resp := b.do(t, req)
		require.Equal(t, http.StatusAccepted, resp.Status, "%q: %s", key, resp.Body)
		require.Equal(t, key, (<-b.enq.got).Message.IdempotencyKey)
	}
}

func TestAsyncStoresTheRequestTargetInURIForm(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	b := setup(t, newConfig([]*target{a}, route("async", config.ModeAsync, "/async", "a")))

	// net/http hands the query on as the client sent it, bytes that are
	// not UTF-8 included; the message keeps it percent-encoded.
	for raw, want := range map[string]string{
		"/async?q=\xff\xfe&r=caf\xc3\xa9": "/async?q=%FF%FE&r=caf%C3%A9",
		"/async?q=%00&r=%FF":              "/async?q=%00&r=%FF",
		"/async?plain=1":                  "/async?plain=1",
	} {
		req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/async", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.URL.RawQuery = strings.TrimPrefix(raw, "/async?")
		resp := b.do(t, req)
		require.Equal(t, http.StatusAccepted, resp.Status, "%q: %s", raw, resp.Body)
		require.Equal(t, want, (<-b.enq.got).Message.Path, "%q", raw)
	}
}

// waitingEnqueuer is a queue whose store never answers: Accept waits for
// its context and reports how long the gateway let it wait.
type waitingEnqueuer struct {
	left chan time.Duration
}

func (w *waitingEnqueuer) Accept(ctx context.Context, _ fanout.AcceptParams) (fanout.AcceptResult, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		w.left <- -1
	} else {
		w.left <- time.Until(dl)
	}
	select {
	case <-ctx.Done():
		return fanout.AcceptResult{}, ctx.Err()
	case <-time.After(time.Minute): // a bound for a broken gateway, not a wait
		return fanout.AcceptResult{}, context.DeadlineExceeded
	}
}

func TestAsyncWaitForTheStoreIsBounded(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	rt := route("async", config.ModeAsync, "/async", "a")
	rt.Deadline = config.Duration(time.Hour)
	enq := &waitingEnqueuer{left: make(chan time.Duration, 1)}
	b := setup(t, newConfig([]*target{a}, rt), setupOpts{enqueuer: enq, storeTimeout: 50 * time.Millisecond})

	resp := b.post(t, "/async", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.Status, "%s", resp.Body)
	require.Equal(t, "store_unavailable", resp.errorCode(t))
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Contains(t, string(resp.Body), "did not answer in time")
	left := <-enq.left
	require.Positive(t, left, "the wait has a deadline")
	require.LessOrEqual(t, left, 50*time.Millisecond, "the store timeout bounds the wait, not the route's 1h deadline")
}

func TestAsyncRefusedMessageIsNotRetryable(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	b := setup(t, newConfig([]*target{a}, route("async", config.ModeAsync, "/async", "a")))
	b.enq.mu.Lock()
	b.enq.err = fmt.Errorf("queue: accept 1 messages: accept: insert messages: %w: value too long", fanout.ErrInvalidMessage)
	b.enq.mu.Unlock()

	resp := b.post(t, "/async", `{}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.Status, "%s", resp.Body)
	require.Equal(t, "message_not_storable", resp.errorCode(t))
	require.Empty(t, resp.Header.Get("Retry-After"))
	require.NotContains(t, string(resp.Body), "value too long", "no internal detail")
}
