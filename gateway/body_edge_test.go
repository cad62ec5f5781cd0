package gateway_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// trickled is what a slow client saw.
type trickled struct {
	status int
	header http.Header
	body   []byte
	// closed is set when the server closed the connection after its
	// answer (the client read EOF).
	closed bool
	close  bool // the answer said Connection: close
}

// trickle plays a slow client on a raw TCP connection to addr: it sends
// head (the request line and headers, ending in a blank line) at once,
// then one body byte a second — a 100000-byte body would take a day —
// until the server answers. It returns the answer and whether the server
// then closed the connection.
func trickle(t *testing.T, addr, head string) trickled {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	// A generous bound so that a broken server fails the test instead of
	// hanging it; it decides nothing.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.WriteString(conn, head+"{")
	require.NoError(t, err)

	answered := make(chan trickled, 1)
	errs := make(chan error, 1)
	go func() {
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			errs <- err
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			errs <- err
			return
		}
		got := trickled{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close}
		_, err = br.ReadByte()
		got.closed = errors.Is(err, io.EOF)
		answered <- got
	}()
	tick := time.NewTicker(time.Second) // the trickle
	defer tick.Stop()
	for {
		select {
		case got := <-answered:
			return got
		case err := <-errs:
			t.Fatalf("reading the answer: %v", err)
		case <-tick.C:
			_, _ = io.WriteString(conn, " ") // the server may be gone: that is the point
		}
	}
}

