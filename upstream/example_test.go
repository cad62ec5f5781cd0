package upstream_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// Backoff grows exponentially with full jitter: each wait is uniform in
// [0, min(Max, Initial·2^(attempt-1))].
func ExampleBackoff() {
	p := config.Retry{Initial: config.Duration(time.Second), Max: config.Duration(time.Minute)}
	rnd := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt <= 8; attempt++ {
		d := upstream.Backoff(p, attempt, rnd)
		ceil := min(time.Minute, time.Second<<(attempt-1))
		fmt.Printf("attempt %d: within [0, %v]: %v\n", attempt, ceil, d >= 0 && d <= ceil)
	}
	// Output:
	// attempt 1: within [0, 1s]: true
	// attempt 2: within [0, 2s]: true
	// attempt 3: within [0, 4s]: true
	// attempt 4: within [0, 8s]: true
	// attempt 5: within [0, 16s]: true
	// attempt 6: within [0, 32s]: true
	// attempt 7: within [0, 1m0s]: true
	// attempt 8: within [0, 1m0s]: true
}

// Redact copies a header with its secrets replaced, for logs and records.
func ExampleRedact() {
	h := http.Header{
		"Authorization": {"Bearer s3cret"},
		"X-Signature":   {"abc"},
		"Content-Type":  {"application/json"},
	}
	r := upstream.Redact(h, []string{"X-Signature"})
	fmt.Println(r.Get("Authorization"), r.Get("X-Signature"), r.Get("Content-Type"))
	// Output: [REDACTED] [REDACTED] application/json
}
