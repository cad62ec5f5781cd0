package stats_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/stats"
)

func Example() {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := stats.New(stats.Options{Now: func() time.Time { return now }})

	// The data plane records each answered request and each attempt.
	s.RecordRequest("profile", "all", true, "", 12*time.Millisecond)
	s.RecordRequest("profile", "all", false, "timeout", 2*time.Second)
	s.RecordAttempt("profile", "crm", "", 10*time.Millisecond)
	s.RecordAttempt("profile", "crm", "timeout", 2*time.Second)

	// The admin API takes a snapshot and adds the store's backlog.
	rep := s.Snapshot(5 * time.Minute)
	rep.AddBacklog([]fanout.TargetBacklog{
		{Target: "crm", Waiting: 2, OldestWaiting: now.Add(-3 * time.Second)},
	}, now)

	// Latencies are within 2% of the recorded 12ms, 10ms and 2s.
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "window": "5m",
	//   "routes": {
	//     "profile": {
	//       "mode": "all",
	//       "requests": 2,
	//       "successes": 1,
	//       "failures": {
	//         "timeout": 1
	//       },
	//       "success_rate": 0.5,
	//       "latency_ms": {
	//         "p50": 11.855,
	//         "p95": 1963.318,
	//         "p99": 1963.318
	//       }
	//     }
	//   },
	//   "targets": {
	//     "crm": {
	//       "attempts": 2,
	//       "successes": 1,
	//       "failures": {
	//         "timeout": 1
	//       },
	//       "success_rate": 0.5,
	//       "latency_ms": {
	//         "p50": 10.142,
	//         "p95": 1963.318,
	//         "p99": 1963.318
	//       },
	//       "backlog": 2,
	//       "oldest_pending_seconds": 3,
	//       "dead": 0
	//     }
	//   }
	// }
}
