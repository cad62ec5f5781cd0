package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// api is a downstream API of the steps tests: it records each request,
// then runs its handler with the body still readable.
type api struct {
	srv  *httptest.Server
	reqs chan seen
	hits atomic.Int32
}

func newAPI(t *testing.T, h http.HandlerFunc) *api {
	t.Helper()
	a := &api{reqs: make(chan seen, 64)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.hits.Add(1)
		a.reqs <- seen{Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body)}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) next(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-a.reqs:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the API saw no request")
		return seen{}
	}
}

// authAPI answers {"token":"t-123"} to {"username":"ada"} and 401 to
// anything else.
func authAPI(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Username != "ada" {
		http.Error(w, "who are you?", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"token":"t-123"}`)
}

// dataAPI requires "Authorization: Bearer t-123" and stores the user
// data: 201 with {"stored": <the body>}.
func dataAPI(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer t-123" {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-User-Store", "v2")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"stored":`+string(body)+`}`)
}

// parseConfig parses yaml after replacing each key of urls by its value.
func parseConfig(t *testing.T, yaml string, urls map[string]string) *config.Config {
	t.Helper()
	var pairs []string
	for k, v := range urls {
		pairs = append(pairs, k, v)
	}
	cfg, err := config.Parse("fanout.yaml", []byte(strings.NewReplacer(pairs...).Replace(yaml)), nil)
	require.NoError(t, err)
	return cfg
}

// signupYAML is the seeds' scenario: authenticate, then send the user
// data with the token; as a respond route and as an envelope route.
const signupYAML = `
targets:
  authapi: {url: "AUTH/v1/token", retry: {initial: 1ms, max: 5ms}}
  userdata: {url: "DATA/v1/users", retry: {initial: 1ms, max: 5ms}}
routes:
  - name: signup-with-auth
    match: {method: POST, path: /signup}
    mode: steps
    deadline: 5s
    steps: &signup
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.username }}}'}
      - {name: data, target: userdata, after: [auth],
         headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
    respond: data
  - name: signup-envelope
    match: {method: POST, path: /signup-envelope}
    mode: steps
    deadline: 5s
    steps: *signup
`

type signupBundle struct {
	*bundle
	auth, data *api
}

func setupSignup(t *testing.T) *signupBundle {
	t.Helper()
	auth, data := newAPI(t, authAPI), newAPI(t, dataAPI)
	cfg := parseConfig(t, signupYAML, map[string]string{"AUTH": auth.srv.URL, "DATA": data.srv.URL})
	return &signupBundle{bundle: setup(t, cfg), auth: auth, data: data}
}

