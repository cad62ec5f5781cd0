package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stepsAPIs stands in for the seeds' two APIs: auth answers a token made
// of the username; data takes the user with that token once up is set
// (503 before), and records what it got.
type stepsAPIs struct {
	up atomic.Bool

	mu        sync.Mutex
	authCalls map[string]int    // message id → calls
	dataAuth  map[string]string // message id → Authorization of the call that succeeded
	dataCalls map[string]int
}

func (a *stepsAPIs) auth(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	a.mu.Lock()
	a.authCalls[r.Header.Get("Fanout-Message-Id")]++
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"token":"tok-%s"}`, in.Username)
}

func (a *stepsAPIs) data(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("Fanout-Message-Id")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dataCalls[id]++
	if !a.up.Load() {
		a.mu.Unlock()
		// Slow to fail, so that data steps are in flight when the
		// process is killed: their leases must expire before the next
		// process takes them over.
		time.Sleep(100 * time.Millisecond)
		a.mu.Lock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	a.dataAuth[id] = r.Header.Get("Authorization")
	w.WriteHeader(http.StatusCreated)
}

// stepStates reads the step states of a message from the admin API.
func stepStates(t *testing.T, admin, id string) map[string]string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+"/v1/messages/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var m struct {
		Deliveries []struct{ Step, State string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	out := map[string]string{}
	for _, d := range m.Deliveries {
		out[d.Step] = d.State
	}
	return out
}

// TestAsyncStepsSurviveKill runs the seeds' scenario durably: messages of
// an async steps route are accepted (202) while the data API is down; once
// every auth step has succeeded the process is SIGKILLed; the data API
// comes back and a new process sends each user's data with the token auth
// gave before the kill, without calling auth again.
func TestAsyncStepsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	apis := &stepsAPIs{authCalls: map[string]int{}, dataAuth: map[string]string{}, dataCalls: map[string]int{}}
	authAddr, dataAddr := freeAddr(t), freeAddr(t)
	serveOn(t, authAddr, http.HandlerFunc(apis.auth))
	serveOn(t, dataAddr, http.HandlerFunc(apis.data))
	listen, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {dsn: %q}
# Data steps in flight when the process is killed are taken over when
# their lease expires.
delivery: {lease_timeout: 2s}
targets:
  authapi: {url: "http://%s/v1/token", timeout: 1s, retry: {initial: 20ms, max: 200ms}}
  userdata: {url: "http://%s/v1/users", timeout: 1s, retry: {initial: 20ms, max: 200ms, max_attempts: 1000}}
routes:
  - name: signup
    match: {method: POST, path: /signup}
    mode: steps
    async: true
    steps:
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.username }}}'}
      - {name: data, target: userdata, after: [auth],
         headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
`, listen, admin, filepath.Join(dir, "fanout.db"), authAddr, dataAddr))

	p := startFanout(t, cfgPath, listen, admin)
	users := map[string]string{} // message id → username
	for i := range 20 {
		user := fmt.Sprintf("user%02d", i)
		status, _, body, err := post(context.Background(), "http://"+listen+"/signup", `{"username":"`+user+`"}`, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, string(body))
		var got struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &got))
		users[got.ID] = user
	}
	waitFor(t, 20*time.Second, "every auth step succeeded and every data step tried", func() bool {
		for id := range users {
			s := stepStates(t, admin, id)
			if s["auth"] != "succeeded" || (s["data"] != "retrying" && s["data"] != "delivering") {
				return false
			}
		}
		return true
	})
	p.kill()

	apis.up.Store(true)
	p = startFanout(t, cfgPath, listen, admin)
	waitFor(t, 30*time.Second, "every user's data delivered", func() bool {
		apis.mu.Lock()
		defer apis.mu.Unlock()
		return len(apis.dataAuth) == len(users)
	})
	apis.mu.Lock()
	for id, user := range users {
		require.Equal(t, "Bearer tok-"+user, apis.dataAuth[id], "message %s", id)
		require.Equal(t, 1, apis.authCalls[id], "auth of message %s ran again after the restart", id)
		require.GreaterOrEqual(t, apis.dataCalls[id], 2, "message %s: the data step was tried before the kill", id)
	}
	apis.mu.Unlock()
	waitFor(t, 10*time.Second, "every data step recorded as succeeded", func() bool {
		for id := range users {
			if stepStates(t, admin, id)["data"] != "succeeded" {
				return false
			}
		}
		return true
	})
	require.NoError(t, p.stop(15*time.Second))
}
