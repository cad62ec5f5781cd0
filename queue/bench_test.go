package queue

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/sqlite"
	"github.com/fanouthq/fanout/upstream"
)

// benchBody is the 1 KiB JSON body of BENCHMARKS.md.
var benchBody = []byte(`{"data":"` + strings.Repeat("x", 1024-11) + `"}`)

// benchParallelism makes RunParallel use 32 callers per CPU, about wrk's
// 64 connections on this 2-core machine.
const benchParallelism = 32

// benchStore opens the benchmark's store: a SQLite file under t.TempDir(),
// or under $FANOUT_BENCH_DIR when set (for example /dev/shm, to measure
// the engine without the disk).
func benchStore(b *testing.B) fanout.Store {
	dir := os.Getenv("FANOUT_BENCH_DIR")
	if dir == "" {
		return openStore(b)
	}
	dir, err := os.MkdirTemp(dir, "queue-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "fanout.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return st
}

func benchMessage(targets ...string) fanout.AcceptParams {
	p := newMessage("bench", targets...)
	p.Message.Body = benchBody
	return p
}

// runCommitter runs c until the benchmark's cleanup.
func runCommitter(b *testing.B, c *Committer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
}

// acceptParallel accepts b.N messages from parallel callers and returns
// every accept's latency.
func acceptParallel(b *testing.B, c *Committer, targets ...string) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.SetParallelism(benchParallelism)
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 256)
		for pb.Next() {
			p := benchMessage(targets...)
			t0 := time.Now()
			_, err := c.Accept(ctx, p)
			local = append(local, time.Since(t0))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	return lat
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// BenchmarkCommitterAccept measures durable accepts (one message and two
// deliveries each, SQLite with synchronous=FULL) from parallel callers
// through group commit.
func BenchmarkCommitterAccept(b *testing.B) {
	st := newGatedStore(benchStore(b), false)
	c := NewCommitter(st, CommitterOptions{})
	runCommitter(b, c)

	b.ResetTimer()
	start := time.Now()
	lat := acceptParallel(b, c, "crm", "analytics")
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(percentile(lat, 0.50))/float64(time.Millisecond), "p50_ms")
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(time.Millisecond), "p99_ms")
	b.ReportMetric(float64(st.messages.Load())/float64(max(1, st.accepts.Load())), "msgs/commit")
}