func (b *signupBundle) send(t *testing.T, path, body string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	// What curl -d sends: not JSON, as far as the header goes.
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

func TestStepsAuthThenData(t *testing.T) {
	t.Parallel()
	b := setupSignup(t)
	const user = `{"username":"ada","email":"ada@example.com"}`

	resp := b.send(t, "/signup", user)

	// The data API's response, proxied as is.
	require.Equal(t, http.StatusCreated, resp.Status, "body: %s", resp.Body)
	require.JSONEq(t, `{"stored":`+user+`}`, string(resp.Body))
	require.Equal(t, "v2", resp.Header.Get("X-User-Store"))
	require.Equal(t, "userdata", resp.Header.Get("Fanout-Target"))
	id := resp.Header.Get("Fanout-Message-Id")
	require.True(t, strings.HasPrefix(id, "msg_"), id)

	got := b.auth.next(t)
	require.Equal(t, "/v1/token", got.URI)
	require.JSONEq(t, `{"username":"ada"}`, got.Body, "the auth step's body template")
	require.Equal(t, "application/json", got.Header.Get("Content-Type"), "a JSON body template sets the content type")
	require.Equal(t, "auth", got.Header.Get(gateway.HeaderStep))
	require.Equal(t, id, got.Header.Get("Fanout-Message-Id"))
	require.Equal(t, id+".auth", got.Header.Get("Idempotency-Key"), "each step is its own operation")

	got = b.data.next(t)
	require.Equal(t, "Bearer t-123", got.Header.Get("Authorization"))
	require.Equal(t, user, got.Body, "a step without body gets the inbound body")
	require.Equal(t, id+".data", got.Header.Get("Idempotency-Key"))
	require.Equal(t, "data", got.Header.Get(gateway.HeaderStep))
}

func TestStepsEnvelope(t *testing.T) {
	t.Parallel()
	b := setupSignup(t)

	resp := b.send(t, "/signup-envelope", `{"username":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)
	m := resp.json(t)
	require.Equal(t, "steps", m["mode"])
	auth, data := resp.result(t, "auth"), resp.result(t, "data")
	require.Equal(t, true, auth["ok"])
	// The data step's Authorization template reads .steps.auth.body.token:
	// the token is secret, and the envelope masks it (docs/security.md).
	require.Equal(t, map[string]any{"token": "[REDACTED]"}, auth["body"])
	require.NotContains(t, string(resp.Body), "t-123")
	require.Equal(t, true, data["ok"])
	require.Equal(t, float64(http.StatusCreated), data["status"])
	require.Equal(t, float64(1), data["attempts"])
}

func TestStepsFailedStepSkipsTheStepsAfterIt(t *testing.T) {
	t.Parallel()
	b := setupSignup(t)

	for _, path := range []string{"/signup", "/signup-envelope"} {
		resp := b.send(t, path, `{"username":"bob"}`)
		require.Equal(t, http.StatusBadGateway, resp.Status, path)
		auth := resp.result(t, "auth")
		require.Equal(t, false, auth["ok"])
		require.Equal(t, float64(http.StatusUnauthorized), auth["status"])
		require.Equal(t, float64(1), auth["attempts"], "a 401 is not retried")

		var env struct{ Results map[string]json.RawMessage }
		require.NoError(t, json.Unmarshal(resp.Body, &env))
		require.JSONEq(t, `{"ok":false,"skipped":true,"error":{"class":"skipped","message":"depends on failed step auth"}}`, string(env.Results["data"]), "the skipped step, exactly")
	}
	require.Zero(t, b.data.hits.Load(), "a skipped step makes no call")
}

func TestStepsSkipIsTransitiveAndOthersRun(t *testing.T) {
	t.Parallel()
	fail := newAPI(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) })
	ok := newAPI(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fine") })
	cfg := parseConfig(t, `
targets:
  fail: {url: "FAIL/"}
  ok: {url: "OK/"}
routes:
  - name: chain
    match: {path: /chain}
    mode: steps
    steps:
      - {name: a, target: fail}
      - {name: b, target: ok, after: [a]}
      - {name: c, target: ok, after: [b]}
      - {name: other, target: ok}
`, map[string]string{"FAIL": fail.srv.URL, "OK": ok.srv.URL})
	b := setup(t, cfg)

	resp := b.post(t, "/chain", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	require.Equal(t, "depends on failed step a", resp.result(t, "c")["error"].(map[string]any)["message"])
	require.Equal(t, true, resp.result(t, "b")["skipped"])
	other := resp.result(t, "other")
	require.Equal(t, true, other["ok"], "a step that does not depend on the failure runs")
	require.Equal(t, "fine", other["body"])
	require.Equal(t, int32(1), ok.hits.Load())
}

func TestStepsRunConcurrentlyThenJoin(t *testing.T) {
	t.Parallel()
	// a and b each wait until both have arrived: the route only succeeds
	// when they run at the same time.
	var arrived atomic.Int32
	both := make(chan struct{})
	var once sync.Once
	barrier := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if arrived.Add(1) == 2 {
				once.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(5 * time.Second):
				http.Error(w, "alone", http.StatusConflict)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	a, bAPI := newAPI(t, barrier(`{"n":1}`)), newAPI(t, barrier(`{"n":2,"tags":["x"]}`))
	join := newAPI(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	cfg := parseConfig(t, `
targets:
  a: {url: "A/"}
  b: {url: "B/"}
  join: {url: "JOIN/"}
routes:
  - name: fan-in
    match: {path: /fan-in}
    mode: steps
    steps:
      - {name: a, target: a}
      - {name: b, target: b}
      - {name: both, target: join, after: [a, b],
         body: '{"a": {{ json .steps.a.body }}, "b": {{ .steps.b.body.n }}, "tag": {{ json (index .steps.b.body.tags 0) }}, "status": {{ .steps.a.status }}}'}
`, map[string]string{"A": a.srv.URL, "B": bAPI.srv.URL, "JOIN": join.srv.URL})
	gw := setup(t, cfg)

	resp := gw.post(t, "/fan-in", `{}`)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)
	require.JSONEq(t, `{"a":{"n":1},"b":2,"tag":"x","status":200}`, join.next(t).Body)
}

func TestStepsRetryWithTheSameIdempotencyKey(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	flaky := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		authAPI(w, r)
	})
	data := newAPI(t, dataAPI)
	b := setup(t, parseConfig(t, signupYAML, map[string]string{"AUTH": flaky.srv.URL, "DATA": data.srv.URL}))

	resp := b.post(t, "/signup-envelope", `{"username":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)
	require.Equal(t, float64(2), resp.result(t, "auth")["attempts"])
	first, second := flaky.next(t), flaky.next(t)
	require.Equal(t, first.Header.Get("Idempotency-Key"), second.Header.Get("Idempotency-Key"))
	require.Equal(t, "2", second.Header.Get("Fanout-Attempt"))
}

func TestStepsTemplateFailureFailsTheStep(t *testing.T) {
	t.Parallel()
	auth := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"t-123"}`) // not "token"
	})
	data := newAPI(t, dataAPI)
	b := setup(t, parseConfig(t, signupYAML, map[string]string{"AUTH": auth.srv.URL, "DATA": data.srv.URL}))

	resp := b.post(t, "/signup", `{"username":"ada"}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	res := resp.result(t, "data")
	require.Equal(t, false, res["ok"])
	require.Equal(t, float64(0), res["attempts"])
	require.Equal(t, map[string]any{
		"class":   "template",
		"message": `step "data": template headers.Authorization: {{.steps.auth.body.token}}: map has no entry for key "token"`,
	}, res["error"])
	require.Zero(t, data.hits.Load())
	require.Len(t, b.logs.lines(t, "template failed"), 1)
}

func TestStepsPathMethodAndEscaping(t *testing.T) {
	t.Parallel()
	users := newAPI(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	cfg := parseConfig(t, `
targets:
  users: {url: "USERS/api/?key=k"}
routes:
  - name: orders
    match: {method: PUT, path: "/users/{id}/orders"}
    mode: steps
    steps:
      - {name: list, target: users, method: get,
         path: '/users/{{ .request.path_params.id }}/orders?q={{ .request.query.q }}&n={{ .request.body.n }}'}
      - {name: put, target: users, after: [list], path: '/x'}
`, map[string]string{"USERS": users.srv.URL})
	b := setup(t, cfg)

	req, err := http.NewRequest(http.MethodPut, b.srv.URL+"/users/42/orders?"+url.Values{"q": {"a/b c&d=é"}}.Encode(), strings.NewReader(`{"n":7}`))
	require.NoError(t, err)
	resp := b.do(t, req)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)

	got := users.next(t)
	require.Equal(t, http.MethodGet, got.Method)
	require.Equal(t, "/api/users/42/orders?key=k&q=a%2Fb%20c%26d%3D%C3%A9&n=7", got.URI)
	require.Empty(t, got.Body, "a GET step without body template sends none")
	got = users.next(t)
	require.Equal(t, http.MethodPut, got.Method, "the inbound method")
	require.Equal(t, "/api/x?key=k", got.URI)
	require.Equal(t, `{"n":7}`, got.Body)
}

func TestStepsRespondWithStepsAfterIt(t *testing.T) {
	t.Parallel()
	b := setupSignup(t)
	cfg := parseConfig(t, `
targets:
  authapi: {url: "AUTH/token"}
  userdata: {url: "DATA/users"}
routes:
  - name: token
    match: {path: /token}
    mode: steps
    steps:
      - {name: auth, target: authapi}
      - {name: data, target: userdata, after: [auth], headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
    respond: auth
`, map[string]string{"AUTH": b.auth.srv.URL, "DATA": b.data.srv.URL})
	gw := setup(t, cfg)

	// auth's response is buffered (data uses it), then passed on.
	resp := gw.post(t, "/token", `{"username":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)
	require.Equal(t, `{"token":"t-123"}`, string(resp.Body))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Equal(t, "17", resp.Header.Get("Content-Length"))
	require.Equal(t, "authapi", resp.Header.Get("Fanout-Target"))
	require.Equal(t, int32(1), b.data.hits.Load())
}

func TestStepsRespondStepSucceededButAnotherFailed(t *testing.T) {
	t.Parallel()
	ok := newAPI(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "the answer") })
	fail := newAPI(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusNotFound) })
	cfg := parseConfig(t, `
targets:
  ok: {url: "OK/"}
  fail: {url: "FAIL/"}
routes:
  - name: r
    match: {path: /r}
    mode: steps
    steps: [{name: answer, target: ok}, {name: audit, target: fail}]
    respond: answer
`, map[string]string{"OK": ok.srv.URL, "FAIL": fail.srv.URL})
	b := setup(t, cfg)

	resp := b.post(t, "/r", `{}`)
	require.Equal(t, http.StatusBadGateway, resp.Status)
	answer := resp.result(t, "answer")
	require.Equal(t, true, answer["ok"])
	require.Equal(t, "the answer", answer["body"], "the streamed response is read for the envelope")
	require.Equal(t, "status", resp.result(t, "audit")["error"].(map[string]any)["class"])
}

func TestStepsCompileRefusesBadDAGs(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "t", nil)
	for name, steps := range map[string][]*config.Step{
		"cycle":        {{Name: "a", Target: "t", After: []string{"b"}}, {Name: "b", Target: "t", After: []string{"a"}}},
		"unknown step": {{Name: "a", Target: "t", After: []string{"z"}}},
		"no steps":     nil,
		"bad template": {{Name: "a", Target: "t", Body: "{{"}},
	} {
		rc := route("s", config.ModeSteps, "/s")
		rc.Steps = steps
		_, err := gateway.New(newConfig([]*target{tg}, rc), gateway.Options{})
		require.Error(t, err, name)
	}
}

func TestBodyMappingInSyncModes(t *testing.T) {
	t.Parallel()
	crm, analytics := newTarget(t, "crm", nil), newTarget(t, "analytics", nil)
	all := route("all", config.ModeAll, "/users/{id}", "crm", "analytics")
	all.Targets[0].Body = `{"contact": {{ json .request.body }}, "id": {{ json .request.path_params.id }}}`
	race := route("race", config.ModeRace, "/race", "crm")
	race.Targets[0].Body = `{{ .request.body.name }}`
	settled := route("settled", config.ModeSettled, "/settled", "crm", "analytics")
	settled.Targets[0].Body = `{{ .request.body.missing }}`
	b := setup(t, newConfig([]*target{crm, analytics}, all, race, settled))

	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/users/42", strings.NewReader(`{"name":"ada"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp := b.do(t, req)
	require.Equal(t, http.StatusOK, resp.Status, "body: %s", resp.Body)
	got := crm.next(t)
	require.JSONEq(t, `{"contact":{"name":"ada"},"id":"42"}`, got.Body)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	got = analytics.next(t)
	require.Equal(t, `{"name":"ada"}`, got.Body, "a target without body template gets the inbound body")
	require.Equal(t, "text/plain", got.Header.Get("Content-Type"))

	resp = b.post(t, "/race", `{"name":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, "ada", crm.next(t).Body)

	// A body that does not render fails that target only, without a call.
	resp = b.post(t, "/settled", `{"name":"ada"}`)
	require.Equal(t, http.StatusOK, resp.Status)
	res := resp.result(t, "crm")
	require.Equal(t, false, res["ok"])
	require.Equal(t, "template", res["error"].(map[string]any)["class"])
	require.Contains(t, res["error"].(map[string]any)["message"], `target "crm": template body: {{.request.body.missing}}: map has no entry for key "missing"`)
	require.Equal(t, true, resp.result(t, "analytics")["ok"])
	require.Equal(t, `{"name":"ada"}`, analytics.next(t).Body)
	require.Equal(t, int32(2), crm.hits.Load())
}

func TestBodyMappingLeavesTheQueuedMessageAsReceived(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "t", nil)
	async := route("async", config.ModeAsync, "/a", "t")
	async.Targets[0].Body = `{"wrapped": {{ json .request.body }}}`
	b := setup(t, newConfig([]*target{tg}, async))

	resp := b.post(t, "/a", `{"name":"ada"}`)
	require.Equal(t, http.StatusAccepted, resp.Status)
	calls := b.enq.calls()
	require.Len(t, calls, 1)
	require.Equal(t, `{"name":"ada"}`, string(calls[0].Message.Body), "the queue renders the template when it delivers")
}
