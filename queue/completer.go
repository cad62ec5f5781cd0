package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/fanouthq/fanout"
)

// completeTries is how many times the completer tries to record a batch of
// outcomes before it gives up on it; the deliveries then stay leased until
// their leases expire (or Run releases them) and are attempted again.
const completeTries = 5

// completeLinger is how long the completer waits for more outcomes after
// the first of a batch before it records them (unless completeBatch come
// first). Each Store.Complete is one write transaction with a fixed cost
// (with SQLite: its commit rewrites the same index pages) and takes the
// store's write lock from accepts; recording outcomes a few milliseconds
// later costs nothing (the deliveries stay leased meanwhile) and turns
// many small transactions into few larger ones.
const completeLinger = 10 * time.Millisecond

// completion is one outcome waiting to be recorded.
type completion struct {
	params fanout.CompleteParams
	target string
	// wake lists the targets of the steps that run after a step that
	// succeeded: their workers are woken once it is recorded.
	wake []string
}

// completer records attempt outcomes in batches: one goroutine gathers the
// outcomes that arrive within completeLinger of the first (up to
// completeBatch) into one Store.Complete call, the same group-commit idea
// as the Committer's.
type completer struct {
	store  fanout.Store
	log    *slog.Logger
	in     chan completion
	notify func(target string)
}

func newCompleter(store fanout.Store, log *slog.Logger, notify func(string)) *completer {
	return &completer{
		store:  store,
		log:    log,
		in:     make(chan completion, completeBatch),
		notify: notify,
	}
}

// add queues one outcome; it blocks while the queue is full.
func (c *completer) add(x completion) { c.in <- x }

// close ends run once every queued outcome is recorded. No add may follow.
func (c *completer) close() { close(c.in) }

// run records outcomes until close. ctx carries values only; every store
// call has its own deadline so that shutdown still records everything.
func (c *completer) run(ctx context.Context) {
	batch := make([]fanout.CompleteParams, 0, completeBatch)
	wake := make(map[string]struct{}) // targets to wake once the batch is recorded
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		x, ok := <-c.in
		if !ok {
			return
		}
		batch = append(batch[:0], x.params)
		clear(wake)
		x.addWake(wake)
		linger.Reset(completeLinger)
	drain:
		for len(batch) < completeBatch {
			select {
			case x, ok := <-c.in:
				if !ok {
					break drain
				}
				batch = append(batch, x.params)
				x.addWake(wake)
			case <-linger.C:
				break drain
			}
		}
		linger.Stop()
		if c.flush(ctx, batch) {
			for t := range wake {
				c.notify(t)
			}
		}
	}
}

// addWake adds the targets whose workers must look again once x is
// recorded: a retrying delivery's (the worker may have looked at NextDue
// while it was still leased) and those of the steps now due after a step
// that succeeded.
func (x *completion) addWake(wake map[string]struct{}) {
	if x.params.State == fanout.StateRetrying {
		wake[x.target] = struct{}{}
	}
	for _, t := range x.wake {
		wake[t] = struct{}{}
	}
}

// flush records one batch, retrying a few times on store errors. It
// reports whether the batch was recorded.
func (c *completer) flush(ctx context.Context, batch []fanout.CompleteParams) bool {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := c.store.Complete(cctx, batch)
		cancel()
		if err == nil {
			return true
		}
		if try == completeTries {
			c.log.Error("record delivery outcomes failed; the deliveries will be attempted again",
				slog.Int(keyCount, len(batch)), slog.Any(keyError, err))
			return false
		}
		c.log.Warn("record delivery outcomes", slog.Int(keyCount, len(batch)), slog.Int(keyAttempt, try), slog.Any(keyError, err))
		t := time.NewTimer(wait)
		<-t.C
		wait *= 2
	}
}
