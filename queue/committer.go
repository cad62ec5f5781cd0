package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fanouthq/fanout"
)

// Committer defaults.
const (
	// DefaultMaxBatch is the default CommitterOptions.MaxBatch.
	DefaultMaxBatch = 256
	// DefaultCommitTimeout is the default CommitterOptions.CommitTimeout.
	DefaultCommitTimeout = 10 * time.Second
	// DefaultWriters is the default CommitterOptions.Writers.
	DefaultWriters = 1
)

// CommitterOptions configures a Committer. Zero fields take the documented
// defaults.
type CommitterOptions struct {
	// Logger receives the committer's log lines. Nil discards them.
	Logger *slog.Logger
	// MaxBatch is the most messages committed in one Store.Accept call.
	// Default 256.
	MaxBatch int
	// CommitTimeout bounds one Store.Accept call. It is not shortened by
	// the cancellation of Run's context, so that a commit under way at
	// shutdown still finishes. Default 10s.
	CommitTimeout time.Duration
	// OnCommit, when set, is called by Run after each successful commit
	// with the targets that got new deliveries (replayed messages add
	// none); it is how the delivery workers are woken. It runs on a
	// writer goroutine, possibly on two at once, and must not block. Nil
	// means none.
	OnCommit func(targets map[string]struct{})
	// Writers is how many groups may be in Store.Accept at once. With two,
	// one group can be written while the previous one waits for its fsync
	// (a store that syncs outside its write lock, as the SQLite store does,
	// overlaps them), at the price of smaller groups: on a 2-core machine
	// short of CPU that measured no faster (BenchmarkCommitterAccept with
	// 64 callers: 14-16k msgs/s at 19 msgs per commit, against 12-18k at
	// 30 with one writer). Default 1: one group at a time.
	Writers int
}

// Committer commits accepted messages to the store in groups: a writer
// goroutine (Run starts Writers of them) gathers every Accept call already
// waiting into one Store.Accept transaction, so that one fsync makes many
// messages durable. A message the store refuses (fanout.ErrInvalidMessage)
// fails alone: the rest of its group is committed without it.
// Accept is safe for concurrent use; Run must be running for Accept to
// return anything but an error.
type Committer struct {
	store    fanout.Store
	log      *slog.Logger
	maxBatch int
	writers  int
	timeout  time.Duration
	onCommit func(map[string]struct{})

	reqs chan *acceptReq
	// stopping is closed when Run starts to shut down; it unblocks callers
	// waiting to enqueue.
	stopping chan struct{}

	// mu guards closed. Callers hold the read lock while they enqueue, so
	// that Run, once it has set closed under the write lock, knows that the
	// channel holds everything it will ever receive.
	mu      sync.RWMutex
	closed  bool
	started bool
}

// acceptReq is one Accept call waiting for its batch.
type acceptReq struct {
	ctx    context.Context
	params fanout.AcceptParams
	done   chan acceptResp // buffered: Run never blocks on a caller
}

type acceptResp struct {
	res fanout.AcceptResult
	err error
}

var acceptReqPool = sync.Pool{New: func() any {
	return &acceptReq{done: make(chan acceptResp, 1)}
}}

// NewCommitter returns a Committer writing to store. Call Run to start it.
func NewCommitter(store fanout.Store, opts CommitterOptions) *Committer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = DefaultCommitTimeout
	}
	if opts.Writers <= 0 {
		opts.Writers = DefaultWriters
	}
	return &Committer{
		store:    store,
		log:      loggerOrDiscard(opts.Logger),
		maxBatch: opts.MaxBatch,
		writers:  opts.Writers,
		timeout:  opts.CommitTimeout,
		onCommit: opts.OnCommit,
		reqs:     make(chan *acceptReq, opts.MaxBatch),
		stopping: make(chan struct{}),
	}
}

// Accept stores one message with its deliveries and returns once the group
// it was committed with is durable. The error wraps the store's error when
// the commit failed: it wraps fanout.ErrInvalidMessage when the store
// refused this very message (the others of its group were committed
// without it), and otherwise nothing of the group was stored. It is
// ctx.Err() when
// ctx ended first (the message may or may not be stored; a client retrying
// with its Idempotency-Key gets the original), and is fanout.ErrClosed when
// the Committer has stopped.
func (c *Committer) Accept(ctx context.Context, p fanout.AcceptParams) (fanout.AcceptResult, error) {
	if err := ctx.Err(); err != nil {
		return fanout.AcceptResult{}, err
	}
	r := acceptReqPool.Get().(*acceptReq)
	r.ctx, r.params = ctx, p

	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		c.recycle(r)
		return fanout.AcceptResult{}, fanout.ErrClosed
	}
	select {
	case c.reqs <- r:
		c.mu.RUnlock()
	case <-c.stopping:
		c.mu.RUnlock()
		c.recycle(r)
		return fanout.AcceptResult{}, fanout.ErrClosed
	case <-ctx.Done():
		c.mu.RUnlock()
		c.recycle(r)
		return fanout.AcceptResult{}, ctx.Err()
	}

	select {
	case resp := <-r.done:
		c.recycle(r)
		return resp.res, resp.err
	case <-ctx.Done():
		select {
		case resp := <-r.done: // answered at the same time: prefer the answer
			c.recycle(r)
			return resp.res, resp.err
		default:
		}
		// Run still owns r and may answer into its buffer; r is left to
		// the garbage collector rather than reused.
		return fanout.AcceptResult{}, ctx.Err()
	}
}

