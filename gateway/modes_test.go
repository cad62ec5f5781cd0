package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// blocker is a target handler that holds each request until its context
// ends (or a long safety timeout), and reports both events.
type blocker struct {
	arrived  chan struct{}
	canceled chan struct{}
}

func newBlocker() *blocker {
	return &blocker{arrived: make(chan struct{}, 16), canceled: make(chan struct{}, 16)}
}

func (bl *blocker) handle(w http.ResponseWriter, r *http.Request, n int) {
	bl.arrived <- struct{}{}
	select {
	case <-r.Context().Done():
		bl.canceled <- struct{}{}
	case <-time.After(10 * time.Second):
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting: " + what)
	}
}

func TestRaceFirstSuccessIsProxied(t *testing.T) {
	t.Parallel()
	loser := newBlocker()
	slow := newTarget(t, "slow", loser.handle)
	fast := newTarget(t, "fast", func(w http.ResponseWriter, r *http.Request, n int) {
		<-loser.arrived // both are in flight
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-From", "fast")
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "1")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "fast wins")
	})
	b := setup(t, newConfig([]*target{slow, fast}, route("r", config.ModeRace, "/r", "slow", "fast")))

	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusCreated, resp.Status)
	require.Equal(t, "fast wins", string(resp.Body))
	require.Equal(t, "fast", resp.Header.Get("X-From"))
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	require.Empty(t, resp.Header.Get("X-Secret-Hop"), "hop-by-hop response headers are stripped")
	require.Equal(t, "fast", resp.Header.Get("Fanout-Target"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Fanout-Message-Id"), "msg_"))
	wait(t, loser.canceled, "the loser is canceled")
}

func TestRaceHedge(t *testing.T) {
	t.Parallel()
	t.Run("fast first: the second is never called", func(t *testing.T) {
		t.Parallel()
		first := newTarget(t, "first", nil)
		second := newTarget(t, "second", nil)
		rt := route("r", config.ModeRace, "/r", "first", "second")
		rt.HedgeAfter = config.Duration(2 * time.Second)
		b := setup(t, newConfig([]*target{first, second}, rt))
		for range 5 {
			resp := b.post(t, "/r", `{}`)
			require.Equal(t, http.StatusOK, resp.Status)
			require.Equal(t, "first", resp.Header.Get("Fanout-Target"))
		}
		require.EqualValues(t, 5, first.hits.Load())
		require.Zero(t, second.hits.Load())
	})
	t.Run("slow first: the second is called after the delay", func(t *testing.T) {
		t.Parallel()
		slow := newBlocker()
		first := newTarget(t, "first", slow.handle)
		second := newTarget(t, "second", nil)
		rt := route("r", config.ModeRace, "/r", "first", "second")
		rt.HedgeAfter = config.Duration(50 * time.Millisecond)
		b := setup(t, newConfig([]*target{first, second}, rt))
		start := time.Now()
		resp := b.post(t, "/r", `{}`)
		require.Equal(t, http.StatusOK, resp.Status)
		require.Equal(t, "second", resp.Header.Get("Fanout-Target"))
		require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
		wait(t, slow.canceled, "the slow first target is canceled")
	})
	t.Run("a failure starts the next at once", func(t *testing.T) {
		t.Parallel()
		first := newTarget(t, "first", status(http.StatusInternalServerError))
		second := newTarget(t, "second", nil)
		rt := route("r", config.ModeRace, "/r", "first", "second")
		rt.HedgeAfter = config.Duration(time.Minute)
		b := setup(t, newConfig([]*target{first, second}, rt))
		resp := b.post(t, "/r", `{}`)
		require.Equal(t, http.StatusOK, resp.Status)
		require.Equal(t, "second", resp.Header.Get("Fanout-Target"))
	})
}

func TestRaceAllFail(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", status(http.StatusServiceUnavailable))
	c := newTarget(t, "c", status(http.StatusNotFound))
	b := setup(t, newConfig([]*target{a, c}, route("r", config.ModeRace, "/r", "a", "c")))
	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.Equal(t, "race", resp.json(t)["mode"])
	require.EqualValues(t, 503, resp.result(t, "a")["status"])
	require.EqualValues(t, 404, resp.result(t, "c")["status"])
	require.EqualValues(t, 1, resp.result(t, "c")["attempts"])
	require.Equal(t, "Not Found", resp.result(t, "c")["body"])
}

func TestMirrorStreamsPrimaryAndCopiesBestEffort(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB
	sum := sha256.Sum256(big)
	primary := newTarget(t, "primary", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Header().Set("X-Primary", "yes")
		w.WriteHeader(http.StatusAccepted)
		for off := 0; off < len(big); off += 1 << 20 {
			_, _ = w.Write(big[off : off+1<<20])
		}
	})
	shadow := newTarget(t, "shadow", nil)
	shadow2 := newTarget(t, "shadow2", status(http.StatusInternalServerError))
	rt := route("m", config.ModeMirror, "/m", "primary", "shadow", "shadow2")
	rt.Primary = "primary"
	durable := false
	rt.Durable = &durable
	b := setup(t, newConfig([]*target{primary, shadow, shadow2}, rt))

	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/m?q=1", strings.NewReader(`{"order":1}`))
	require.NoError(t, err)
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "yes", resp.Header.Get("X-Primary"))
	require.EqualValues(t, len(big), resp.ContentLength)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	require.NoError(t, err)
	require.EqualValues(t, len(big), n)
	require.Equal(t, sum[:], h.Sum(nil))

	s := shadow.next(t)
	require.Equal(t, `{"order":1}`, s.Body)
	require.Equal(t, resp.Header.Get("Fanout-Message-Id"), s.Header.Get("Fanout-Message-Id"))
	require.Equal(t, "shadow", s.Header.Get("Fanout-Target"))
	require.Contains(t, s.Header.Get("X-Forwarded-For"), "127.0.0.1")
	shadow2.next(t)
	require.Empty(t, b.enq.calls(), "best-effort copies do not go through the queue")
}

