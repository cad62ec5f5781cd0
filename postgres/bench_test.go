package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/postgres"
)

// benchStore opens a migrated store on a fresh schema, with room in its
// pool for the benchmark's goroutines, and returns it with the schema.
func benchStore(b *testing.B) (*postgres.Store, string) {
	b.Helper()
	schema := newSchema(b)
	s, err := postgres.Open(b.Context(), testURL(b), postgres.Options{Schema: schema, MaxConns: 16})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, s.Close()) })
	require.NoError(b, s.Migrate(b.Context()))
	return s, schema
}

// benchBatch returns n messages of 1 KiB to targets, as the async route of
// BENCHMARKS.md S3 stores them. With keyed set each carries an
// idempotency key to check.
func benchBatch(n int, keyed bool, targets ...string) []fanout.AcceptParams {
	body := bytes.Repeat([]byte(`{"k":"v"},`), 103)[:1024]
	now := time.Now()
	params := make([]fanout.AcceptParams, n)
	for i := range params {
		params[i] = fanout.AcceptParams{
			Message: fanout.Message{
				ID:     fanout.NewMessageID(),
				Route:  "signup",
				Method: http.MethodPost,
				Path:   "/send-info",
				Header: http.Header{
					"Content-Type": {"application/json"},
					"User-Agent":   {"wrk"},
				},
				Body:       body,
				ReceivedAt: now,
			},
			Targets:     targets,
			DedupWindow: 24 * time.Hour,
		}
		if keyed {
			params[i].Message.IdempotencyKey = params[i].Message.ID
		}
	}
	return params
}

// BenchmarkAccept measures Accept from one goroutine, one transaction (one
// WAL flush) per call, for the batch sizes group commit produces; keyed
// batches check an idempotency key per message.
func BenchmarkAccept(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		for _, size := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("keyed=%t/batch=%d", keyed, size), func(b *testing.B) {
				s, _ := benchStore(b)
				ctx := b.Context()
				batches := make([][]fanout.AcceptParams, 64)
				for i := range batches {
					batches[i] = benchBatch(size, keyed, "crm", "analytics")
				}
				i := 0
				cpu := startCPU()
				for b.Loop() {
					batch := batches[i%len(batches)]
					for j := range batch {
						batch[j].Message.ID = fanout.NewMessageID()
						if keyed {
							batch[j].Message.IdempotencyKey = batch[j].Message.ID
						}
					}
					i++
					if _, err := s.Accept(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64(cpu.since().Microseconds())/float64(b.N*size), "cpu-µs/msg")
			})
		}
	}
}

// BenchmarkAcceptNodes measures Accept of batches of 64 from several
// writers at once, each on a store of its own as the group-commit writer of
// one node would be: the nodes=2/nodes=1 ratio of BENCHMARKS.md S7 for the
// store alone.
func BenchmarkAcceptNodes(b *testing.B) {
	const size = 64
	for _, nodes := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			first, schema := benchStore(b)
			stores := []*postgres.Store{first}
			for range nodes - 1 {
				s, err := postgres.Open(b.Context(), testURL(b), postgres.Options{Schema: schema, MaxConns: 4})
				require.NoError(b, err)
				b.Cleanup(func() { require.NoError(b, s.Close()) })
				stores = append(stores, s)
			}
			var accepted atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w, s := range stores {
				calls := b.N / nodes
				if w < b.N%nodes {
					calls++
				}
				wg.Go(func() {
					batch := benchBatch(size, false, "crm", "analytics")
					for range calls {
						for j := range batch {
							batch[j].Message.ID = fanout.NewMessageID()
						}
						if _, err := s.Accept(b.Context(), batch); err != nil {
							b.Error(err)
							return
						}
						accepted.Add(size)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(accepted.Load())/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLeaseComplete measures the delivery workers' side: each op is
// one cycle of a leaser, Lease of 64 deliveries of a target then Complete
// of them as succeeded in one call. With leasers=n, n goroutines do it on
// the same target at once, as n workers (of one node or several) would.
func BenchmarkLeaseComplete(b *testing.B) {
	const limit = 64
	for _, leasers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("leasers=%d", leasers), func(b *testing.B) {
			s, _ := benchStore(b)
			ctx := b.Context()
			for n := 0; n < b.N*limit; n += 256 {
				if _, err := s.Accept(ctx, benchBatch(256, false, "crm")); err != nil {
					b.Fatal(err)
				}
			}
			var delivered atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu := startCPU()
			for w := range leasers {
				cycles := b.N / leasers
				if w < b.N%leasers {
					cycles++
				}
				wg.Go(func() {
					owner := fmt.Sprintf("bench-%d", w)
					for range cycles {
						n, err := leaseComplete(ctx, s, owner, limit)
						if err != nil {
							b.Error(err)
							return
						}
						delivered.Add(int64(n))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(cpu.since().Microseconds())/float64(max(delivered.Load(), 1)), "cpu-µs/delivery")
		})
	}
}

// leaseComplete leases up to limit deliveries of "crm" and completes them
// as succeeded; it returns how many.
func leaseComplete(ctx context.Context, s *postgres.Store, owner string, limit int) (int, error) {
	now := time.Now()
	leased, err := s.Lease(ctx, fanout.LeaseParams{Target: "crm", Owner: owner, Limit: limit, Now: now, LeaseFor: time.Minute})
	if err != nil {
		return 0, err
	}
	done := make([]fanout.CompleteParams, len(leased))
	for i, ld := range leased {
		done[i] = fanout.CompleteParams{
			DeliveryID: ld.Delivery.ID,
			Owner:      owner,
			State:      fanout.StateSucceeded,
			Now:        now,
			Attempt: fanout.Attempt{
				Number: ld.Delivery.Attempts, StartedAt: now, Duration: time.Millisecond,
				RequestMethod: http.MethodPost, RequestURL: "http://127.0.0.1:18081/in",
				RequestHeader:  http.Header{"Idempotency-Key": {ld.Message.ID}},
				Status:         http.StatusOK,
				ResponseHeader: http.Header{"Content-Type": {"application/json"}},
				ResponseBody:   []byte(`{"ok":true}`),
			},
		}
	}
	return len(leased), s.Complete(ctx, done)
}

// cpuClock reads the process's CPU time (user and system): the client's
// share only, the server's runs in other processes.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

func (c cpuClock) since() time.Duration { return processCPU() - c.start }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
