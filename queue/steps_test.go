package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/sqlite"
)

// asyncSignupYAML is the seeds' scenario run durably: authenticate, then
// send the user data with the token.
const asyncSignupYAML = `
targets:
  authapi: {url: "AUTH/v1/token", retry: {initial: 10ms, max: 50ms, max_attempts: 20}}
  userdata: {url: "DATA/v1/users", retry: {initial: 10ms, max: 50ms, max_attempts: 20}}
routes:
  - name: signup
    match: {method: POST, path: "/signup/{plan}"}
    mode: steps
    async: true
    steps:
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.username }}}'}
      - {name: data, target: userdata, after: [auth], path: "/{{ .request.path_params.plan }}",
         headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
`

// signupConfig parses asyncSignupYAML with the targets' base URLs.
func signupConfig(t *testing.T, auth, data string) *config.Config {
	t.Helper()
	y := strings.NewReplacer("AUTH", auth, "DATA", data).Replace(asyncSignupYAML)
	cfg, err := config.Parse("fanout.yaml", []byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// signupSteps is what the gateway stores for a message of the route.
var signupSteps = []fanout.AcceptStep{
	{Name: "auth", Target: "authapi"},
	{Name: "data", Target: "userdata", After: []string{"auth"}},
}

// acceptSignup stores one message of the signup route for user.
func acceptSignup(t *testing.T, st fanout.Store, user string) string {
	t.Helper()
	p := newMessage("signup")
	p.Message.Path = "/signup/pro"
	p.Message.Body = []byte(`{"username":"` + user + `","plan":"pro"}`)
	p.Targets, p.Steps = nil, signupSteps
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := st.Accept(ctx, []fanout.AcceptParams{p})
	require.NoError(t, err)
	return res[0].MessageID
}

// authHandler answers a token made of the username it was sent.
func authHandler(w http.ResponseWriter, r *http.Request, _ string, _ int) {
	var in struct{ Username string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"token":"tok-%s"}`, in.Username)
}

// stepState returns the state of a step of message id.
func stepState(t testing.TB, st fanout.Store, id, step string) fanout.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := st.GetMessage(ctx, id)
	require.NoError(t, err)
	for _, d := range m.Deliveries {
		if d.Step == step {
			return d
		}
	}
	t.Fatalf("message %s has no step %s", id, step)
	return fanout.Delivery{}
}

func TestAsyncStepsSendTheTokenOn(t *testing.T) {
	st := openStore(t)
	auth := newTarget(t, authHandler)
	// The data API fails twice per message before it takes it: the step
	// is retried with the same token, and auth is not called again.
	data := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ string, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	startDispatcher(t, st, signupConfig(t, auth.srv.URL, data.srv.URL), DispatcherOptions{IdlePoll: 50 * time.Millisecond})

	ids := []string{acceptSignup(t, st, "ada"), acceptSignup(t, st, "bob")}
	require.EventuallyWithT(t, func(c *assertCollect) {
		for _, id := range ids {
			assert.Equal(c, fanout.StateSucceeded, stepState(t, st, id, "data").State)
		}
	}, waitFor, 10*time.Millisecond)

	for i, id := range ids {
		user := []string{"ada", "bob"}[i]
		a := auth.requestsFor(id)
		require.Len(t, a, 1, "auth runs once per message")
		require.JSONEq(t, `{"username":"`+user+`"}`, string(a[0].Body))
		require.Equal(t, "auth", a[0].Header.Get("Fanout-Step"))
		require.Equal(t, id+".auth", a[0].Header.Get("Idempotency-Key"))

		d := data.requestsFor(id)
		require.Len(t, d, 3)
		for _, r := range d {
			require.Equal(t, "Bearer tok-"+user, r.Header.Get("Authorization"))
			require.Equal(t, "data", r.Header.Get("Fanout-Step"))
			require.Equal(t, id+".data", r.Header.Get("Idempotency-Key"))
			require.JSONEq(t, `{"username":"`+user+`","plan":"pro"}`, string(r.Body), "no body template: the inbound body")
		}
		del := stepState(t, st, id, "data")
		require.Equal(t, 3, del.Attempts)
		require.Equal(t, []string{"auth"}, del.After)
		require.Equal(t, "userdata", del.Target)
		at := attemptsOf(t, st, id, "userdata")
		require.Len(t, at, 3)
		require.True(t, strings.HasSuffix(at[2].RequestURL, "/v1/users/pro"), at[2].RequestURL)
	}
}

func TestAsyncStepsFailedStepSkipsTheRest(t *testing.T) {
	st := openStore(t)
	var fixed atomic.Bool
	auth := newTarget(t, func(w http.ResponseWriter, r *http.Request, id string, n int) {
		if !fixed.Load() {
			w.WriteHeader(http.StatusUnauthorized) // not retryable
			return
		}
		authHandler(w, r, id, n)
	})
	data := newTarget(t, nil)
	startDispatcher(t, st, signupConfig(t, auth.srv.URL, data.srv.URL), DispatcherOptions{IdlePoll: 50 * time.Millisecond})

	id := acceptSignup(t, st, "eve")
	require.EventuallyWithT(t, func(c *assertCollect) {
		assert.Equal(c, fanout.StateSkipped, stepState(t, st, id, "data").State)
	}, waitFor, 10*time.Millisecond)
	require.Equal(t, fanout.StateDead, stepState(t, st, id, "auth").State)
	d := stepState(t, st, id, "data")
	require.Equal(t, fanout.ClassSkipped, d.LastClass)
	require.Contains(t, d.LastError, "auth")
	require.Zero(t, d.Attempts)
	require.Empty(t, data.requests())

	// Fixed and replayed, the message runs to the end.
	fixed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	n, err := st.Replay(ctx, fanout.ReplayParams{MessageID: id, Now: time.Now()})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.EventuallyWithT(t, func(c *assertCollect) {
		assert.Equal(c, fanout.StateSucceeded, stepState(t, st, id, "data").State)
	}, waitFor, 10*time.Millisecond)
	require.Equal(t, "Bearer tok-eve", data.requestsFor(id)[0].Header.Get("Authorization"))
}

// TestAsyncStepsResumeAfterRestart stops the dispatcher and closes the
// store while the data API is down, after auth succeeded: the next process
// sends the data with the stored token, without calling auth again.
func TestAsyncStepsResumeAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fanout.db")
	open := func() *sqlite.Store {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		require.NoError(t, st.Migrate(ctx))
		return st
	}
	auth := newTarget(t, authHandler)
	dataAddr := freeAddr(t) // nothing listens yet: connection refused
	cfg := signupConfig(t, auth.srv.URL, "http://"+dataAddr)

	st := open()
	r := startDispatcher(t, st, cfg, DispatcherOptions{IdlePoll: 50 * time.Millisecond})
	id := acceptSignup(t, st, "ada")
	require.EventuallyWithT(t, func(c *assertCollect) {
		d := stepState(t, st, id, "data")
		assert.Equal(c, fanout.StateRetrying, d.State)
		assert.GreaterOrEqual(c, d.Attempts, 1)
	}, waitFor, 10*time.Millisecond)
	require.Equal(t, fanout.StateSucceeded, stepState(t, st, id, "auth").State)
	r.stop(t)
	require.NoError(t, st.Close())

	ln, err := net.Listen("tcp", dataAddr)
	require.NoError(t, err)
	data := newTargetOn(t, ln, nil)
	st = open()
	t.Cleanup(func() { _ = st.Close() })
	startDispatcher(t, st, cfg, DispatcherOptions{IdlePoll: 50 * time.Millisecond})
	require.EventuallyWithT(t, func(c *assertCollect) {
		assert.Equal(c, fanout.StateSucceeded, stepState(t, st, id, "data").State)
	}, waitFor, 10*time.Millisecond)
	require.Len(t, auth.requestsFor(id), 1, "auth is not called again")
	got := data.requestsFor(id)
	require.Len(t, got, 1)
	require.Equal(t, "Bearer tok-ada", got[0].Header.Get("Authorization"))
}