func TestMirrorDurableCopies(t *testing.T) {
	t.Parallel()
	primary := newTarget(t, "primary", nil)
	shadow := newTarget(t, "shadow", nil)
	rt := route("m", config.ModeMirror, "/m", "primary", "shadow")
	rt.Primary = "primary"
	b := setup(t, newConfig([]*target{primary, shadow}, rt))

	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/m?q=1", strings.NewReader(`{"order":1}`))
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", "client-key")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	resp := b.do(t, req)
	require.Equal(t, http.StatusOK, resp.Status)
	require.JSONEq(t, `{"target":"primary"}`, string(resp.Body))

	p := <-b.enq.got
	require.Equal(t, []string{"shadow"}, p.Targets)
	require.Zero(t, p.DedupWindow, "copies are not deduplicated")
	m := p.Message
	require.Equal(t, resp.Header.Get("Fanout-Message-Id"), m.ID)
	require.Equal(t, "m", m.Route)
	require.Equal(t, http.MethodPost, m.Method)
	require.Equal(t, "/m?q=1", m.Path)
	require.Equal(t, `{"order":1}`, string(m.Body))
	require.Equal(t, "client-key", m.IdempotencyKey)
	require.Empty(t, m.Header.Get("X-Hop"))
	require.Empty(t, m.Header.Get("Connection"))
	require.Equal(t, "127.0.0.1", m.Header.Get("X-Forwarded-For"))
	require.NotEmpty(t, m.Header.Get("Traceparent"))
	require.False(t, m.ReceivedAt.IsZero())
	require.Equal(t, time.UTC, m.ReceivedAt.Location())
	require.Zero(t, shadow.hits.Load(), "the queue, not the gateway, delivers durable copies")
}

func TestMirrorSampling(t *testing.T) {
	t.Parallel()
	primary := newTarget(t, "primary", nil)
	shadow := newTarget(t, "shadow", nil)
	rt := route("m", config.ModeMirror, "/m", "primary", "shadow")
	rt.Primary = "primary"
	zero := 0.0
	rt.SamplePercent = &zero
	durable := false
	rt.Durable = &durable
	b := setup(t, newConfig([]*target{primary, shadow}, rt))
	for range 20 {
		require.Equal(t, http.StatusOK, b.post(t, "/m", `{}`).Status)
	}
	// Close waits for every background copy: none may arrive after it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.gw.Close(ctx))
	require.Zero(t, shadow.hits.Load())
	require.EqualValues(t, 20, primary.hits.Load())
}

