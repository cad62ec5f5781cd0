package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBacklog is a BacklogSource with a fixed answer that counts reads.
type fakeBacklog struct {
	mu      sync.Mutex
	backlog []fanout.TargetBacklog
	err     error
	block   bool // wait for ctx to end
	reads   atomic.Int64
}

func (f *fakeBacklog) set(backlog []fanout.TargetBacklog, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backlog, f.err = backlog, err
}

func (f *fakeBacklog) Backlog(ctx context.Context) ([]fanout.TargetBacklog, error) {
	f.reads.Add(1)
	f.mu.Lock()
	bl, err, block := f.backlog, f.err, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return bl, err
}

// testBundle is a registry with every Fanout metric and a fake backlog.
type testBundle struct {
	reg     *prometheus.Registry
	m       *metrics.Metrics
	backlog *fakeBacklog
	start   time.Time
	clock   atomic.Int64 // nanoseconds after start
}

func (b *testBundle) now() time.Time { return b.start.Add(time.Duration(b.clock.Load())) }

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{
		reg:     prometheus.NewPedanticRegistry(),
		backlog: &fakeBacklog{},
		start:   time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
	}
	b.m = metrics.New(b.reg)
	b.reg.MustRegister(metrics.NewTargetsCollector(func() []balance.TargetStatus {
		return []balance.TargetStatus{{Name: "crm", InFlight: 2, Circuit: "open", Servers: []balance.ServerStatus{
			{URL: "http://crm-1/in", Up: true}, {URL: "http://crm-2/in"},
		}}}
	}))
	b.reg.MustRegister(metrics.NewBacklogCollector(b.backlog, metrics.BacklogOptions{
		Now: b.now,
	}))
	return b
}

// observeSome records a little of everything.
func (b *testBundle) observeSome() {
	b.m.ObserveRequest("signup", "async", 202, 3*time.Millisecond)
	b.m.ObserveRequest("signup", "async", 202, 4*time.Millisecond)
	b.m.ObserveRequest("profile", "all", 502, 2*time.Second)
	b.m.ObserveAttempt("signup", "crm", metrics.OutcomeSuccess, 20*time.Millisecond)
	b.m.ObserveAttempt("signup", "crm", metrics.Outcome(fanout.ClassTimeout), 5*time.Second)
	b.m.ObserveAttempt("profile", "analytics", "", time.Millisecond)
	b.m.IncDead("crm")
	b.m.IncBodyTimeout("signup")
	b.m.IncServerState("crm", "http://crm-2/in", false)
	b.m.IncCircuitState("crm", "open")
	b.m.IncDeprecated("signup", "acme")
	b.m.IncDeprecated("signup", "acme")
	b.m.IncDeprecated("signup", "")
	b.backlog.set([]fanout.TargetBacklog{
		{Target: "crm", Waiting: 7, Dead: 1, OldestWaiting: b.now().Add(-90 * time.Second)},
		{Target: "analytics", Waiting: 0, Dead: 2},
	}, nil)
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

func TestScrape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.observeSome()

	body := scrape(t, metrics.Handler(b.reg))
	for _, line := range []string{
		`fanout_requests_total{code="202",mode="async",route="signup"} 2`,
		`fanout_requests_total{code="502",mode="all",route="profile"} 1`,
		`fanout_request_duration_seconds_count{mode="async",route="signup"} 2`,
		`fanout_request_duration_seconds_sum{mode="async",route="signup"} 0.007`,
		`fanout_request_duration_seconds_bucket{mode="async",route="signup",le="0.005"} 2`,
		`fanout_request_duration_seconds_bucket{mode="all",route="profile",le="1"} 0`,
		`fanout_request_duration_seconds_bucket{mode="all",route="profile",le="2.5"} 1`,
		`fanout_attempts_total{outcome="success",route="signup",target="crm"} 1`,
		`fanout_attempts_total{outcome="timeout",route="signup",target="crm"} 1`,
		`fanout_attempts_total{outcome="success",route="profile",target="analytics"} 1`,
		`fanout_attempt_duration_seconds_count{route="signup",target="crm"} 2`,
		`fanout_dead_total{target="crm"} 1`,
		`fanout_request_body_timeouts_total{route="signup"} 1`,
		`fanout_deprecated_requests_total{route="signup",tenant="acme"} 2`,
		`fanout_deprecated_requests_total{route="signup",tenant=""} 1`,
		`fanout_deliveries{state="waiting"} 7`,
		`fanout_deliveries{state="dead"} 3`,
		`fanout_backlog_deliveries{state="waiting",target="crm"} 7`,
		`fanout_backlog_deliveries{state="dead",target="analytics"} 2`,
		`fanout_backlog_oldest_seconds{target="crm"} 90`,
		`fanout_backlog_oldest_seconds{target="analytics"} 0`,
		`fanout_backlog_scrape_errors_total 0`,
		`fanout_target_server_up{server="http://crm-1/in",target="crm"} 1`,
		`fanout_target_server_up{server="http://crm-2/in",target="crm"} 0`,
		`fanout_target_in_flight{target="crm"} 2`,
		`fanout_circuit_state{target="crm"} 2`,
		`fanout_target_server_state_changes_total{server="http://crm-2/in",state="down",target="crm"} 1`,
		`fanout_circuit_state_changes_total{state="open",target="crm"} 1`,
	} {
		require.Contains(t, body, line+"\n")
	}
}

func TestStatusCodeOutOfRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.ObserveRequest("r", "all", 42, time.Millisecond)
	b.m.ObserveRequest("r", "all", 1000, time.Millisecond)
	body := scrape(t, metrics.Handler(b.reg))
	require.Contains(t, body, `fanout_requests_total{code="0",mode="all",route="r"} 2`+"\n")
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	for class, want := range map[fanout.ErrorClass]string{
		fanout.ClassNone:     "success",
		fanout.ClassTimeout:  "timeout",
		fanout.ClassConnect:  "connect",
		fanout.ClassTLS:      "tls",
		fanout.ClassStatus:   "status",
		fanout.ClassCanceled: "canceled",
		fanout.ClassOther:    "other",
		"surprise":           "other",
	} {
		require.Equal(t, want, metrics.Outcome(class), "class %q", class)
	}

	// Unknown outcome labels are counted as other, keeping the label set bounded.
	b := setup(t)
	b.m.ObserveAttempt("r", "t", "weird", time.Millisecond)
	body := scrape(t, metrics.Handler(b.reg))
	require.Contains(t, body, `fanout_attempts_total{outcome="other",route="r",target="t"} 1`+"\n")
}

func TestNilMetricsIsNoop(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.ObserveRequest("r", "all", 200, time.Millisecond)
	m.ObserveAttempt("r", "t", "success", time.Millisecond)
	m.IncDead("t")
}

func TestNilRegistererCountsWithoutRegistering(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	m.ObserveRequest("r", "all", 200, time.Millisecond)
	// Registering a second set on a fresh registry still works: New never
	// touches the global registry.
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	require.Panics(t, func() { metrics.New(reg) }, "registering twice on one registry is a wiring mistake")
}

func TestConcurrentObserve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				route := []string{"a", "b", "c"}[(g+i)%3]
				b.m.ObserveRequest(route, "all", 200+i%3, time.Millisecond)
				b.m.ObserveAttempt(route, "t", "success", time.Millisecond)
				b.m.IncDead("t")
			}
		})
	}
	wg.Wait()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == metrics.NameRequestsTotal {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	require.Equal(t, float64(goroutines*each), total)
	body := scrape(t, metrics.Handler(b.reg))
	require.Contains(t, body, `fanout_dead_total{target="t"} 4000`+"\n")
}

func TestBacklogCache(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.observeSome()
	h := metrics.Handler(b.reg)

	scrape(t, h)
	scrape(t, h)
	require.Equal(t, int64(1), b.backlog.reads.Load(), "a second scrape within CacheFor reuses the read")

	b.clock.Add(int64(10 * time.Second))
	body := scrape(t, h)
	require.Equal(t, int64(2), b.backlog.reads.Load())
	require.Contains(t, body, `fanout_backlog_oldest_seconds{target="crm"} 100`+"\n")
}

func TestBacklogErrorKeepsOtherMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.observeSome()
	b.backlog.set(nil, errors.New("store down"))

	body := scrape(t, metrics.Handler(b.reg))
	require.Contains(t, body, `fanout_requests_total{code="202",mode="async",route="signup"} 2`+"\n")
	require.Contains(t, body, "fanout_backlog_scrape_errors_total 1\n")
	require.NotContains(t, body, "fanout_deliveries{")
	require.NotContains(t, body, "fanout_backlog_oldest_seconds{")
}

func TestBacklogTimeout(t *testing.T) {
	t.Parallel()
	src := &fakeBacklog{block: true}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewBacklogCollector(src, metrics.BacklogOptions{Timeout: 20 * time.Millisecond}))
	// The source blocks until its context ends: the scrape returns only
	// because the collector's timeout ended it, and counts the error.
	body := scrape(t, metrics.Handler(reg))
	require.Contains(t, body, "fanout_backlog_scrape_errors_total 1\n")
}

func TestNewRegistryHasRuntimeCollectors(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	metrics.New(reg)
	body := scrape(t, metrics.Handler(reg))
	require.Contains(t, body, "go_goroutines ")
	require.Contains(t, body, "process_start_time_seconds ") // Linux has the process collector
}

func TestLint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.observeSome()
	problems, err := testutil.GatherAndLint(b.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestPromtool checks the exposition with `promtool check metrics` when
// promtool is installed (Debian package prometheus).
func TestPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	b := setup(t)
	b.observeSome()
	body := scrape(t, metrics.Handler(b.reg))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "promtool check metrics:\n%s", out.String())
	require.Empty(t, strings.TrimSpace(out.String()))
}
