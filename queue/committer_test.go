package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// gatedStore is the real store with its Accept calls counted; while gate
// is open (non-nil and not closed) the first Accept call waits for it.
type gatedStore struct {
	fanout.Store
	accepts  atomic.Int64
	messages atomic.Int64
	gate     chan struct{}
	entered  chan struct{} // closed when the first Accept call waits
	first    atomic.Bool   // the first Accept call came
}

func newGatedStore(st fanout.Store, gated bool) *gatedStore {
	g := &gatedStore{Store: st, entered: make(chan struct{})}
	if gated {
		g.gate = make(chan struct{})
	}
	return g
}

func (g *gatedStore) Accept(ctx context.Context, params []fanout.AcceptParams) ([]fanout.AcceptResult, error) {
	g.accepts.Add(1)
	g.messages.Add(int64(len(params)))
	if g.gate != nil && g.first.CompareAndSwap(false, true) {
		// Only the first call waits; later ones (another writer's) go on.
		close(g.entered)
		<-g.gate
	}
	return g.Store.Accept(ctx, params)
}

// committerBundle is a running Committer on a real store.
type committerBundle struct {
	store   *gatedStore
	c       *Committer
	cancel  context.CancelFunc
	done    chan error
	commits chan map[string]struct{}
}

func startCommitter(t *testing.T, gated bool, opts CommitterOptions) *committerBundle {
	t.Helper()
	b := &committerBundle{
		store:   newGatedStore(openStore(t), gated),
		done:    make(chan error, 1),
		commits: make(chan map[string]struct{}, 1024),
	}
	if gated && opts.Writers == 0 {
		// The gated tests hold the first commit in the store and look at
		// the group that queues behind it: one writer, so that no second
		// writer takes that group meanwhile.
		opts.Writers = 1
	}
	opts.Logger = testLogger(t)
	opts.OnCommit = func(targets map[string]struct{}) { b.commits <- targets }
	b.c = NewCommitter(b.store, opts)
	var ctx context.Context
	ctx, b.cancel = context.WithCancel(context.Background())
	go func() { b.done <- b.c.Run(ctx) }()
	t.Cleanup(func() {
		if b.store.gate != nil {
			select {
			case <-b.store.gate:
			default:
				close(b.store.gate)
			}
		}
		b.cancel()
		require.NoError(t, <-b.done)
	})
	return b
}

// acceptAsync calls Accept on its own goroutine.
func (b *committerBundle) acceptAsync(ctx context.Context, p fanout.AcceptParams) <-chan acceptResp {
	ch := make(chan acceptResp, 1)
	go func() {
		res, err := b.c.Accept(ctx, p)
		ch <- acceptResp{res: res, err: err}
	}()
	return ch
}

// waitQueued waits until n calls wait in the committer's queue.
func (b *committerBundle) waitQueued(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(b.c.reqs) == n }, waitFor, time.Millisecond)
}

func TestCommitterCommitsConcurrentAcceptsInGroups(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	const n = 200
	params := make([]fanout.AcceptParams, n)
	answers := make([]<-chan acceptResp, n)
	for i := range params {
		params[i] = newMessage("signup", "crm", "analytics")
	}
	// The first commit waits at the gate while the others queue up.
	answers[0] = b.acceptAsync(ctx, params[0])
	<-b.store.entered
	for i := 1; i < n; i++ {
		answers[i] = b.acceptAsync(ctx, params[i])
	}
	b.waitQueued(t, n-1)
	close(b.store.gate)

	for i, ch := range answers {
		r := <-ch
		require.NoError(t, r.err)
		require.Equal(t, params[i].Message.ID, r.res.MessageID)
		require.False(t, r.res.Replayed)
	}
	require.Equal(t, int64(2), b.store.accepts.Load(), "one commit for the first message, one for the 199 queued behind it")
	require.Equal(t, int64(n), b.store.messages.Load())
	require.Equal(t, map[string]struct{}{"crm": {}, "analytics": {}}, <-b.commits)

	for _, p := range params {
		m, err := b.store.GetMessage(ctx, p.Message.ID)
		require.NoError(t, err)
		require.Equal(t, p.Message.Body, m.Message.Body)
		require.Len(t, m.Deliveries, 2)
		for _, d := range m.Deliveries {
			require.Equal(t, fanout.StatePending, d.State)
		}
	}
}