// echoTarget is a light echo target for benchmarks: it reads the whole
// body and answers 200 with a small JSON body.
func echoTarget(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		n.Add(1)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// BenchmarkDeliver measures the durable path end to end: b.N messages
// accepted through the Committer to two targets, delivered by the
// Dispatcher to two echo servers. deliveries/s counts both targets.
func BenchmarkDeliver(b *testing.B) {
	st := &countingStore{Store: benchStore(b)}
	srvA, nA := echoTarget(b)
	srvB, nB := echoTarget(b)
	cfgA, cfgB := newTargetConfig(b, "a", srvA.URL), newTargetConfig(b, "b", srvB.URL)
	cfgA.MaxInFlight, cfgB.MaxInFlight = 64, 64
	d := NewDispatcher(st, newClient(b), DispatcherOptions{})
	d.SetConfig(newConfig(cfgA, cfgB))
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan error, 1)
	go func() { ddone <- d.Run(dctx) }()
	b.Cleanup(func() {
		dcancel()
		if err := <-ddone; err != nil {
			b.Error(err)
		}
	})
	c := NewCommitter(st, CommitterOptions{OnCommit: func(targets map[string]struct{}) {
		for t := range targets {
			d.Notify(t)
		}
	}})
	runCommitter(b, c)

	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	lat := acceptParallel(b, c, "a", "b")
	acceptDone := time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for nA.Load() < int64(b.N) || nB.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d and %d of %d", nA.Load(), nB.Load(), b.N)
		}
		time.Sleep(time.Millisecond) // measuring, not synchronising
	}
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(lat)
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/acceptDone.Seconds(), "accepts/s")
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(time.Millisecond), "accept_p99_ms")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/elapsed.Seconds(), "cpus")
	st.report(b)

	// Every outcome is recorded before the dispatcher stops.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		backlog, err := st.Backlog(ctx)
		if err != nil {
			b.Fatal(err)
		}
		waiting := 0
		for _, t := range backlog {
			waiting += t.Waiting
		}
		if waiting == 0 {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("%d deliveries still waiting", waiting)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingStore is the real store with its write calls counted, to report
// how well they are batched.
type countingStore struct {
	fanout.Store
	accepts, accepted   atomic.Int64
	leases, leased      atomic.Int64
	completes, complete atomic.Int64
}

func (s *countingStore) Accept(ctx context.Context, p []fanout.AcceptParams) ([]fanout.AcceptResult, error) {
	s.accepts.Add(1)
	s.accepted.Add(int64(len(p)))
	return s.Store.Accept(ctx, p)
}

func (s *countingStore) Lease(ctx context.Context, p fanout.LeaseParams) ([]fanout.LeasedDelivery, error) {
	l, err := s.Store.Lease(ctx, p)
	s.leases.Add(1)
	s.leased.Add(int64(len(l)))
	return l, err
}

func (s *countingStore) Complete(ctx context.Context, p []fanout.CompleteParams) error {
	s.completes.Add(1)
	s.complete.Add(int64(len(p)))
	return s.Store.Complete(ctx, p)
}

func (s *countingStore) report(b *testing.B) {
	per := func(n, calls int64) float64 { return float64(n) / float64(max(1, calls)) }
	b.ReportMetric(per(s.accepted.Load(), s.accepts.Load()), "msgs/accept")
	b.ReportMetric(per(s.leased.Load(), s.leases.Load()), "deliveries/lease")
	b.ReportMetric(per(s.complete.Load(), s.completes.Load()), "deliveries/complete")
}

// BenchmarkDrain measures how fast a backlog of b.N messages to two
// targets (accepted while the dispatcher was not running) is delivered.
func BenchmarkDrain(b *testing.B) {
	st := &countingStore{Store: benchStore(b)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	batch := make([]fanout.AcceptParams, 0, 256)
	for i := 0; i < b.N; i += cap(batch) {
		batch = batch[:0]
		for range min(cap(batch), b.N-i) {
			batch = append(batch, benchMessage("a", "b"))
		}
		if _, err := st.Accept(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	srvA, nA := echoTarget(b)
	srvB, nB := echoTarget(b)
	d := NewDispatcher(st, newClient(b), DispatcherOptions{})
	cfgA, cfgB := newTargetConfig(b, "a", srvA.URL), newTargetConfig(b, "b", srvB.URL)
	cfgA.MaxInFlight, cfgB.MaxInFlight = 64, 64
	d.SetConfig(newConfig(cfgA, cfgB))
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan error, 1)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { ddone <- d.Run(dctx) }()
	b.Cleanup(func() {
		dcancel()
		if err := <-ddone; err != nil {
			b.Error(err)
		}
	})
	for nA.Load() < int64(b.N) || nB.Load() < int64(b.N) {
		if ctx.Err() != nil {
			b.Fatalf("delivered %d and %d of %d", nA.Load(), nB.Load(), b.N)
		}
		time.Sleep(time.Millisecond) // measuring, not synchronising
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/elapsed.Seconds(), "cpus")
	st.report(b)
}

// cpuTime returns the CPU time (user and system) used by the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDirectExchange is the side-by-side baseline of BenchmarkDeliver
// and BenchmarkDrain: the same upstream client sends b.N requests to each of
// two echo targets with 64 in flight per target, and no store. deliveries/s
// over this req/s, measured in the same run, is the engine's efficiency.
func BenchmarkDirectExchange(b *testing.B) {
	srvA, _ := echoTarget(b)
	srvB, _ := echoTarget(b)
	c := newClient(b)
	p := benchMessage("a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for _, srv := range []*httptest.Server{srvA, srvB} {
		tc := newTargetConfig(b, "t", srv.URL)
		var next atomic.Int64
		for range 64 {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					res := c.Exchange(ctx, upstream.Request{Target: tc, Method: http.MethodPost,
						Header: p.Message.Header, Body: p.Message.Body, MessageID: p.Message.ID, Attempt: 1}, DefaultMaxResponseBody)
					if res.Err != nil {
						b.Error(res.Err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/elapsed.Seconds(), "cpus")
}
