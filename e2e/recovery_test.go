package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/sqlite"
)

// gate is a target that holds every request while it is closed, so that
// the attempts stay in flight and their deliveries leased, and answers 200
// once it is open (held requests too, unless their sender has gone). It
// records when each message was first delivered, and with which
// Fanout-Attempt.
type gate struct {
	inFlight atomic.Int64

	mu        sync.Mutex
	released  chan struct{} // closed while the gate is open
	delivered map[string]time.Time
	attempt   map[string]string
}

func newGate() *gate {
	return &gate{released: make(chan struct{}), delivered: map[string]time.Time{}, attempt: map[string]string{}}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	g.mu.Lock()
	released := g.released
	g.mu.Unlock()
	g.inFlight.Add(1)
	select {
	case <-released:
	case <-r.Context().Done(): // the process that sent it was killed
		g.inFlight.Add(-1)
		return
	}
	g.inFlight.Add(-1)
	id := r.Header.Get("Fanout-Message-Id")
	g.mu.Lock()
	if _, ok := g.delivered[id]; !ok {
		g.delivered[id] = time.Now()
		g.attempt[id] = r.Header.Get("Fanout-Attempt")
	}
	g.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// open lets every request through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.released:
	default:
		close(g.released)
	}
}

// close holds the requests that arrive from now on.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.released:
		g.released = make(chan struct{})
	default:
	}
}

// lastOf returns how many of ids were delivered and when the last of them
// was.
func (g *gate) lastOf(ids []string) (int, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, last := 0, time.Time{}
	for _, id := range ids {
		if at, ok := g.delivered[id]; ok {
			n++
			if at.After(last) {
				last = at
			}
		}
	}
	return n, last
}

// attemptOf returns the Fanout-Attempt of the first delivery of id.
func (g *gate) attemptOf(id string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempt[id]
}

// sendN posts n messages to listen's /ingest and returns their ids.
func sendN(t *testing.T, listen string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for range n {
		status, _, body, err := post(context.Background(), "http://"+listen+"/ingest", `{}`, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, string(body))
		var got struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &got))
		ids = append(ids, got.ID)
	}
	return ids
}

// recoveryTarget is the config of the one target of the recovery tests:
// lease_timeout is 10 minutes, so a delivery leased by a killed process
// and delivered within the test's deadline was taken back, not expired.
const recoveryConfig = `
listen: %q
admin: {listen: %q, token: t0ken}
store: %s
log: {level: info}
delivery: {lease_timeout: 10m%s}
targets:
  slow: {url: "http://%s/", timeout: 1m, max_in_flight: 8, retry: {initial: 10ms, max: 100ms}}
routes:
  - {name: ingest, match: {path: /ingest}, mode: async, targets: [slow]}
`

// TestKillRestartReclaimsLeasesSQLite SIGKILLs a process while a blocked
// target holds its attempts (their deliveries leased for 10 minutes),
// restarts it on the same file and checks that everything the dead
// process leased is delivered soon after the restart: only the reclaim at
// start explains it. The time from the restart to the last of them is
// logged.
func TestKillRestartReclaimsLeasesSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	g := newGate()
	tAddr := freeAddr(t)
	serveOn(t, tAddr, g)
	listen, admin := freeAddr(t), freeAddr(t)
	db := filepath.Join(dir, "fanout.db")
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(recoveryConfig, listen, admin, fmt.Sprintf("{dsn: %q}", db), "", tAddr))

	p := startFanout(t, cfgPath, listen, admin)
	ids := sendN(t, listen, 60)
	waitFor(t, time.Minute, "8 attempts held by the target", func() bool { return g.inFlight.Load() >= 8 })
	p.kill()

	leased := leasedSQLite(t, db)
	require.GreaterOrEqual(t, len(leased), 8, "the killed process held leases")
	g.open()
	restart := time.Now()
	p = startFanout(t, cfgPath, listen, admin)
	ready := time.Since(restart)
	waitFor(t, time.Minute, "every message delivered after the restart", func() bool {
		n, _ := g.lastOf(ids)
		return n == len(ids)
	})
	_, last := g.lastOf(leased)
	t.Logf("SQLite: %d deliveries leased by the killed process; restart → ready %s, restart → last of them delivered %s (lease_timeout 10m)",
		len(leased), ready.Round(time.Millisecond), last.Sub(restart).Round(time.Millisecond))
	for _, id := range leased {
		require.Equal(t, "2", g.attemptOf(id), "message %s: the killed process's attempt counts", id)
	}
	require.Contains(t, p.logs.String(), "took back the leases of stopped processes")
	require.NoError(t, p.stop(30*time.Second))
}

// leasedSQLite returns the messages whose delivery to slow is leased in the
// database at path, which no process has open.
func leasedSQLite(t *testing.T, path string) []string {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	page, _, err := st.ListMessages(t.Context(), fanout.ListMessagesParams{Target: "slow", State: fanout.StateDelivering, Limit: 1000})
	require.NoError(t, err)
	ids := make([]string, len(page))
	for i, m := range page {
		ids[i] = m.Message.ID
	}
	return ids
}

