package metrics_test

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/metrics"
)

func Example() {
	reg := metrics.NewRegistry() // never the global one
	m := metrics.New(reg)

	// The data plane and the queue record on the hot path.
	m.ObserveRequest("signup", "async", 202, 3*time.Millisecond)
	m.ObserveAttempt("signup", "crm", metrics.Outcome(fanout.ClassNone), 20*time.Millisecond)
	m.ObserveAttempt("signup", "crm", metrics.Outcome(fanout.ClassTimeout), 5*time.Second)
	m.IncDead("crm")

	// The admin listener serves them at GET /metrics.
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "fanout_requests_total") || strings.HasPrefix(line, "fanout_attempts_total") ||
			strings.HasPrefix(line, "fanout_dead_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// fanout_attempts_total{outcome="success",route="signup",target="crm"} 1
	// fanout_attempts_total{outcome="timeout",route="signup",target="crm"} 1
	// fanout_dead_total{target="crm"} 1
	// fanout_requests_total{code="202",mode="async",route="signup"} 1
}
