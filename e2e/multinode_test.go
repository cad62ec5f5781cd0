package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTwoNodesOnPostgres runs two real fanout processes on one PostgreSQL
// database, streams messages to both ingress ports (a client whose node
// fails retries on the other, as behind a load balancer), SIGKILLs one node
// and restarts it, and checks that every accepted message reached every
// target, and that both nodes delivered.
func TestTwoNodesOnPostgres(t *testing.T) {
	pgURL := os.Getenv("FANOUT_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("FANOUT_TEST_POSTGRES_URL is not set; skipping the two-node PostgreSQL test")
	}
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dsn, _, _ := postgresSchema(t, pgURL)
	ctx := context.Background()

	a, b := newRecorder(), newRecorder()
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	serveOn(t, aAddr, a)
	serveOn(t, bAddr, b)
	dir := t.TempDir()
	type node struct {
		cfg, listen, admin string
		p                  *proc
		attempts           int // successful attempts counted by earlier incarnations
	}
	nodes := make([]*node, 2)
	for i := range nodes {
		n := &node{cfg: filepath.Join(dir, fmt.Sprintf("node%d.yaml", i)), listen: freeAddr(t), admin: freeAddr(t)}
		writeFile(t, n.cfg, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {driver: postgres, dsn: %q}
log: {level: warn}
delivery: {lease_timeout: 5s}
targets:
  a: {url: "http://%s/in", timeout: 2s, retry: {initial: 20ms, max: 300ms, max_attempts: 10000}}
  b: {url: "http://%s/in", timeout: 2s, retry: {initial: 20ms, max: 300ms, max_attempts: 10000}}
routes:
  - {name: ingest, match: {path: /ingest}, mode: async, targets: [a, b]}
`, n.listen, n.admin, dsn, aAddr, bAddr))
		nodes[i] = n
	}
	var wg0 sync.WaitGroup
	for _, n := range nodes { // both start (and migrate) at once
		wg0.Add(1)
		go func() { defer wg0.Done(); n.p = startFanout(t, n.cfg, n.listen, n.admin) }()
	}
	wg0.Wait()

	const total, clients = 1200, 8
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		byKey    = map[string]string{}
		nAcc     atomic.Int64
		next     atomic.Int64
	)
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total || sctx.Err() != nil {
					return
				}
				key := fmt.Sprintf("key-%05d", i)
				for try := int(i); sctx.Err() == nil; try++ {
					n := nodes[try%2] // the other node on a retry
					status, hdr, body, err := post(sctx, "http://"+n.listen+"/ingest", `{}`, map[string]string{"Idempotency-Key": key})
					if err != nil || status >= 500 {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if status != http.StatusAccepted && !(status == http.StatusOK && hdr.Get("Idempotent-Replayed") == "true") {
						t.Errorf("key %s: unexpected %d %s", key, status, body)
						return
					}
					var got struct{ ID string }
					if err := json.Unmarshal(body, &got); err != nil || got.ID == "" {
						t.Errorf("key %s: bad body %q", key, body)
						return
					}
					mu.Lock()
					if prev, ok := byKey[key]; ok && prev != got.ID {
						t.Errorf("key %s answered with two ids: %s and %s", key, prev, got.ID)
					}
					byKey[key], accepted[got.ID] = got.ID, true
					mu.Unlock()
					nAcc.Add(1)
					break
				}
			}
		}()
	}

	waitFor(t, 2*time.Minute, "a third of the stream", func() bool { return nAcc.Load() >= total/3 })
	nodes[0].attempts += successfulAttempts(t, nodes[0].admin)
	nodes[0].p.kill()
	waitFor(t, 2*time.Minute, "two thirds of the stream", func() bool { return nAcc.Load() >= 2*total/3 })
	nodes[0].p = startFanout(t, nodes[0].cfg, nodes[0].listen, nodes[0].admin)
	wg.Wait()
	require.NoError(t, sctx.Err(), "the client stream did not finish in time")
	require.Len(t, byKey, total)

	waitFor(t, 2*time.Minute, "every accepted message at both targets", func() bool {
		return a.missing(accepted) == 0 && b.missing(accepted) == 0
	})
	_, aDup, aUnknown := a.stats(accepted)
	_, bDup, bUnknown := b.stats(accepted)
	require.Zero(t, aUnknown+bUnknown, "messages delivered that no client was told about")
	split := []int{nodes[0].attempts + successfulAttempts(t, nodes[0].admin), successfulAttempts(t, nodes[1].admin)}
	t.Logf("two nodes, one killed and restarted: %d messages accepted, %d deliveries; successful attempts by node: node0=%d node1=%d (node0's count before its kill is as scraped just before it); duplicates a=%d b=%d",
		len(accepted), 2*len(accepted), split[0], split[1], aDup, bDup)
	require.Positive(t, split[0], "node0 delivered nothing")
	require.Positive(t, split[1], "node1 delivered nothing")
	for _, n := range nodes {
		require.NoError(t, n.p.stop(30*time.Second))
	}
}

var attemptsLine = regexp.MustCompile(`(?m)^fanout_attempts_total\{[^}]*outcome="success"[^}]*\} (\d+)`)

// successfulAttempts sums fanout_attempts_total{outcome="success"} of one
// node's /metrics.
func successfulAttempts(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := 0
	for _, m := range attemptsLine.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	return sum
}