func (tr trickled) errorCode(t *testing.T) string {
	t.Helper()
	var m struct {
		Error struct {
			Code, Message string
			Details       map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(tr.body, &m), "body: %s", tr.body)
	require.NotEmpty(t, m.Error.Message)
	require.Equal(t, "application/json", tr.header.Get("Content-Type"))
	return m.Error.Code
}

func TestTrickledBodyIsCut(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	sync := route("sync", config.ModeAll, "/sync", "crm")
	sync.Deadline = config.Duration(30 * time.Second)
	sync.BodyTimeout = config.Duration(200 * time.Millisecond)
	async := route("async", config.ModeAsync, "/async", "crm")
	async.BodyTimeout = config.Duration(200 * time.Millisecond)
	async.ContentType = "json"
	var timeouts atomic.Int32
	timedOut, requests := make(chan string, 10), make(chan int, 10)
	b := setup(t, newConfig([]*target{crm}, sync, async), setupOpts{hooks: gateway.Hooks{
		OnBodyTimeout: func(route string) { timeouts.Add(1); timedOut <- route },
		OnRequest:     func(_, _ string, status int, _ time.Duration) { requests <- status },
	}})
	addr := b.srv.Listener.Addr().String()

	for i, head := range []string{
		"POST /sync HTTP/1.1\r\nHost: fanout\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
		"POST /async HTTP/1.1\r\nHost: fanout\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
	} {
		got := trickle(t, addr, head)
		require.Equal(t, http.StatusRequestTimeout, got.status, "%s", got.body)
		require.Equal(t, "body_timeout", got.errorCode(t))
		require.True(t, got.close, "Connection: close")
		require.True(t, got.closed, "the server closes the connection")
		require.EqualValues(t, i+1, timeouts.Load(), "counted before the answer")
		require.Equal(t, []string{"sync", "async"}[i], <-timedOut)
		require.Equal(t, http.StatusRequestTimeout, <-requests, "the request is reported as answered 408, not as a client that left")
	}
	require.Zero(t, crm.hits.Load(), "nothing reached the target")
	require.Empty(t, b.enq.calls(), "nothing was stored")
}

// A request refused before its body is read (no route, too large) is
// answered at once, but net/http then reads up to 256 KiB of its body to
// keep the connection: that is bounded too, by the route's body_timeout
// or Options.NoRouteBodyTimeout.
func TestTrickledBodyOfRefusedRequestIsBounded(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	small := route("small", config.ModeAll, "/small", "crm")
	small.MaxBody = 16
	small.BodyTimeout = config.Duration(200 * time.Millisecond)
	b := setup(t, newConfig([]*target{crm}, small), setupOpts{noRouteBodyTimeout: 200 * time.Millisecond})
	for path, status := range map[string]int{"/nope": http.StatusNotFound, "/small": http.StatusRequestEntityTooLarge} {
		got := trickle(t, b.srv.Listener.Addr().String(),
			"POST "+path+" HTTP/1.1\r\nHost: fanout\r\nContent-Length: 100000\r\n\r\n")
		require.Equal(t, status, got.status, path)
		require.True(t, got.close, "Connection: close")
		require.True(t, got.closed)
	}
}

// Once the body is in, its deadline no longer applies: a target slower
// than body_timeout still answers.
func TestBodyTimeoutEndsWithTheBody(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 50 * time.Millisecond
	slow := newTarget(t, "slow", func(w http.ResponseWriter, r *http.Request, n int) {
		<-time.After(4 * bodyTimeout) // outlast the body's deadline, whatever the scheduler does
		_, _ = io.WriteString(w, "late")
	})
	rt := route("sync", config.ModeAll, "/sync", "slow")
	rt.BodyTimeout = config.Duration(bodyTimeout)
	b := setup(t, newConfig([]*target{slow}, rt))
	resp := b.post(t, "/sync", `{"a":1}`)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Equal(t, "late", resp.result(t, "slow")["body"])
}

func TestJSONBodyMustBeUTF8(t *testing.T) {
	t.Parallel()
	crm := newTarget(t, "crm", nil)
	rt := route("sync", config.ModeAll, "/sync", "crm")
	rt.ContentType = "json"
	b := setup(t, newConfig([]*target{crm}, rt))
	resp := b.post(t, "/sync", "{\"user\":\"ada\xff\", \"admin\": true}")
	require.Equal(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, "invalid_json", resp.errorCode(t))
	require.Equal(t, float64(13), resp.json(t)["error"].(map[string]any)["details"].(map[string]any)["offset"])
	require.Zero(t, crm.hits.Load())
	resp = b.post(t, "/sync", `{"user":"adà 🎉"}`)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
}

// headYAML has a GET route of every mode.
const headYAML = `
targets:
  a: {url: "A/in"}
  b: {url: "B/in"}
routes:
  - {name: all, match: {method: GET, path: /all}, mode: all, targets: [a, b]}
  - {name: settled, match: {method: GET, path: /settled}, mode: settled, targets: [a, b]}
  - {name: race, match: {method: GET, path: /race}, mode: race, targets: [a]}
  - {name: mirror, match: {method: GET, path: /mirror}, mode: mirror, primary: a, targets: [a, b], durable: false}
  - {name: async, match: {method: GET, path: /async}, mode: async, targets: [a]}
  - name: steps
    match: {method: GET, path: /steps}
    mode: steps
    steps:
      - {name: first, target: a}
      - {name: second, target: b, after: [first], headers: {X-First: "{{ .steps.first.body.target }}"}}
    respond: second
  - {name: post, match: {path: /post}, mode: all, targets: [a]}
`

// TestHeadServedLikeGet: HEAD on a route of GET is answered as GET is,
// without a body (RFC 9110 §9.3.2); the targets are asked HEAD, but the
// steps of a steps route run as GET since later steps need the responses.
func TestHeadServedLikeGet(t *testing.T) {
	t.Parallel()
	a, b := newTarget(t, "a", nil), newTarget(t, "b", nil)
	cfg := parseConfig(t, headYAML, map[string]string{"A/in": a.cfg.URL, "B/in": b.cfg.URL})
	gw := setup(t, cfg)
	do := func(method, path string) *response {
		req, err := http.NewRequest(method, gw.srv.URL+path, nil)
		require.NoError(t, err)
		return gw.do(t, req)
	}
	drain := func(tg *target) (methods []string) {
		for {
			select {
			case s := <-tg.reqs:
				methods = append(methods, s.Method)
			default:
				return methods
			}
		}
	}
	for _, tc := range []struct {
		path string
		// asked is the method the targets get for a HEAD.
		asked string
		// sameLength: the answer's Content-Length is that of the GET
		// (a proxied answer, or one that does not embed the targets').
		sameLength bool
	}{
		{"/all", http.MethodHead, false},
		{"/settled", http.MethodHead, false},
		{"/race", http.MethodHead, true},
		{"/mirror", http.MethodHead, true},
		{"/async", http.MethodHead, true},
		{"/steps", http.MethodGet, true},
	} {
		get := do(http.MethodGet, tc.path)
		require.Less(t, get.Status, 300, "GET %s: %s", tc.path, get.Body)
		if tc.path != "/async" { // stored, not delivered, by the fake queue
			eventually(t, func() bool { return len(a.reqs) > 0 && (tc.path != "/mirror" || len(b.reqs) > 0) }, "GET "+tc.path+" reached the targets")
		}
		drain(a)
		drain(b)

		head := do(http.MethodHead, tc.path)
		require.Equal(t, get.Status, head.Status, "HEAD %s", tc.path)
		require.Empty(t, head.Body, "HEAD %s", tc.path)
		require.Equal(t, get.Header.Get("Content-Type"), head.Header.Get("Content-Type"), "HEAD %s", tc.path)
		require.NotEmpty(t, head.Header.Get("Fanout-Message-Id"), "HEAD %s", tc.path)
		if tc.sameLength {
			require.Equal(t, get.Header.Get("Content-Length"), head.Header.Get("Content-Length"), "HEAD %s", tc.path)
		} else {
			require.Empty(t, head.Header.Get("Content-Length"), "HEAD %s: the length of an envelope of HEAD answers is not a GET's", tc.path)
		}
		if tc.path == "/async" {
			calls := gw.enq.calls()
			require.Equal(t, http.MethodHead, calls[len(calls)-1].Message.Method, "stored as HEAD")
			continue
		}
		eventually(t, func() bool { return len(a.reqs) > 0 && (tc.path != "/mirror" || len(b.reqs) > 0) }, "HEAD "+tc.path+" reached the targets")
		for _, m := range append(drain(a), drain(b)...) {
			require.Equal(t, tc.asked, m, "HEAD %s", tc.path)
		}
	}

	// 405 lists HEAD with GET, and HEAD is refused where GET is.
	resp := do(http.MethodDelete, "/all")
	require.Equal(t, http.StatusMethodNotAllowed, resp.Status)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	resp = do(http.MethodHead, "/post")
	require.Equal(t, http.StatusMethodNotAllowed, resp.Status)
	require.Equal(t, "POST", resp.Header.Get("Allow"))
}
