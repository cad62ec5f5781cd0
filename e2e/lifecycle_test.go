package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGracefulShutdownReleasesLeases sends messages to a slow target, sends
// SIGTERM while attempts are in flight, and checks that the process exits 0
// and that a restarted process delivers the rest at once: leases were
// released, not left to expire (the lease timeout is 10 minutes here).
func TestGracefulShutdownReleasesLeases(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	rec := newRecorder()
	var inFlight atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		rec.ServeHTTP(w, r)
	})
	tAddr := freeAddr(t)
	serveOn(t, tAddr, slow)
	listen, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {dsn: %q}
shutdown_timeout: 5s
delivery: {lease_timeout: 10m}
targets:
  slow: {url: "http://%s/", timeout: 5s, max_in_flight: 4, retry: {initial: 10ms, max: 100ms}}
routes:
  - {name: ingest, match: {path: /ingest}, mode: async, targets: [slow]}
`, listen, admin, filepath.Join(dir, "fanout.db"), tAddr))

	p := startFanout(t, cfgPath, listen, admin)
	ids := map[string]bool{}
	for i := 0; i < 40; i++ {
		status, _, body, err := post(context.Background(), "http://"+listen+"/ingest", `{}`, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, string(body))
		var got struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &got))
		ids[got.ID] = true
	}
	waitFor(t, 10*time.Second, "attempts in flight", func() bool { return inFlight.Load() > 0 })
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15s after SIGTERM")
	}
	require.NoError(t, p.err, "exit status after SIGTERM; logs:\n%s", p.logs.String())

	p = startFanout(t, cfgPath, listen, admin)
	// 40 messages at 4 in flight and 300ms each take about 3s; an unreleased
	// lease would hold its delivery for 10 minutes.
	waitFor(t, 30*time.Second, "every message delivered after restart", func() bool { return rec.missing(ids) == 0 })
	require.NoError(t, p.stop(15*time.Second))
}

// TestConfigReload changes the config file under a running process and
// sends SIGHUP: a valid change takes effect, an invalid one is refused and
// the old config keeps serving.
func TestConfigReload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	tAddr := freeAddr(t)
	serveOn(t, tAddr, newRecorder())
	listen, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	base := fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {dsn: %q}
targets:
  t: {url: "http://%s/"}
routes:
  - {name: one, match: {path: /one}, mode: all, targets: [t]}
`, listen, admin, filepath.Join(dir, "fanout.db"), tAddr)
	writeFile(t, cfgPath, base)
	p := startFanout(t, cfgPath, listen, admin)

	status := func(path string) int {
		s, _, _, err := post(context.Background(), "http://"+listen+path, `{}`, nil)
		require.NoError(t, err)
		return s
	}
	require.Equal(t, http.StatusOK, status("/one"))
	require.Equal(t, http.StatusNotFound, status("/two"))

	// File change: picked up by the watcher.
	writeFile(t, cfgPath, base+"  - {name: two, match: {path: /two}, mode: settled, targets: [t]}\n")
	waitFor(t, 10*time.Second, "route two after the file changed", func() bool { return status("/two") == http.StatusOK })

	// An invalid config is refused; the old one keeps serving.
	writeFile(t, cfgPath, base+"  - {name: three, match: {path: /three}, mode: all, targets: [nosuch]}\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitFor(t, 10*time.Second, "the refusal in the logs", func() bool { return strings.Contains(p.logs.String(), "nosuch") })
	require.Equal(t, http.StatusOK, status("/two"))
	require.Equal(t, http.StatusNotFound, status("/three"))

	// SIGHUP alone applies a valid file.
	writeFile(t, cfgPath, base+"  - {name: three, match: {path: /three}, mode: all, targets: [t]}\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitFor(t, 10*time.Second, "route three after SIGHUP", func() bool { return status("/three") == http.StatusOK })
	require.Equal(t, http.StatusNotFound, status("/two"))
	require.NoError(t, p.stop(15*time.Second))
}

// TestDemo runs `fanout serve` without a config and runs every curl line it
// prints, exactly as printed.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	listen, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(binary, "serve", "--listen", listen, "--admin-listen", admin)
	cmd.Env = append(os.Environ(), "FANOUT_CONFIG=")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "curl ") {
			lines = append(lines, l)
		}
		if strings.Contains(l, "/v1/messages") {
			break
		}
	}
	require.Len(t, lines, 8, "curl lines printed by the demo; logs:\n%s", logs.String())
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(devNull{}) }()

	want := []*regexp.Regexp{
		regexp.MustCompile(`"mode":"all".*"a":\{"ok":true`),
		regexp.MustCompile(`"flaky":\{"ok":false,"status":503`),
		regexp.MustCompile(`"target":"(a|b)"`),
		regexp.MustCompile(`"target":"a"`),
		regexp.MustCompile(`"authorization":"Bearer t-ada".*"target":"userdata"`),
		regexp.MustCompile(`"status_url":"http://`),
		regexp.MustCompile(`(?s)^HTTP/1.1 202 .*"status_url":"http://`),
		regexp.MustCompile(`"messages":\[.*"step":"data","after":\["auth"\]`),
	}
	run := func(line string) string {
		t.Helper()
		out, err := exec.Command("sh", "-c", line).CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		return string(out)
	}
	outs := make([]string, len(lines))
	for i, line := range lines {
		outs[i] = run(line)
		require.Regexp(t, want[i], outs[i], line)
	}

	// Every result's echo body names the target it came from, as the
	// demo's words say (flaky is not b).
	for _, out := range outs[:2] {
		var env struct {
			Results map[string]struct {
				Body struct {
					Target string `json:"target"`
				} `json:"body"`
			} `json:"results"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &env), out)
		require.NotEmpty(t, env.Results)
		for name, r := range env.Results {
			require.Equal(t, name, r.Body.Target, "the body of %s's result", name)
		}
	}

	// The async line again: the same id, 200 and Idempotent-Replayed, as
	// its comment says.
	idOf := func(out string) string {
		m := regexp.MustCompile(`"id":"(msg_\w+)"`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1]
	}
	again := run(lines[6])
	require.Regexp(t, `(?s)^HTTP/1.1 200 .*Idempotent-Replayed: true`, again)
	require.Equal(t, idOf(outs[6]), idOf(again))

	// The last line's header opens the status_url of an async answer.
	statusURL := regexp.MustCompile(`"status_url":"([^"]+)"`).FindStringSubmatch(outs[5])[1]
	auth := regexp.MustCompile(`-H '(Authorization: Bearer [^']+)'`).FindStringSubmatch(lines[7])
	require.NotNil(t, auth, lines[7])
	status := run(fmt.Sprintf("curl -s -H '%s' %s", auth[1], statusURL))
	require.Contains(t, status, `"id":"`+idOf(outs[5])+`"`)
	require.Contains(t, status, `"route":"signup-async"`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "demo exit status; logs:\n%s", logs.String())
	// Durations are logged as the config writes them.
	require.Contains(t, logs.String(), `"msg":"shutting down","timeout":"30s"`)
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }
