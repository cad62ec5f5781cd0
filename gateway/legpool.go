package gateway

import "time"

// Legs of sync routes run on reused goroutines. A new goroutine per leg
// starts on a small stack and grows it (copying) on the way down into the
// HTTP exchange, on every request; a worker that ran a leg before already
// has the stack. A leg is handed to an idle worker when there is one, to a
// new worker otherwise; a worker that found no leg for a whole
// legWorkerIdle period exits, so that a burst leaves no goroutines behind
// for long.
var legQueue = make(chan func())

const legWorkerIdle = 500 * time.Millisecond

// goLeg runs f on a leg worker.
func goLeg(f func()) {
	select {
	case legQueue <- f:
	default:
		go legWorker(f)
	}
}

func legWorker(f func()) {
	f()
	idle := time.NewTimer(legWorkerIdle)
	defer idle.Stop()
	worked := false
	for {
		select {
		case f = <-legQueue:
			f()
			worked = true
		case <-idle.C:
			if !worked {
				return
			}
			worked = false
			idle.Reset(legWorkerIdle)
		}
	}
}
