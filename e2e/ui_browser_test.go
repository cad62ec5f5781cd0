package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDashboardInBrowser runs the dashboard's browser suite
// (ui/browsertest, Playwright on Debian's chromium) against the real
// binary with a real SQLite store and echo targets on loopback. It skips
// when node, chromium or playwright-core is missing, unless
// FANOUT_UI_BROWSER_REQUIRED=1 (set by .ci/run), which makes that a
// failure. Screenshots go to $FANOUT_UI_SCREENSHOTS, or to a temporary
// folder named in the log.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary and a browser")
	}
	required := os.Getenv("FANOUT_UI_BROWSER_REQUIRED") == "1"
	missing := func(what string) {
		if required {
			t.Fatalf("FANOUT_UI_BROWSER_REQUIRED=1 but %s", what)
		}
		t.Skipf("skipping the dashboard browser suite: %s (see .ci/run for the install steps)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	chromium := os.Getenv("FANOUT_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("no chromium at " + chromium + " (apt-get install chromium)")
	}
	suite, err := filepath.Abs("../ui/browsertest")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(suite, "node_modules", "playwright-core", "package.json")); err != nil {
		missing("playwright-core is not installed (npm ci in ui/browsertest)")
	}
	shots := os.Getenv("FANOUT_UI_SCREENSHOTS")
	if shots == "" {
		shots, err = os.MkdirTemp("", "fanout-ui-screenshots-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("dashboard screenshots in %s", shots)

	// Echo targets: billing always answers 200; crm answers 503 while
	// broken, which the browser suite switches through the control server.
	var crmBroken atomic.Bool
	crmBroken.Store(true)
	echo := func(broken *atomic.Bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			if broken != nil && broken.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":"crm is down for maintenance"}`)
				return
			}
			_, _ = fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
		})
	}
	billing, crm, control := freeAddr(t), freeAddr(t), freeAddr(t)
	serveOn(t, billing, echo(nil))
	serveOn(t, crm, echo(&crmBroken))
	serveOn(t, control, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/crm/fix":
			crmBroken.Store(false)
		case "/crm/break":
			crmBroken.Store(true)
		default:
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))

	const (
		adminToken = "ui-e2e-admin-token"
		acmeToken  = "ui-e2e-acme-admin-token"
		betaToken  = "ui-e2e-beta-admin-token"
		acmeKey    = "fo_ui-e2e-acme-key"
		betaKey    = "fo_ui-e2e-beta-key"
	)
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	dir := t.TempDir()
	listen, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: %q}
store: {dsn: %q}
targets:
  billing: {url: "http://%s/billing", timeout: 2s}
  crm: {url: "http://%s/crm", timeout: 2s, retry: {initial: 10ms, max: 50ms, max_attempts: 2}}
tenants:
  acme: {keys: [{name: ci, sha256: %q}], admin_token_sha256: %q}
  beta: {keys: [{name: ci, sha256: %q}], admin_token_sha256: %q}
routes:
  - {name: orders, match: {method: POST, path: /orders}, mode: async, targets: [billing, crm]}
  - {name: lookup, match: {method: POST, path: /lookup}, mode: all, targets: [billing]}
  - {name: partner, match: {method: POST, path: /partner}, mode: async, targets: [crm], auth: api_key, tenants: [acme, beta]}
  - {name: members, match: {method: POST, path: /members}, mode: async, targets: [billing], auth: api_key, access: {subscription: approval}}
  - {name: vip, match: {method: POST, path: /vip}, mode: async, targets: [billing], auth: api_key, tenants: [beta], access: {subscription: approval}}
  - name: pipeline
    match: {method: POST, path: /pipeline}
    mode: steps
    async: true
    steps:
      - {name: charge, target: billing}
      - {name: notify, target: crm, after: [charge]}
      - {name: receipt, target: billing, after: [charge]}
`, listen, adminAddr, adminToken, filepath.Join(dir, "fanout.db"), billing, crm,
		hash(acmeKey), hash(acmeToken), hash(betaKey), hash(betaToken)))
	startFanout(t, cfgPath, listen, adminAddr)

	cmd := exec.Command(node, "--test", "--test-concurrency=1", "dashboard.test.mjs", "portal.test.mjs")
	cmd.Dir = suite
	cmd.Env = append(os.Environ(),
		"FANOUT_UI_URL=http://"+adminAddr+"/ui/",
		"FANOUT_ADMIN_URL=http://"+adminAddr,
		"FANOUT_DATA_URL=http://"+listen,
		"FANOUT_CONTROL_URL=http://"+control,
		"FANOUT_ADMIN_TOKEN="+adminToken,
		"FANOUT_ACME_TOKEN="+acmeToken,
		"FANOUT_BETA_TOKEN="+betaToken,
		"FANOUT_ACME_KEY="+acmeKey,
		"FANOUT_BETA_KEY="+betaKey,
		"FANOUT_CHROMIUM="+chromium,
		"FANOUT_UI_SCREENSHOTS="+shots,
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		err = <-done
		t.Log("the browser suite did not finish in 5 minutes")
	}
	t.Logf("browser suite output:\n%s", out.String())
	require.NoError(t, err, "browser suite failed")
	entries, _ := os.ReadDir(shots)
	for _, e := range entries {
		t.Logf("screenshot %s", filepath.Join(shots, e.Name()))
	}
}
