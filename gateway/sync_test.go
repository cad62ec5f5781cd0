package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

func TestAllSuccess(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":7}`))
	})
	text := newTarget(t, "text", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("line \"one\"\n"))
	})
	bin := newTarget(t, "bin", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{0xff, 0xfe, 0x00})
	})
	empty := newTarget(t, "empty", status(http.StatusNoContent))
	b := setup(t, newConfig([]*target{crm, text, bin, empty},
		route("profile", config.ModeAll, "/users/{id}/profile", "crm", "text", "bin", "empty")))

	resp := b.post(t, "/users/42/profile?x=1", `{"name":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	env := resp.json(t)
	id := env["id"].(string)
	require.True(t, strings.HasPrefix(id, "msg_"))
	require.Equal(t, id, resp.Header.Get("Fanout-Message-Id"))
	require.Equal(t, "all", env["mode"])
	require.NotContains(t, env, "status_url")

	r := resp.result(t, "crm")
	require.Equal(t, true, r["ok"])
	require.EqualValues(t, 201, r["status"])
	require.EqualValues(t, 1, r["attempts"])
	require.Equal(t, map[string]any{"id": float64(7)}, r["body"], "a JSON body is embedded as JSON")
	require.Greater(t, r["duration_ms"].(float64), 0.0)
	require.Equal(t, "line \"one\"\n", resp.result(t, "text")["body"])
	rb := resp.result(t, "bin")
	require.Equal(t, "//4A", rb["body"])
	require.Equal(t, "base64", rb["body_encoding"])
	require.NotContains(t, resp.result(t, "empty"), "body")

	for _, tg := range []*target{crm, text, bin, empty} {
		s := tg.next(t)
		require.Equal(t, `{"name":"ada"}`, s.Body, "every target gets the same body")
		require.Equal(t, "/in", s.URI, "the target URL is used, not the inbound path")
		require.Equal(t, id, s.Header.Get("Fanout-Message-Id"))
		require.Equal(t, id, s.Header.Get("Idempotency-Key"))
		require.Equal(t, tg.name, s.Header.Get("Fanout-Target"))
	}
}

func TestAllFailureRetriesAndReports502(t *testing.T) {
	t.Parallel()
	ok := newTarget(t, "ok", nil)
	bad := newTarget(t, "bad", status(http.StatusInternalServerError))
	b := setup(t, newConfig([]*target{ok, bad}, route("r", config.ModeAll, "/r", "ok", "bad")))

	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	r := resp.result(t, "bad")
	require.Equal(t, false, r["ok"])
	require.EqualValues(t, 500, r["status"])
	require.EqualValues(t, 3, r["attempts"], "retried up to sync_max_attempts")
	require.Equal(t, map[string]any{"class": "status", "message": "the target answered 500 Internal Server Error"}, r["error"])
	require.Equal(t, "Internal Server Error", r["body"])
	require.Equal(t, true, resp.result(t, "ok")["ok"])
	require.EqualValues(t, 3, bad.hits.Load())
	require.EqualValues(t, 1, ok.hits.Load())

	// A 4xx is not retried.
	bad4 := newTarget(t, "bad4", status(http.StatusUnprocessableEntity))
	b = setup(t, newConfig([]*target{bad4}, route("r", config.ModeAll, "/r", "bad4")))
	resp = b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.EqualValues(t, 1, resp.result(t, "bad4")["attempts"])
}

func TestAllRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	flaky := newTarget(t, "flaky", func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	b := setup(t, newConfig([]*target{flaky}, route("r", config.ModeAll, "/r", "flaky")))
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	r := resp.result(t, "flaky")
	require.Equal(t, true, r["ok"])
	require.EqualValues(t, 3, r["attempts"])
	require.EqualValues(t, 201, r["status"])
	var keys []string
	for i := 1; i <= 3; i++ {
		s := flaky.next(t)
		require.Equal(t, []string{string(rune('0' + i))}, s.Header.Values("Fanout-Attempt"))
		keys = append(keys, s.Header.Get("Idempotency-Key"))
	}
	require.Equal(t, keys[0], keys[1])
	require.Equal(t, keys[0], keys[2], "the idempotency key is stable across attempts")
}

func TestAllRetryAfter(t *testing.T) {
	t.Parallel()
	limited := newTarget(t, "limited", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	b := setup(t, newConfig([]*target{limited}, route("r", config.ModeAll, "/r", "limited")))
	start := time.Now()
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.EqualValues(t, 2, resp.result(t, "limited")["attempts"])
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After is honoured")

	// A Retry-After that does not fit in the deadline ends the retries.
	// A Retry-After of an hour with a route deadline of ten minutes: code
	// that waited would answer after ten minutes; the generous bound
	// below is far from both that and from a busy machine's slowness.
	long := newTarget(t, "long", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	rt := route("r", config.ModeAll, "/r", "long")
	rt.Deadline = config.Duration(10 * time.Minute)
	b = setup(t, newConfig([]*target{long}, rt))
	start = time.Now()
	resp = b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	r := resp.result(t, "long")
	require.EqualValues(t, 1, r["attempts"])
	require.EqualValues(t, 503, r["status"])
	require.Less(t, time.Since(start), time.Minute, "the retry that does not fit is not waited for")
}

func TestAllTargetTimeout(t *testing.T) {
	t.Parallel()
	slow := newTarget(t, "slow", func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	})
	slow.cfg.Timeout = config.Duration(100 * time.Millisecond)
	slow.cfg.Retry.SyncMaxAttempts = 2
	ok := newTarget(t, "ok", nil)
	b := setup(t, newConfig([]*target{slow, ok}, route("r", config.ModeSettled, "/r", "slow", "ok")))
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "settled answers 200 whatever the outcomes")
	r := resp.result(t, "slow")
	require.Equal(t, false, r["ok"])
	require.EqualValues(t, 2, r["attempts"])
	require.NotContains(t, r, "status")
	require.Equal(t, map[string]any{"class": "timeout", "message": "no response within 100ms"}, r["error"])
	require.Equal(t, true, resp.result(t, "ok")["ok"])
}

func TestAllRouteDeadline(t *testing.T) {
	t.Parallel()
	slow := newTarget(t, "slow", func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	})
	rt := route("r", config.ModeAll, "/r", "slow")
	rt.Deadline = config.Duration(150 * time.Millisecond)
	b := setup(t, newConfig([]*target{slow}, rt))
	// The slow target answers only when its request is canceled: the
	// answer itself shows the deadline ended it, no stopwatch needed.
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.Equal(t, map[string]any{"class": "timeout", "message": "route deadline of 150ms exceeded"}, resp.result(t, "slow")["error"])
}

func TestAllConnectionClosedMidResponse(t *testing.T) {
	t.Parallel()
	broken := newTarget(t, "broken", func(w http.ResponseWriter, r *http.Request, n int) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
		_ = buf.Flush()
		_ = conn.Close()
	})
	broken.cfg.Retry.SyncMaxAttempts = 1
	b := setup(t, newConfig([]*target{broken}, route("r", config.ModeAll, "/r", "broken")))
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	r := resp.result(t, "broken")
	require.Equal(t, "connect", r["error"].(map[string]any)["class"])
	require.Equal(t, "the connection closed before the response body was complete", r["error"].(map[string]any)["message"])
	require.EqualValues(t, 200, r["status"])
}

func TestAllQuorumAndOptional(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	bb := newTarget(t, "b", nil)
	bad := newTarget(t, "bad", status(http.StatusBadRequest))

	quorum := route("quorum", config.ModeAll, "/quorum", "a", "b", "bad")
	quorum.Require = 2
	strict := route("strict", config.ModeAll, "/strict", "a", "b", "bad")
	strict.Require = 3
	optional := route("optional", config.ModeAll, "/optional", "a", "bad")
	optional.Targets[1].Optional = true
	b := setup(t, newConfig([]*target{a, bb, bad}, quorum, strict, optional))

	resp := b.post(t, "/quorum", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "2 of 3 is enough: %s", resp.Body)
	require.Equal(t, false, resp.result(t, "bad")["ok"])

	resp = b.post(t, "/strict", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)

	resp = b.post(t, "/optional", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "an optional failure does not fail the route")
	require.Equal(t, false, resp.result(t, "bad")["ok"], "but it is reported")
}

func TestAllFailFastCancelsTheOthers(t *testing.T) {
	t.Parallel()
	slowArrived := make(chan struct{})
	slowCanceled := make(chan struct{})
	slow := newTarget(t, "slow", func(w http.ResponseWriter, r *http.Request, n int) {
		close(slowArrived)
		select {
		case <-r.Context().Done():
			close(slowCanceled)
		case <-time.After(10 * time.Second):
		}
	})
	bad := newTarget(t, "bad", func(w http.ResponseWriter, r *http.Request, n int) {
		<-slowArrived // fail only once the slow target is busy
		w.WriteHeader(http.StatusBadRequest)
	})
	rt := route("r", config.ModeAll, "/r", "slow", "bad")
	rt.FailFast = true
	rt.Deadline = config.Duration(20 * time.Second)
	b := setup(t, newConfig([]*target{slow, bad}, rt))

	// The slow target's request is canceled (an event), not timed.
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	select {
	case <-slowCanceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow target's request context was not canceled")
	}
	r := resp.result(t, "slow")
	require.Equal(t, map[string]any{"class": "canceled", "message": "canceled: another target failed and fail_fast is set"}, r["error"])
	require.Equal(t, "status", resp.result(t, "bad")["error"].(map[string]any)["class"])
}

func TestOnFailureQueue(t *testing.T) {
	t.Parallel()
	ok := newTarget(t, "ok", nil)
	bad := newTarget(t, "bad", status(http.StatusServiceUnavailable))
	all := route("all", config.ModeAll, "/all", "ok", "bad")
	all.OnFailure = "queue"
	settled := route("settled", config.ModeSettled, "/settled", "ok", "bad")
	settled.OnFailure = "queue"
	cfg := newConfig([]*target{ok, bad}, all, settled)
	b := setup(t, cfg)

	resp := b.post(t, "/all", `{"x":1}`)
	require.Equal(t, http.StatusAccepted, resp.Status, "every failed leg is queued: %s", resp.Body)
	env := resp.json(t)
	id := env["id"].(string)
	require.Equal(t, "http://admin.test/v1/messages/"+id, env["status_url"])
	require.Equal(t, true, resp.result(t, "bad")["queued"])
	require.NotContains(t, resp.result(t, "ok"), "queued")
	p := <-b.enq.got
	require.Equal(t, []string{"bad"}, p.Targets)
	require.Equal(t, id, p.Message.ID, "the queued legs keep the message id")
	require.Equal(t, "all", p.Message.Route)
	require.Equal(t, `{"x":1}`, string(p.Message.Body))
	require.Zero(t, p.DedupWindow)

	resp = b.post(t, "/settled", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, true, resp.result(t, "bad")["queued"])
	<-b.enq.got

	// A failed hand-off says so.
	b.enq.mu.Lock()
	b.enq.err = errors.New("disk full")
	b.enq.mu.Unlock()
	resp = b.post(t, "/all", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.Equal(t, false, resp.result(t, "bad")["queued"])
	require.NotContains(t, resp.json(t), "status_url")
	require.NotEmpty(t, b.logs.lines(t, "failed legs not queued"))

	// Without a queue the legs are reported as not queued.
	nb := setup(t, cfg, setupOpts{noEnqueuer: true})
	resp = nb.post(t, "/settled", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, false, resp.result(t, "bad")["queued"])
}

func TestClientDisconnectCancelsOutboundCalls(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	canceled := make(chan struct{})
	slow := newTarget(t, "slow", func(w http.ResponseWriter, r *http.Request, n int) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	})
	b := setup(t, newConfig([]*target{slow}, route("r", config.ModeAll, "/r", "slow")))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.srv.URL+"/r", strings.NewReader(`{}`))
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		resp, err := b.http.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	require.Error(t, <-errc)
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the outbound call outlived the client")
	}
	eventually(t, func() bool {
		for _, l := range b.logs.lines(t, "request") {
			if l["client_gone"] == true && l["status"] == float64(499) {
				return true
			}
		}
		return false
	}, "the request line logs the client as gone")
}

func TestHeaderForwarding(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "t", nil)
	tg.cfg.Headers = map[string]string{"X-Api-Key": "target-secret"}
	b := setup(t, newConfig([]*target{tg}, route("r", config.ModeAll, "/r", "t")))

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/r", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret-hop")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("Proxy-Authorization", "Basic eA==")
	req.Header.Set("X-Keep", "kept")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Traceparent", tp)
	req.Header.Set("Authorization", "Bearer inbound-secret")
	resp := b.do(t, req)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)

	s := tg.next(t)
	require.Equal(t, "kept", s.Header.Get("X-Keep"))
	for _, k := range []string{"X-Hop", "Keep-Alive", "Upgrade", "Proxy-Authorization"} {
		require.Empty(t, s.Header.Get(k), k)
	}
	require.Equal(t, "203.0.113.9, 127.0.0.1", s.Header.Get("X-Forwarded-For"))
	require.Equal(t, "http", s.Header.Get("X-Forwarded-Proto"))
	require.Equal(t, strings.TrimPrefix(b.srv.URL, "http://"), s.Header.Get("X-Forwarded-Host"))
	require.Equal(t, tp, s.Header.Get("Traceparent"))
	require.Equal(t, "target-secret", s.Header.Get("X-Api-Key"))
	require.Equal(t, "application/json", s.Header.Get("Content-Type"))

	// Without a traceparent, a new one is made.
	resp = b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)
	s = tg.next(t)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`, s.Header.Get("Traceparent"))

	// No header value that could be a secret reaches the logs.
	logs := b.logs.String()
	for _, secret := range []string{"target-secret", "inbound-secret", "secret-hop", "eA=="} {
		require.NotContains(t, logs, secret)
	}
}

func TestLogLines(t *testing.T) {
	t.Parallel()
	ok := newTarget(t, "crm", nil)
	bad := newTarget(t, "analytics", status(http.StatusServiceUnavailable))
	b := setup(t, newConfig([]*target{ok, bad}, route("signup", config.ModeSettled, "/s", "crm", "analytics")))
	resp := b.post(t, "/s", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)

	eventually(t, func() bool { return len(b.logs.lines(t, "request")) == 1 }, "one request line")
	l := b.logs.lines(t, "request")[0]
	require.Equal(t, "INFO", l["level"])
	require.Equal(t, "signup", l["route"])
	require.Equal(t, "settled", l["mode"])
	require.EqualValues(t, 200, l["status"])
	require.Equal(t, resp.json(t)["id"], l["message_id"])
	require.Equal(t, "crm=200 analytics=503", l["targets"])
	require.Contains(t, l, "duration_ms")

	attempts := b.logs.lines(t, "attempt failed")
	require.Len(t, attempts, 3, "one line per failed attempt")
	for i, a := range attempts {
		require.Equal(t, "WARN", a["level"])
		require.Equal(t, "analytics", a["target"])
		require.EqualValues(t, i+1, a["attempt"])
		require.Equal(t, "status", a["class"])
	}
}

// TestEnvelopeIsValidJSONLines checks that the envelope ends with a newline
// like encoding/json's Encoder output and that bodies with odd bytes stay
// valid JSON.
func TestEnvelopeEscaping(t *testing.T) {
	t.Parallel()
	odd := newTarget(t, "odd\"name", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{not json \u2028 \x01 </script>"))
	})
	b := setup(t, newConfig([]*target{odd}, route("r", config.ModeAll, "/r", "odd\"name")))
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, "{not json \u2028 \x01 </script>", resp.result(t, "odd\"name")["body"])
	line, err := bufio.NewReader(strings.NewReader(string(resp.Body))).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, string(resp.Body), line)
}