// TestSecondServeOnTheSameFileFails starts a second `fanout serve` on the
// database file of a running one: it exits non-zero at once, naming the
// file, and the first one keeps serving.
func TestSecondServeOnTheSameFileFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "fanout.db")
	tAddr := freeAddr(t)
	configs := make([]string, 2)
	addrs := make([][2]string, 2)
	for i := range configs {
		addrs[i] = [2]string{freeAddr(t), freeAddr(t)}
		configs[i] = filepath.Join(dir, fmt.Sprintf("fanout%d.yaml", i))
		writeFile(t, configs[i], fmt.Sprintf(recoveryConfig, addrs[i][0], addrs[i][1], fmt.Sprintf("{dsn: %q}", db), "", tAddr))
	}
	p := startFanout(t, configs[0], addrs[0][0], addrs[0][1])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--config", configs[1]).CombinedOutput()
	require.NoError(t, ctx.Err(), "the second serve must exit by itself")
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "exit status: %v\n%s", err, out)
	require.NotZero(t, exit.ExitCode())
	require.Contains(t, string(out), db+": ")
	require.Contains(t, string(out), "in use by another fanout process")
	t.Logf("second serve: exit %d: %s", exit.ExitCode(), strings.TrimSpace(string(out)))

	resp, err := http.Get("http://" + addrs[0][1] + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the first one still serves")
	require.NoError(t, p.stop(30*time.Second))
}

// TestNodeTakeoverAndRestartOnPostgres runs two nodes on one database with
// lease_timeout 10m. Node 0 is killed while a blocked target holds its
// attempts: node 1 takes its leases back after the heartbeat timeout (5s).
// Then node 1 is killed the same way and restarted with heartbeat_timeout
// 10m too: only its reclaim of its own earlier run explains that its
// leases are delivered. Both times are logged.
func TestNodeTakeoverAndRestartOnPostgres(t *testing.T) {
	pgURL := os.Getenv("FANOUT_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("FANOUT_TEST_POSTGRES_URL is not set; skipping the PostgreSQL recovery test")
	}
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dsn, schema, conn := postgresSchema(t, pgURL)
	ctx := context.Background()
	store := fmt.Sprintf("{driver: postgres, dsn: %q}", dsn)

	g := newGate()
	tAddr := freeAddr(t)
	serveOn(t, tAddr, g)
	dir := t.TempDir()
	host, err := os.Hostname()
	require.NoError(t, err)
	type node struct {
		cfg, listen, admin, id string
		p                      *proc
	}
	nodes := make([]*node, 2)
	for i := range nodes {
		n := &node{cfg: filepath.Join(dir, fmt.Sprintf("node%d.yaml", i)), listen: freeAddr(t), admin: freeAddr(t)}
		_, port, err := net.SplitHostPort(n.listen)
		require.NoError(t, err)
		n.id = host + ":" + port // the default node id
		writeFile(t, n.cfg, fmt.Sprintf(recoveryConfig, n.listen, n.admin, store, "", tAddr))
		nodes[i] = n
	}
	for _, n := range nodes {
		n.p = startFanout(t, n.cfg, n.listen, n.admin)
	}
	// leasedBy returns the messages leased by the runs of node id.
	leasedBy := func(id string) []string {
		rows, err := conn.Query(ctx, `SELECT d.message_id FROM `+schema+`.deliveries AS d
JOIN `+schema+`.nodes AS n ON n.owner = d.lease_owner
WHERE d.state = 'delivering' AND n.node = $1`, id)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return ids
	}

	// Node 0 dies holding leases; node 1 takes them over.
	ids := sendN(t, nodes[0].listen, 60)
	waitFor(t, time.Minute, "both nodes' attempts held by the target", func() bool { return g.inFlight.Load() >= 16 })
	nodes[0].p.kill()
	killed := time.Now()
	leased0 := leasedBy(nodes[0].id)
	require.NotEmpty(t, leased0, "node 0 held leases")
	g.open()
	waitFor(t, time.Minute, "node 0's leases delivered by node 1", func() bool {
		n, _ := g.lastOf(leased0)
		return n == len(leased0)
	})
	_, last := g.lastOf(leased0)
	t.Logf("PostgreSQL takeover: %d deliveries leased by killed node 0; kill → last of them delivered by node 1 %s (heartbeat timeout 5s, lease_timeout 10m)",
		len(leased0), last.Sub(killed).Round(time.Millisecond))
	waitFor(t, time.Minute, "every message delivered", func() bool { n, _ := g.lastOf(ids); return n == len(ids) })

	// Node 1 dies holding leases and restarts at once: with a heartbeat
	// timeout of 10m as well, only its own reclaim can free them.
	g.close()
	more := sendN(t, nodes[1].listen, 40)
	waitFor(t, time.Minute, "node 1's attempts held by the target", func() bool { return g.inFlight.Load() >= 8 })
	nodes[1].p.kill()
	leased1 := leasedBy(nodes[1].id)
	require.NotEmpty(t, leased1, "node 1 held leases")
	writeFile(t, nodes[1].cfg, fmt.Sprintf(recoveryConfig, nodes[1].listen, nodes[1].admin, store, ", heartbeat_timeout: 10m", tAddr))
	g.open()
	restart := time.Now()
	nodes[1].p = startFanout(t, nodes[1].cfg, nodes[1].listen, nodes[1].admin)
	ready := time.Since(restart)
	waitFor(t, time.Minute, "node 1's own leases delivered after its restart", func() bool {
		n, _ := g.lastOf(leased1)
		return n == len(leased1)
	})
	_, last = g.lastOf(leased1)
	t.Logf("PostgreSQL restart: %d deliveries leased by killed node 1; restart → ready %s, restart → last of them delivered %s (heartbeat timeout and lease_timeout 10m)",
		len(leased1), ready.Round(time.Millisecond), last.Sub(restart).Round(time.Millisecond))
	waitFor(t, time.Minute, "every message delivered", func() bool { n, _ := g.lastOf(more); return n == len(more) })
	for _, id := range leased1 {
		require.Equal(t, "2", g.attemptOf(id), "message %s: the killed run's attempt counts", id)
	}
	require.NoError(t, nodes[1].p.stop(30*time.Second))
}
