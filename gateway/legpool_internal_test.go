package gateway

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The pool's workers outlive their leg (so the next leg reuses the stack)
// but not the pool: close stops them however long their idle period is.
func TestLegPoolCloseStopsWorkers(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := newLegPool(time.Hour)
	var wg sync.WaitGroup
	ran := make(chan int, 8)
	for i := range 8 {
		wg.Add(1)
		p.run(func() { defer wg.Done(); ran <- i })
	}
	wg.Wait()
	require.Len(t, ran, 8)
	p.close()
	goleak.VerifyNone(t, before)

	// After close a leg still runs, on a goroutine of its own.
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
}