func TestHooks(t *testing.T) {
	t.Parallel()
	ok := newTarget(t, "crm", nil)
	bad := newTarget(t, "analytics", status(http.StatusServiceUnavailable))
	type req struct {
		route, mode string
		status      int
	}
	type att struct {
		route, target string
		class         fanout.ErrorClass
		status        int
	}
	var (
		mu       sync.Mutex
		requests []req
		attempts []att
	)
	hooks := gateway.Hooks{
		OnRequest: func(route, mode string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			requests = append(requests, req{route, mode, status})
		},
		OnAttempt: func(route, target string, class fanout.ErrorClass, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, att{route, target, class, status})
		},
	}
	b := setup(t, newConfig([]*target{ok, bad}, route("signup", config.ModeAll, "/s", "crm", "analytics")), setupOpts{hooks: hooks})
	require.Equal(t, http.StatusBadGateway, b.post(t, "/s", `{}`).Status)
	require.Equal(t, http.StatusNotFound, b.post(t, "/nope", `{}`).Status)

	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(requests) == 2
	}, "two requests reported")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []req{{"signup", "all", 502}, {"", "", 404}}, requests)
	require.ElementsMatch(t, []att{
		{"signup", "crm", fanout.ClassNone, 200},
		{"signup", "analytics", fanout.ClassStatus, 503},
		{"signup", "analytics", fanout.ClassStatus, 503},
		{"signup", "analytics", fanout.ClassStatus, 503},
	}, attempts)
}
