package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
)

// cli runs the fanout binary's command args against the admin API at
// adminAddr with token, and returns its exit code and output.
func cli(t *testing.T, adminAddr, token string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "FANOUT_ADMIN_URL=http://"+adminAddr, "FANOUT_ADMIN_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "%s", out)
	}
	return code, string(out)
}

// accessConfig is a config whose route orders (mode all, target a) needs
// an approved subscription, for tenants acme and beta that have admin
// tokens and no keys in the file.
func accessConfig(listen, admin, store, target, acmeHash, betaHash string) string {
	return fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: %s
log: {level: warn}
targets:
  a: {url: "http://%s/in", timeout: 2s}
routes:
  - name: orders
    match: {path: /orders}
    mode: all
    targets: [a]
    auth: api_key
    access: {subscription: approval}
tenants:
  acme: {admin_token_sha256: %q}
  beta: {admin_token_sha256: %q}
`, listen, admin, store, target, acmeHash, betaHash)
}

var (
	keyLine   = regexp.MustCompile(`(?m)^key: (fo_\S+)$`)
	keyIDLine = regexp.MustCompile(`\(id (key_\w+)\)`)
	subIDLine = regexp.MustCompile(`subscription (sub_\w+) `)
)

// order sends one request to the orders route of listen with key and
// returns the status and the error code of a refusal.
func order(t *testing.T, listen, key string) (int, string) {
	t.Helper()
	status, _, body, err := post(context.Background(), "http://"+listen+"/orders", `{"n":1}`,
		map[string]string{"Authorization": "Bearer " + key})
	require.NoError(t, err)
	code := ""
	if m := regexp.MustCompile(`"code":"([a-z_]+)"`).FindSubmatch(body); m != nil {
		code = string(m[1])
	}
	return status, code
}

// TestSubscriptionsAndKeysEndToEnd walks a tenant from nothing to a working
// call with the real binary and its CLI: a self-service key, a refused
// call, a request, the operator's approval, a working call, a revocation,
// and a revoked key.
func TestSubscriptionsAndKeysEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	target := freeAddr(t)
	rec := newRecorder()
	serveOn(t, target, rec)
	acmeToken, acmeHash := auth.NewKey()
	betaToken, betaHash := auth.NewKey()
	dir := t.TempDir()
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfg, accessConfig(listen, admin,
		fmt.Sprintf("{driver: sqlite, dsn: %q}", filepath.Join(dir, "fanout.db")), target, acmeHash, betaHash))
	startFanout(t, cfg, listen, admin)

	// A tenant makes its own key; it authenticates, but the route needs
	// a subscription.
	code, out := cli(t, admin, acmeToken, "keys", "create", "--name", "ci")
	require.Zero(t, code, out)
	key := keyLine.FindStringSubmatch(out)[1]
	keyID := keyIDLine.FindStringSubmatch(out)[1]
	status, ecode := order(t, listen, key)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "subscription_required", ecode)
	status, _ = order(t, listen, "fo_not-a-key")
	require.Equal(t, http.StatusUnauthorized, status)

	// It asks; it cannot approve itself, nor can another tenant see it.
	code, out = cli(t, admin, acmeToken, "subscriptions", "request", "orders", "--note", "our shop")
	require.Zero(t, code, out)
	require.Contains(t, out, "pending")
	subID := subIDLine.FindStringSubmatch(out)[1]
	code, out = cli(t, admin, acmeToken, "subscriptions", "approve", subID)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "forbidden")
	code, out = cli(t, admin, betaToken, "subscriptions", "list")
	require.Zero(t, code, out)
	require.NotContains(t, out, subID)
	code, out = cli(t, admin, betaToken, "keys", "list")
	require.Zero(t, code, out)
	require.NotContains(t, out, keyID)
	code, out = cli(t, admin, betaToken, "keys", "revoke", keyID)
	require.Equal(t, 1, code, out)
	status, _ = order(t, listen, key)
	require.Equal(t, http.StatusForbidden, status, "still pending")

	// The operator approves: the next request passes.
	code, out = cli(t, admin, "t0ken", "subscriptions", "approve", subID, "--reason", "welcome")
	require.Zero(t, code, out)
	require.Contains(t, out, "active")
	waitFor(t, 10*time.Second, "the approval to hold", func() bool {
		status, _ := order(t, listen, key)
		return status == http.StatusOK
	})

	// Revoked: refused again.
	code, out = cli(t, admin, "t0ken", "subscriptions", "revoke", subID, "--reason", "unpaid")
	require.Zero(t, code, out)
	waitFor(t, 10*time.Second, "the revocation to hold", func() bool {
		status, ecode := order(t, listen, key)
		return status == http.StatusForbidden && ecode == "subscription_required"
	})

	// The operator undoes it; then the tenant revokes its key: 401.
	code, out = cli(t, admin, "t0ken", "subscriptions", "approve", subID, "--reason", "paid")
	require.Zero(t, code, out)
	waitFor(t, 10*time.Second, "the second approval to hold", func() bool {
		status, _ := order(t, listen, key)
		return status == http.StatusOK
	})
	code, out = cli(t, admin, acmeToken, "keys", "revoke", keyID)
	require.Zero(t, code, out)
	waitFor(t, 10*time.Second, "the key revocation to hold", func() bool {
		status, _ := order(t, listen, key)
		return status == http.StatusUnauthorized
	})

	// Every decision and key change is in the audit log.
	code, out = cli(t, admin, "t0ken", "audit")
	require.Zero(t, code, out)
	for _, want := range []string{
		"tenant:acme  key.create", "tenant:acme  subscription.request", "admin        subscription.approve",
		"admin        subscription.revoke", "tenant:acme  key.revoke",
	} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 6, strings.Count(out, "\n")-1, "six entries:\n%s", out)
	code, out = cli(t, admin, acmeToken, "keys", "list")
	require.Zero(t, code, out)
	require.Contains(t, out, keyID)
	require.NotContains(t, out, key, "the key is never shown again")
}

// TestAccessAcrossNodesOnPostgres: two nodes on one PostgreSQL database. A
// key made and a subscription approved through node A work on node B, and
// a revocation on A holds on B; the time each took to reach B is logged
// (the nodes poll the access version every 250ms).
func TestAccessAcrossNodesOnPostgres(t *testing.T) {
	pgURL := os.Getenv("FANOUT_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("FANOUT_TEST_POSTGRES_URL is not set; skipping the two-node access test on PostgreSQL")
	}
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dsn, _, _ := postgresSchema(t, pgURL)
	target := freeAddr(t)
	serveOn(t, target, newRecorder())
	acmeToken, acmeHash := auth.NewKey()
	_, betaHash := auth.NewKey()
	dir := t.TempDir()
	type node struct{ listen, admin string }
	nodes := []node{{freeAddr(t), freeAddr(t)}, {freeAddr(t), freeAddr(t)}}
	for i, n := range nodes {
		cfg := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		writeFile(t, cfg, accessConfig(n.listen, n.admin, fmt.Sprintf("{driver: postgres, dsn: %q}", dsn), target, acmeHash, betaHash))
		startFanout(t, cfg, n.listen, n.admin)
	}
	a, b := nodes[0], nodes[1]
	var key string

	// propagation returns how long after the change on node A node B
	// answered want.
	propagation := func(what string, changed time.Time, want int) {
		t.Helper()
		waitFor(t, 10*time.Second, what+" on node B", func() bool {
			status, _ := order(t, b.listen, key)
			return status == want
		})
		t.Logf("%s reached node B %s after the change on node A", what, time.Since(changed).Round(time.Millisecond))
	}

	code, out := cli(t, a.admin, acmeToken, "keys", "create", "--name", "ci")
	require.Zero(t, code, out)
	key = keyLine.FindStringSubmatch(out)[1]
	keyID := keyIDLine.FindStringSubmatch(out)[1]
	created := time.Now()
	waitFor(t, 10*time.Second, "the new key on node B", func() bool {
		status, _ := order(t, b.listen, key)
		return status == http.StatusForbidden // known key, no subscription yet
	})
	t.Logf("a new key reached node B %s after it was made on node A", time.Since(created).Round(time.Millisecond))

	code, out = cli(t, a.admin, acmeToken, "subscriptions", "request", "orders")
	require.Zero(t, code, out)
	subID := subIDLine.FindStringSubmatch(out)[1]
	code, out = cli(t, a.admin, "t0ken", "subscriptions", "approve", subID)
	require.Zero(t, code, out)
	propagation("the approval", time.Now(), http.StatusOK)

	start := time.Now()
	code, out = cli(t, a.admin, "t0ken", "subscriptions", "revoke", subID)
	require.Zero(t, code, out)
	propagation("the subscription revocation", start, http.StatusForbidden)

	code, out = cli(t, a.admin, "t0ken", "subscriptions", "approve", subID)
	require.Zero(t, code, out)
	propagation("the second approval", time.Now(), http.StatusOK)
	start = time.Now()
	code, out = cli(t, a.admin, acmeToken, "keys", "revoke", keyID)
	require.Zero(t, code, out)
	propagation("the key revocation", start, http.StatusUnauthorized)
}