func (c *Committer) recycle(r *acceptReq) {
	r.ctx, r.params = nil, fanout.AcceptParams{}
	acceptReqPool.Put(r)
}

// Run runs the committer's writer loops (Writers of them). Each blocks for
// the first waiting Accept, adds every other one already waiting (up to
// MaxBatch) without waiting for more, commits them in one Store.Accept call
// and answers each. When ctx is cancelled Run stops taking new calls, lets
// the commits under way finish, commits the calls already queued, and
// returns nil; Accept then returns fanout.ErrClosed. Run may be called
// once.
func (c *Committer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("queue: committer: Run called twice")
	}
	c.started = true
	c.mu.Unlock()

	var wg sync.WaitGroup
	for range c.writers - 1 {
		wg.Go(func() { c.loop(ctx) })
	}
	c.loop(ctx)
	wg.Wait()
	c.shutdown(ctx)
	return nil
}

// loop is one writer: it commits groups until ctx is cancelled.
func (c *Committer) loop(ctx context.Context) {
	batch := make([]*acceptReq, 0, c.maxBatch)
	for {
		select {
		case r := <-c.reqs:
			batch = c.fill(append(batch[:0], r))
			c.commit(ctx, batch)
		case <-ctx.Done():
			return
		}
	}
}

// fill adds to batch the requests already queued, up to maxBatch.
func (c *Committer) fill(batch []*acceptReq) []*acceptReq {
	for len(batch) < c.maxBatch {
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// shutdown refuses new calls and commits the queued ones.
func (c *Committer) shutdown(ctx context.Context) {
	close(c.stopping)
	c.mu.Lock() // waits for callers that are enqueueing
	c.closed = true
	c.mu.Unlock()
	batch := make([]*acceptReq, 0, c.maxBatch)
	for {
		batch = c.fill(batch[:0])
		if len(batch) == 0 {
			return
		}
		c.commit(ctx, batch)
	}
}

// commit stores the batch in one transaction and answers every caller.
// Callers that already gave up (their context ended) are left out: they
// were told the message may not be stored, and storing less is better.
func (c *Committer) commit(ctx context.Context, batch []*acceptReq) {
	var targets map[string]struct{}
	if c.onCommit != nil {
		targets = make(map[string]struct{}, 4)
	}
	c.write(ctx, batch, targets)
	if len(targets) > 0 {
		c.onCommit(targets)
	}
}

// write stores group in one Store.Accept call, answers its callers and adds
// the targets that got new deliveries to targets (when not nil). When the
// store refuses the group because a message of it can never be stored
// (fanout.ErrInvalidMessage), write stores each half of the group on its
// own, down to the refused message, which alone gets the error: one bad
// message costs about 2·log2(len(group)) more commits, and a group without
// one costs nothing more. Any other failure (the store is down or slow)
// fails the whole group at once.
func (c *Committer) write(ctx context.Context, group []*acceptReq, targets map[string]struct{}) {
	params := make([]fanout.AcceptParams, 0, len(group))
	live := group[:0] // in place: group is the caller's to reuse
	for _, r := range group {
		if r.ctx.Err() != nil {
			continue
		}
		params = append(params, r.params)
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	results, err := c.store.Accept(cctx, params)
	cancel()
	if err == nil && len(results) != len(params) {
		err = fmt.Errorf("store returned %d results for %d messages", len(results), len(params))
	}
	if err != nil && len(live) > 1 && errors.Is(err, fanout.ErrInvalidMessage) {
		c.log.Warn("group commit refused a message; committing the group in halves",
			slog.Int(keyCount, len(params)), slog.Any(keyError, err))
		half := len(live) / 2
		c.write(ctx, live[:half], targets)
		c.write(ctx, live[half:], targets)
		return
	}
	if err != nil {
		err = fmt.Errorf("queue: accept %d messages: %w", len(params), err)
		c.log.Error("group commit failed", slog.Int(keyCount, len(params)), slog.Any(keyError, err))
		for _, r := range live {
			r.done <- acceptResp{err: err}
		}
		return
	}

	for i, r := range live {
		if targets != nil && !results[i].Replayed {
			for _, t := range params[i].Targets {
				targets[t] = struct{}{}
			}
			for _, st := range params[i].Steps {
				if len(st.After) == 0 {
					targets[st.Target] = struct{}{}
				}
			}
		}
		r.done <- acceptResp{res: results[i]}
	}
}
