package gateway

import (
	"sync"
	"time"
)

// legPool runs the legs of sync routes on reused goroutines. A new
// goroutine per leg starts on a small stack and grows it (copying) on the
// way down into the HTTP exchange, on every request; a worker that ran a
// leg before already has the stack. A leg is handed to an idle worker when
// there is one, to a new worker otherwise; a worker that found no leg for a
// whole idle period exits, so that a burst leaves no goroutines behind for
// long. The pool belongs to its Gateway: Close stops every idle worker and
// waits for the busy ones to finish their leg.
type legPool struct {
	queue chan func()
	idle  time.Duration

	mu      sync.Mutex
	stopped bool
	stop    chan struct{}
	workers sync.WaitGroup
}

const legWorkerIdle = 500 * time.Millisecond

func newLegPool(idle time.Duration) *legPool {
	return &legPool{queue: make(chan func()), idle: idle, stop: make(chan struct{})}
}

// run runs f on a leg worker. After close, f runs on a goroutine of its
// own (the caller waits for it as for any leg).
func (p *legPool) run(f func()) {
	select {
	case p.queue <- f:
		return
	default:
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		go f()
		return
	}
	p.workers.Add(1)
	p.mu.Unlock()
	go p.work(f)
}

func (p *legPool) work(f func()) {
	defer p.workers.Done()
	f()
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	worked := false
	for {
		select {
		case f = <-p.queue:
			f()
			worked = true
		case <-idle.C:
			if !worked {
				return
			}
			worked = false
			idle.Reset(p.idle)
		case <-p.stop:
			return
		}
	}
}

// close stops the idle workers and waits for the busy ones.
func (p *legPool) close() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.workers.Wait()
}