func TestMirrorPrimaryBreaksMidBody(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		primary := newTarget(t, "primary", func(w http.ResponseWriter, r *http.Request, n int) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			if chunked {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
			} else {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			}
			_ = buf.Flush()
			_ = conn.Close()
		})
		shadow := newTarget(t, "shadow", nil)
		rt := route("m", config.ModeMirror, "/m", "primary", "shadow")
		rt.Primary = "primary"
		b := setup(t, newConfig([]*target{primary, shadow}, rt))
		// The client sees a broken response (before or after the status,
		// depending on what was flushed), never a short one that looks whole.
		resp, err := b.http.Post(b.srv.URL+"/m", "application/json", strings.NewReader(`{}`))
		if err == nil {
			require.Equal(t, http.StatusOK, resp.StatusCode)
			_, err = io.ReadAll(resp.Body)
			require.Error(t, err, "chunked=%v", chunked)
			_ = resp.Body.Close()
		}
		eventually(t, func() bool {
			for _, l := range b.logs.lines(t, "request") {
				if l["aborted"] == true {
					return true
				}
			}
			return false
		}, "the request line says aborted")
	}
}

func TestMirrorPrimaryFailure(t *testing.T) {
	t.Parallel()
	shadow := newTarget(t, "shadow", nil)
	primaryCfg := newTarget(t, "primary", nil)
	primaryCfg.srv.Close() // connection refused
	rt := route("m", config.ModeMirror, "/m", "primary", "shadow")
	rt.Primary = "primary"
	b := setup(t, newConfig([]*target{primaryCfg, shadow}, rt))
	resp := b.post(t, "/m", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.Equal(t, "bad_gateway", resp.errorCode(t))
	details := resp.json(t)["error"].(map[string]any)["details"].(map[string]any)
	require.Equal(t, "connect", details["class"])
	require.Equal(t, "primary", details["target"])

	// A primary that answers 500 is proxied as is.
	bad := newTarget(t, "bad", status(http.StatusInternalServerError))
	rt2 := route("m", config.ModeMirror, "/m", "bad", "shadow")
	rt2.Primary = "bad"
	b = setup(t, newConfig([]*target{bad, shadow}, rt2))
	resp = b.post(t, "/m", `{}`)
	require.Equal(t, http.StatusInternalServerError, resp.Status)
	require.Equal(t, "Internal Server Error", string(resp.Body))
}

func TestCloseCancelsBackgroundWorkPastItsDeadline(t *testing.T) {
	t.Parallel()
	stuck := newBlocker()
	primary := newTarget(t, "primary", nil)
	shadow := newTarget(t, "shadow", stuck.handle)
	rt := route("m", config.ModeMirror, "/m", "primary", "shadow")
	rt.Primary = "primary"
	durable := false
	rt.Durable = &durable
	b := setup(t, newConfig([]*target{primary, shadow}, rt))
	require.Equal(t, http.StatusOK, b.post(t, "/m", `{}`).Status)
	wait(t, stuck.arrived, "the copy is in flight")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.gw.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	wait(t, stuck.canceled, "the copy is canceled")

	// After Close, copies are dropped, the primary still served.
	require.Equal(t, http.StatusOK, b.post(t, "/m", `{}`).Status)
	require.NotEmpty(t, b.logs.lines(t, "mirror copies dropped: the gateway is closing"))
}

func TestAsync(t *testing.T) {
	t.Parallel()
	a := newTarget(t, "a", nil)
	c := newTarget(t, "c", nil)
	rt := route("signup", config.ModeAsync, "/send-info", "a", "c")
	rt.ContentType = "json"
	cfg := newConfig([]*target{a, c}, rt)
	cfg.Delivery.DedupWindow = config.Duration(time.Hour)
	b := setup(t, cfg)

	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/send-info?src=web", strings.NewReader(`{"email":"a@b.c"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k1")
	resp := b.do(t, req)
	require.Equal(t, http.StatusAccepted, resp.Status, "%s", resp.Body)
	body := resp.json(t)
	id := body["id"].(string)
	require.Equal(t, map[string]any{"id": id, "status_url": "http://admin.test/v1/messages/" + id}, body)
	require.Equal(t, id, resp.Header.Get("Fanout-Message-Id"))
	require.Empty(t, resp.Header.Get("Idempotent-Replayed"))

	p := <-b.enq.got
	require.Equal(t, []string{"a", "c"}, p.Targets)
	require.Equal(t, time.Hour, p.DedupWindow)
	require.Equal(t, id, p.Message.ID)
	require.Equal(t, "/send-info?src=web", p.Message.Path)
	require.Equal(t, "k1", p.Message.IdempotencyKey)
	require.Equal(t, `{"email":"a@b.c"}`, string(p.Message.Body))
	require.Equal(t, "application/json", p.Message.Header.Get("Content-Type"))
	require.Empty(t, p.Message.Header.Get("Content-Length"))
	require.Zero(t, a.hits.Load()+c.hits.Load(), "the queue delivers, not the gateway")

	// The same key again: the first id, 200, Idempotent-Replayed.
	req, err = http.NewRequest(http.MethodPost, b.srv.URL+"/send-info", strings.NewReader(`{"email":"a@b.c"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k1")
	resp = b.do(t, req)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	require.Equal(t, id, resp.json(t)["id"])
	require.Equal(t, id, resp.Header.Get("Fanout-Message-Id"))

	// A store failure is a 503: not stored.
	b.enq.mu.Lock()
	b.enq.err = errors.New("database is locked")
	b.enq.mu.Unlock()
	resp = b.post(t, "/send-info", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.Status)
	require.Equal(t, "store_unavailable", resp.errorCode(t))
	require.Empty(t, resp.Header.Get("Fanout-Message-Id"))
	require.NotContains(t, string(resp.Body), "database is locked", "no internal detail")

	// No queue at all: 503 too.
	nb := setup(t, cfg, setupOpts{noEnqueuer: true})
	resp = nb.post(t, "/send-info", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.Status)
	require.Equal(t, "store_unavailable", resp.errorCode(t))
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "t", nil)
	js := route("json", config.ModeAll, "/json", "t")
	js.ContentType = "json"
	js.MaxBody = 16
	put := route("put", config.ModeAll, "/json", "t")
	put.Match.Method = http.MethodPut
	b := setup(t, newConfig([]*target{tg}, js, put))

	req := func(method, path, ct, body string) *response {
		r, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		return b.do(t, r)
	}

	resp := req(http.MethodPost, "/nope", "", "")
	require.Equal(t, http.StatusNotFound, resp.Status)
	require.Equal(t, "not_found", resp.errorCode(t))

	resp = req(http.MethodDelete, "/json", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.Status)
	require.Equal(t, "method_not_allowed", resp.errorCode(t))
	require.Equal(t, "POST, PUT", resp.Header.Get("Allow"))

	resp = req(http.MethodPost, "/json", "application/json", `{"far":"too long for the limit"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.Status)
	require.Equal(t, "payload_too_large", resp.errorCode(t))
	require.Equal(t, map[string]any{"limit": float64(16)}, resp.json(t)["error"].(map[string]any)["details"])

	// Without a Content-Length the limit holds too.
	r, err := http.NewRequest(http.MethodPost, b.srv.URL+"/json", io.MultiReader(strings.NewReader(`{"far":"too long`), strings.NewReader(` for the limit"}`)))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = -1
	resp = b.do(t, r)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.Status)
	require.Equal(t, "payload_too_large", resp.errorCode(t))

	resp = req(http.MethodPost, "/json", "text/plain", `{}`)
	require.Equal(t, http.StatusUnsupportedMediaType, resp.Status)
	require.Equal(t, "unsupported_media_type", resp.errorCode(t))

	resp = req(http.MethodPost, "/json", "application/json; charset=utf-8", `{"a":}`)
	require.Equal(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, "invalid_json", resp.errorCode(t))
	require.Equal(t, float64(6), resp.json(t)["error"].(map[string]any)["details"].(map[string]any)["offset"])

	resp = req(http.MethodPost, "/json", "application/vnd.api+json", `{"a":1}`)
	require.Equal(t, http.StatusOK, resp.Status, "+json types are JSON")

	require.Zero(t, b.enq.calls())
}

func TestHostAndWildcardRouting(t *testing.T) {
	t.Parallel()
	anyHost := newTarget(t, "any", nil)
	host := newTarget(t, "host", nil)
	lit := newTarget(t, "lit", nil)
	rest := newTarget(t, "rest", nil)
	r1 := route("param", config.ModeAll, "/users/{id}", "any")
	r2 := route("host", config.ModeAll, "/users/{id}", "host")
	r2.Match.Host = "API.example.com"
	r3 := route("lit", config.ModeAll, "/users/me", "lit")
	r4 := route("rest", config.ModeAll, "/files/{path...}", "rest")
	b := setup(t, newConfig([]*target{anyHost, host, lit, rest}, r1, r2, r3, r4))

	send := func(hostHeader, path string) string {
		r, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		if hostHeader != "" {
			r.Host = hostHeader
		}
		resp := b.do(t, r)
		require.Equal(t, http.StatusOK, resp.Status, "%s %s: %s", hostHeader, path, resp.Body)
		for name := range resp.json(t)["results"].(map[string]any) {
			return name
		}
		return ""
	}
	require.Equal(t, "any", send("", "/users/42"))
	require.Equal(t, "lit", send("", "/users/me"))
	require.Equal(t, "host", send("api.example.com:8080", "/users/42"))
	require.Equal(t, "host", send("api.example.com", "/users/me"), "the host's routes come first, as nginx server blocks")
	require.Equal(t, "rest", send("api.example.com", "/files/x"), "a path the host has no route for falls back")
	require.Equal(t, "rest", send("", "/files/a/b/c"))
	require.Equal(t, "rest", send("", "/files/"))
	require.Equal(t, http.StatusNotFound, b.post(t, "/files", `{}`).Status)
	require.Equal(t, http.StatusNotFound, b.post(t, "/users/42/x", `{}`).Status)
}

func TestHotReload(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	old := newTarget(t, "old", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			arrived <- struct{}{}
			<-release
		}
		echo("old")(w, r, n)
	})
	nw := newTarget(t, "new", nil)
	cfgOld := newConfig([]*target{old, nw}, route("r", config.ModeAll, "/r", "old"))
	cfgNew := newConfig([]*target{old, nw}, route("r", config.ModeAll, "/r", "new"), route("extra", config.ModeAll, "/extra", "new"))
	b := setup(t, cfgOld)

	inflight := make(chan *response, 1)
	go func() {
		resp, err := b.http.Post(b.srv.URL+"/r", "application/json", strings.NewReader(`{}`))
		if err != nil {
			inflight <- nil
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		inflight <- &response{Status: resp.StatusCode, Body: body}
	}()
	<-arrived
	require.NoError(t, b.gw.Load(cfgNew))

	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, true, resp.result(t, "new")["ok"], "new requests use the new config")
	require.Equal(t, http.StatusOK, b.post(t, "/extra", `{}`).Status)

	close(release)
	first := <-inflight
	require.NotNil(t, first)
	require.Equal(t, http.StatusOK, first.Status)
	require.Equal(t, true, first.result(t, "old")["ok"], "the request in flight finished on the old config")

	// A config that does not compile is refused and the old one stays.
	bad := newConfig([]*target{nw}, route("r", config.ModeAll, "/r", "missing"))
	require.ErrorContains(t, b.gw.Load(bad), `unknown target "missing"`)
	require.Equal(t, http.StatusOK, b.post(t, "/extra", `{}`).Status)

	// Reloads under load: no request fails.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	failures := make(chan string, 100)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := b.http.Post(b.srv.URL+"/r", "application/json", strings.NewReader(`{}`))
				if err != nil {
					failures <- err.Error()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures <- resp.Status
					return
				}
			}
		})
	}
	for i := range 200 {
		cfg := cfgOld
		if i%2 == 1 {
			cfg = cfgNew
		}
		require.NoError(t, b.gw.Load(cfg))
	}
	close(stop)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("request failed during reloads: %s", f)
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "t", nil)
	for name, mod := range map[string]func(*config.Route){
		"unknown target": func(r *config.Route) { r.Targets[0].Name = "zzz" },
		"no targets":     func(r *config.Route) { r.Targets = nil },
		"bad mode":       func(r *config.Route) { r.Mode = "broadcast" },
		"bad path":       func(r *config.Route) { r.Match.Path = "/a/{rest...}/b" },
		"bad segment":    func(r *config.Route) { r.Match.Path = "/a{b}" },
		"require":        func(r *config.Route) { r.Require = 2 },
		"mirror primary": func(r *config.Route) { r.Mode = config.ModeMirror; r.Primary = "nope" },
	} {
		r := route("r", config.ModeAll, "/r", "t")
		mod(r)
		_, err := gateway.New(newConfig([]*target{tg}, r), gateway.Options{})
		require.Error(t, err, name)
	}
	_, err := gateway.New(newConfig([]*target{tg}, route("a", config.ModeAll, "/r", "t"), route("b", config.ModeAll, "/r", "t")), gateway.Options{})
	require.ErrorContains(t, err, `same method, host and path as route "a"`)
}