func TestCommitterSecondWriterCommitsWhileFirstWaits(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{Writers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	p0, p1 := newMessage("r", "a"), newMessage("r", "b")
	first := b.acceptAsync(ctx, p0)
	<-b.store.entered // the first writer is held in the store
	second := b.acceptAsync(ctx, p1)
	r := <-second // answered by the other writer while the first waits
	require.NoError(t, r.err)
	require.Equal(t, p1.Message.ID, r.res.MessageID)
	select {
	case <-first:
		t.Fatal("the held commit answered before it was released")
	default:
	}
	close(b.store.gate)
	r = <-first
	require.NoError(t, r.err)
	require.Equal(t, p0.Message.ID, r.res.MessageID)
	require.Equal(t, int64(2), b.store.accepts.Load())
}

func TestCommitterNaturalGroupsUnderLoad(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, false, CommitterOptions{MaxBatch: 64})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	const callers, each = 16, 10
	var wg sync.WaitGroup
	ids := make(chan string, callers*each)
	for range callers {
		wg.Go(func() {
			for range each {
				res, err := b.c.Accept(ctx, newMessage("r", "a"))
				if !assertNoError(t, err) {
					return
				}
				ids <- res.MessageID
			}
		})
	}
	wg.Wait()
	close(ids)
	n := 0
	for id := range ids {
		_, err := b.store.GetMessage(ctx, id)
		require.NoError(t, err)
		n++
	}
	require.Equal(t, callers*each, n)
	require.Less(t, b.store.accepts.Load(), int64(n), "concurrent accepts share commits")
	t.Logf("%d messages in %d commits", n, b.store.accepts.Load())
}

func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestCommitterSameIdempotencyKeyInOneBatch(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	first := b.acceptAsync(ctx, newMessage("r", "a"))
	<-b.store.entered
	p1, p2 := newMessage("r", "a"), newMessage("r", "a")
	p1.Message.IdempotencyKey, p2.Message.IdempotencyKey = "key-1", "key-1"
	a1 := b.acceptAsync(ctx, p1)
	b.waitQueued(t, 1)
	a2 := b.acceptAsync(ctx, p2)
	b.waitQueued(t, 2)
	close(b.store.gate)

	require.NoError(t, (<-first).err)
	r1, r2 := <-a1, <-a2
	require.NoError(t, r1.err)
	require.NoError(t, r2.err)
	require.Equal(t, int64(2), b.store.accepts.Load(), "both keyed messages went in one batch")
	require.Equal(t, p1.Message.ID, r1.res.MessageID)
	require.False(t, r1.res.Replayed)
	require.Equal(t, p1.Message.ID, r2.res.MessageID, "the second gets the first's id")
	require.True(t, r2.res.Replayed)
	_, err := b.store.GetMessage(ctx, p2.Message.ID)
	require.ErrorIs(t, err, fanout.ErrNotFound)
}

func TestCommitterShutdownCommitsQueuedThenRefuses(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	params := []fanout.AcceptParams{newMessage("r", "a")}
	answers := []<-chan acceptResp{b.acceptAsync(ctx, params[0])}
	<-b.store.entered
	for range 10 {
		p := newMessage("r", "a")
		params = append(params, p)
		answers = append(answers, b.acceptAsync(ctx, p))
	}
	b.waitQueued(t, 10)
	b.cancel() // shutdown while a commit is under way and 10 wait
	close(b.store.gate)
	require.NoError(t, <-b.done)
	b.done <- nil // for the cleanup

	for i, ch := range answers {
		r := <-ch
		require.NoError(t, r.err, "waiter %d", i)
		_, err := b.store.GetMessage(ctx, params[i].Message.ID)
		require.NoError(t, err)
	}
	_, err := b.c.Accept(ctx, newMessage("r", "a"))
	require.ErrorIs(t, err, fanout.ErrClosed)
}

func TestCommitterShutdownAnswersBlockedCallers(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{MaxBatch: 1})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	first := b.acceptAsync(ctx, newMessage("r", "a"))
	<-b.store.entered
	queued := b.acceptAsync(ctx, newMessage("r", "a"))
	b.waitQueued(t, 1)
	blocked := b.acceptAsync(ctx, newMessage("r", "a")) // the queue is full
	b.cancel()
	close(b.store.gate)
	require.NoError(t, <-b.done)
	b.done <- nil

	require.NoError(t, (<-first).err)
	require.NoError(t, (<-queued).err)
	if r := <-blocked; r.err != nil {
		require.ErrorIs(t, r.err, fanout.ErrClosed)
	}
}

