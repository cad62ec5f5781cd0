package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder is a target that counts deliveries per message id.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	id := req.Header.Get("Fanout-Message-Id")
	if id == "" || req.Header.Get("Idempotency-Key") != id {
		http.Error(w, "missing Fanout-Message-Id / Idempotency-Key", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.seen[id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// missing returns how many of ids the recorder has not seen.
func (r *recorder) missing(ids map[string]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id := range ids {
		if r.seen[id] == 0 {
			n++
		}
	}
	return n
}

// stats returns (distinct ids, ids delivered more than once, ids not in ids).
func (r *recorder) stats(ids map[string]bool) (distinct, dup, unknown int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.seen {
		distinct++
		if n > 1 {
			dup++
		}
		if !ids[id] {
			unknown++
		}
	}
	return
}

// serveOn serves h on addr until the test ends.
func serveOn(t *testing.T, addr string, h http.Handler) *http.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the address may be in use for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestCrashSafety streams messages with Idempotency-Keys into a real fanout
// process, SIGKILLs and restarts it several times while target b is down,
// brings b back, and checks that every message that got 202 (or 200
// replayed) reached both targets at least once.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-safety test runs the real binary; skipped with -short")
	}
	dir := t.TempDir()
	a, b := newRecorder(), newRecorder()
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	serveOn(t, aAddr, a) // b stays down until after the second kill
	listen, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "fanout.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: t0ken}
store: {driver: sqlite, dsn: %q}
log: {level: warn}
delivery: {lease_timeout: 5s}
targets:
  a: {url: "http://%s/in", timeout: 2s, retry: {initial: 20ms, max: 300ms, max_attempts: 10000, max_age: 1h}}
  b: {url: "http://%s/in", timeout: 2s, retry: {initial: 20ms, max: 300ms, max_attempts: 10000, max_age: 1h}}
routes:
  - {name: ingest, match: {path: /ingest}, mode: async, targets: [a, b]}
`, listen, admin, filepath.Join(dir, "fanout.db"), aAddr, bAddr))

	var pmu sync.Mutex
	p := startFanout(t, cfgPath, listen, admin)

	const total, clients, kills = 1500, 8, 4
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // message ids that got 202/200
		byKey    = map[string]string{}
		nAcc     atomic.Int64
		retries  atomic.Int64
		next     atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total || ctx.Err() != nil {
					return
				}
				key := fmt.Sprintf("key-%05d", i)
				for ctx.Err() == nil {
					status, hdr, body, err := post(ctx, "http://"+listen+"/ingest", fmt.Sprintf(`{"n":%d}`, i), map[string]string{"Idempotency-Key": key})
					if err != nil || status >= 500 {
						// A real client retries on connection errors and 5xx.
						retries.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if status != http.StatusAccepted && !(status == http.StatusOK && hdr.Get("Idempotent-Replayed") == "true") {
						t.Errorf("key %s: unexpected %d %s", key, status, body)
						return
					}
					var got struct{ ID, StatusURL string }
					if err := json.Unmarshal(body, &got); err != nil || got.ID == "" {
						t.Errorf("key %s: bad body %q", key, body)
						return
					}
					mu.Lock()
					if prev, ok := byKey[key]; ok && prev != got.ID {
						t.Errorf("key %s answered with two ids: %s and %s", key, prev, got.ID)
					}
					byKey[key] = got.ID
					accepted[got.ID] = true
					mu.Unlock()
					nAcc.Add(1)
					break
				}
			}
		}()
	}

	// The killer: SIGKILL and restart every total/(kills+1) accepted
	// messages; bring target b up after the second kill.
	for k := 1; k <= kills; k++ {
		waitFor(t, 2*time.Minute, "accepted messages before a kill", func() bool { return nAcc.Load() >= int64(k*total/(kills+1)) })
		pmu.Lock()
		p.kill()
		p = startFanout(t, cfgPath, listen, admin)
		pmu.Unlock()
		if k == 2 {
			serveOn(t, bAddr, b)
		}
	}
	wg.Wait()
	require.NoError(t, ctx.Err(), "the client stream did not finish in time")
	require.Len(t, byKey, total)

	waitFor(t, 2*time.Minute, "every accepted message at both targets", func() bool {
		return a.missing(accepted) == 0 && b.missing(accepted) == 0
	})
	aDistinct, aDup, aUnknown := a.stats(accepted)
	bDistinct, bDup, bUnknown := b.stats(accepted)
	t.Logf("accepted %d messages (%d client retries across %d kills); target a: %d ids, %d delivered more than once, %d unknown; target b: %d ids, %d more than once, %d unknown",
		len(accepted), retries.Load(), kills, aDistinct, aDup, aUnknown, bDistinct, bDup, bUnknown)
	// A message stored while the client lost its answer is found again by
	// its Idempotency-Key, so no message reaches a target unknown to the
	// client.
	require.Zero(t, aUnknown+bUnknown, "messages delivered that no client was told about")

	pmu.Lock()
	defer pmu.Unlock()
	require.NoError(t, p.stop(30*time.Second), "SIGTERM must exit 0")
}
