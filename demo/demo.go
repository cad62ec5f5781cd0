// Package demo is what `fanout serve` runs without a config file: built-in
// echo targets on loopback and one route per mode, so that a new user can
// try every mode with the curl lines it prints.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanouthq/fanout/config"
)

// Echo is an HTTP handler that reads the whole request body and answers 200
// with a small JSON description of what it received (with the
// Authorization header it got, if any). A path ending in /status/NNN
// answers NNN instead, and a "delay" query parameter (a Go duration)
// delays the answer: enough to show failures and slowness. A path ending in
// /token plays an auth API: it answers {"token":"t-NAME"} for a JSON body
// {"username":"NAME"}.
type Echo struct {
	// Name is reported in every answer.
	Name string
}

// ServeHTTP implements http.Handler.
func (e *Echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/token") {
		e.token(w, r)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil && d > 0 {
		select {
		case <-time.After(min(d, time.Minute)):
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if i := strings.LastIndex(r.URL.Path, "/status/"); i >= 0 {
		if s, err := strconv.Atoi(r.URL.Path[i+len("/status/"):]); err == nil && s >= 200 && s <= 599 {
			status = s
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	answer := map[string]any{
		"target":     e.Name,
		"method":     r.Method,
		"path":       r.URL.Path,
		"bytes":      n,
		"message_id": r.Header.Get("Fanout-Message-Id"),
		"attempt":    r.Header.Get("Fanout-Attempt"),
	}
	if a := r.Header.Get("Authorization"); a != "" {
		answer["authorization"] = a
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// token answers as a tiny auth API: {"token":"t-NAME"} for a JSON body
// {"username":"NAME"}, 401 without a username.
func (e *Echo) token(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || in.Username == "" {
		http.Error(w, `a JSON body {"username": "…"} is required`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": "t-" + in.Username})
}

// Targets runs the demo's echo targets on loopback until Close.
type Targets struct {
	// URLs of the echo servers by target name.
	URLs map[string]string

	servers []*http.Server
	wg      sync.WaitGroup
}

// targetNames are the demo's targets, each an echo server that reports
// its own name.
var targetNames = []string{"a", "b", "flaky", "authapi", "userdata"}

// StartTargets starts the demo's echo targets on free loopback ports: "a"
// and "b", "flaky" (which the config sends to /status/503), "authapi"
// (its /token) and "userdata".
func StartTargets(logger *slog.Logger) (*Targets, error) {
	t := &Targets{URLs: map[string]string{}}
	for _, name := range targetNames {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = t.Close(context.Background())
			return nil, fmt.Errorf("demo target %s: %w", name, err)
		}
		srv := &http.Server{Handler: &Echo{Name: name}, ReadHeaderTimeout: 10 * time.Second}
		t.servers = append(t.servers, srv)
		t.URLs[name] = "http://" + ln.Addr().String()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("demo target stopped", slog.String("target", name), slog.Any("error", err))
			}
		}()
	}
	return t, nil
}

// Close stops the echo targets.
func (t *Targets) Close(ctx context.Context) error {
	var errs []error
	for _, s := range t.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	t.wg.Wait()
	return errors.Join(errs...)
}

// Config returns the demo configuration: targets a and b, flaky (always
// 503), authapi (a token endpoint) and userdata, and one route per mode,
// storing messages in dbPath.
func Config(t *Targets, dbPath, adminToken string) (*config.Config, error) {
	yaml := fmt.Sprintf(`
admin: {token: %q}
store: {driver: sqlite, dsn: %q}
targets:
  a: {url: %q, timeout: 5s}
  b: {url: %q, timeout: 5s}
  flaky:
    url: %q
    timeout: 5s
    retry: {initial: 100ms, max: 2s, max_attempts: 5, sync_max_attempts: 2}
  authapi:  {url: %q, timeout: 5s}
  userdata: {url: %q, timeout: 5s}
routes:
  - {name: all,      match: {path: /all},      mode: all,     targets: [a, b]}
  - {name: settled,  match: {path: /settled},  mode: settled, targets: [a, b, flaky]}
  - {name: race,     match: {path: /race},     mode: race,    targets: [a, b]}
  - {name: mirror,   match: {path: /mirror},   mode: mirror,  primary: a, targets: [a, b]}
  - {name: async,    match: {path: /async},    mode: async,   targets: [a, b]}
  - name: signup-with-auth
    match: {path: /signup}
    mode: steps
    steps:
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.user }}}'}
      - {name: data, target: userdata, after: [auth], headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
    respond: data
  - name: signup-async
    match: {path: /signup-async}
    mode: steps
    async: true
    steps:
      - {name: auth, target: authapi, body: '{"username": {{ json .request.body.user }}}'}
      - {name: data, target: userdata, after: [auth], headers: {Authorization: "Bearer {{ .steps.auth.body.token }}"}}
`, adminToken, dbPath, t.URLs["a"]+"/a", t.URLs["b"]+"/b", t.URLs["flaky"]+"/flaky/status/503", t.URLs["authapi"]+"/auth/token", t.URLs["userdata"]+"/users")
	cfg, err := config.Parse("demo.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	cfg.File = ""
	return cfg, nil
}

// Instructions returns the curl lines that exercise each demo route.
func Instructions(dataURL, adminURL, adminToken string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fanout demo: echo targets (a, b; flaky always answers 503; authapi and userdata for steps) and one route per mode.\n\n")
	line := func(comment, cmd string) { fmt.Fprintf(&b, "  # %s\n  %s\n\n", comment, cmd) }
	body := `-H 'Content-Type: application/json' -d '{"user":"ada"}'`
	line("all: both targets must succeed; 200 + every result", fmt.Sprintf("curl -s %s %s/all", body, dataURL))
	line("settled: every outcome, even the failing one (flaky answers 503)", fmt.Sprintf("curl -s %s %s/settled", body, dataURL))
	line("race: the first success, proxied as is", fmt.Sprintf("curl -s %s %s/race", body, dataURL))
	line("mirror: a's response; b gets a durable copy", fmt.Sprintf("curl -s %s %s/mirror", body, dataURL))
	line("steps: get a token from authapi, then send the data to userdata with it; userdata's response", fmt.Sprintf("curl -s %s %s/signup", body, dataURL))
	line("steps, async: 202 once stored, with the message's status_url; auth, then data with the token, run by the durable queue", fmt.Sprintf("curl -s %s %s/signup-async", body, dataURL))
	line("async: 202 once stored, with its status_url; delivered to a and b with retries (again: 200, the same id, Idempotent-Replayed: true)", fmt.Sprintf("curl -s -i %s -H 'Idempotency-Key: demo-1' %s/async", body, dataURL))
	line("list the async messages and their steps (to follow one, curl the status_url of its 202 with this header)", fmt.Sprintf("curl -s -H 'Authorization: Bearer %s' %s/v1/messages", adminToken, adminURL))
	return b.String()
}