func TestCommitterCancelledCallerIsNotStored(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	first := b.acceptAsync(ctx, newMessage("r", "a"))
	<-b.store.entered
	gone := newMessage("r", "a")
	gctx, gcancel := context.WithCancel(ctx)
	ans := b.acceptAsync(gctx, gone)
	b.waitQueued(t, 1)
	gcancel()
	require.ErrorIs(t, (<-ans).err, context.Canceled)
	close(b.store.gate)
	require.NoError(t, (<-first).err)

	// The next commit proves the queue moved past the cancelled call.
	res, err := b.c.Accept(ctx, newMessage("r", "a"))
	require.NoError(t, err)
	require.NotEmpty(t, res.MessageID)
	_, err = b.store.GetMessage(ctx, gone.Message.ID)
	require.ErrorIs(t, err, fanout.ErrNotFound)

	_, err = b.c.Accept(gctx, newMessage("r", "a"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestCommitterReturnsStoreError(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, false, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	require.NoError(t, b.store.Close())
	_, err := b.c.Accept(ctx, newMessage("r", "a"))
	require.Error(t, err)
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.False(t, errors.Is(err, fanout.ErrNotFound))
}

func TestCommitterRunTwice(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, false, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := b.c.Accept(ctx, newMessage("r", "a")) // Run is running
	require.NoError(t, err)
	require.Error(t, b.c.Run(ctx))
}

// badSteps returns a message that every store refuses with
// fanout.ErrInvalidMessage: a step runs after a step that does not exist.
func badSteps(route string) fanout.AcceptParams {
	p := newMessage(route)
	p.Steps = []fanout.AcceptStep{{Name: "one", Target: "a", After: []string{"missing"}}}
	return p
}

func TestCommitterRefusedMessageFailsAlone(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// The first commit waits at the gate while the others queue up, so
	// that the refused messages share one group with 97 good ones.
	const n = 100
	params := make([]fanout.AcceptParams, n)
	bad := map[int]bool{1: true, 50: true, 99: true}
	for i := range params {
		params[i] = newMessage("r", "a", "b")
		if bad[i] {
			params[i] = badSteps("r")
		}
	}
	answers := make([]<-chan acceptResp, n)
	answers[0] = b.acceptAsync(ctx, params[0])
	<-b.store.entered
	for i := 1; i < n; i++ {
		answers[i] = b.acceptAsync(ctx, params[i])
	}
	b.waitQueued(t, n-1)
	close(b.store.gate)

	for i, ch := range answers {
		r := <-ch
		if bad[i] {
			require.ErrorIs(t, r.err, fanout.ErrInvalidMessage, "message %d", i)
			require.NotErrorIs(t, r.err, fanout.ErrStoreUnavailable, "message %d: not retryable", i)
			_, err := b.store.GetMessage(ctx, params[i].Message.ID)
			require.ErrorIs(t, err, fanout.ErrNotFound)
			continue
		}
		require.NoError(t, r.err, "message %d: a good message of the group", i)
		require.Equal(t, params[i].Message.ID, r.res.MessageID)
		m, err := b.store.GetMessage(ctx, params[i].Message.ID)
		require.NoError(t, err, "message %d is stored", i)
		require.Len(t, m.Deliveries, 2)
	}
	// One commit for the first message, the refused group of 99, then
	// halves down to each refused message: a bounded number of commits.
	require.LessOrEqual(t, b.store.accepts.Load(), int64(2+2*len(bad)*7))
	require.Equal(t, map[string]struct{}{"a": {}, "b": {}}, <-b.commits)
}

func TestCommitterStoreOutageFailsTheGroupAtOnce(t *testing.T) {
	t.Parallel()
	b := startCommitter(t, true, CommitterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	const n = 10
	answers := make([]<-chan acceptResp, n)
	answers[0] = b.acceptAsync(ctx, newMessage("r", "a"))
	<-b.store.entered
	for i := 1; i < n; i++ {
		answers[i] = b.acceptAsync(ctx, newMessage("r", "a"))
	}
	b.waitQueued(t, n-1)
	require.NoError(t, b.store.Store.Close()) // the store is gone
	close(b.store.gate)

	for i, ch := range answers {
		r := <-ch
		require.ErrorIs(t, r.err, fanout.ErrStoreUnavailable, "message %d", i)
		require.NotErrorIs(t, r.err, fanout.ErrInvalidMessage, "message %d", i)
	}
	require.Equal(t, int64(2), b.store.accepts.Load(), "an outage is not split: one commit per group")
}
