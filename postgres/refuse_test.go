package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/queue"
)

// refusedMessages are messages whose values PostgreSQL cannot hold in its
// text columns (the data plane never sends them: it checks or encodes each
// value first, see docs/security.md), by what is wrong.
func refusedMessages() map[string]fanout.AcceptParams {
	var b [4500]byte
	_, _ = rand.Read(b[:])
	long := hex.EncodeToString(b[:]) // 9,000 characters that do not compress
	mk := func(change func(m *fanout.Message)) fanout.AcceptParams {
		p := benchBatch(1, false, "a")[0]
		change(&p.Message)
		return p
	}
	return map[string]fanout.AcceptParams{
		"key not UTF-8":     mk(func(m *fanout.Message) { m.IdempotencyKey = "k\xff\xfe" }),
		"key of 9000 chars": mk(func(m *fanout.Message) { m.IdempotencyKey = long }),
		"path not UTF-8":    mk(func(m *fanout.Message) { m.Path = "/in?q=\xff" }),
		"NUL in path":       mk(func(m *fanout.Message) { m.Path = "/in?q=\x00" }),
		"NUL in tenant":     mk(func(m *fanout.Message) { m.Tenant = "a\x00" }),
	}
}

func TestAcceptRefusedValueIsNotAnOutage(t *testing.T) {
	t.Parallel()
	s, _ := openMigrated(t)
	for name, p := range refusedMessages() {
		good := benchBatch(2, true, "a")
		_, err := s.Accept(t.Context(), []fanout.AcceptParams{good[0], p, good[1]})
		require.ErrorIs(t, err, fanout.ErrInvalidMessage, name)
		require.NotErrorIs(t, err, fanout.ErrStoreUnavailable, "%s: retrying cannot help", name)
		for _, g := range good {
			_, err := s.GetMessage(t.Context(), g.Message.ID)
			require.ErrorIs(t, err, fanout.ErrNotFound, "%s: nothing of the batch is stored", name)
		}
		// The connection is fine afterwards.
		_, err = s.Accept(t.Context(), good)
		require.NoError(t, err, name)
	}
}

// TestCommitterRefusedValuesFailAlone runs messages PostgreSQL refuses
// among good ones through a committer from concurrent callers, so that
// they share group commits: every good one is committed, each refused one
// gets its own error.
func TestCommitterRefusedValuesFailAlone(t *testing.T) {
	t.Parallel()
	s, _ := openMigrated(t)
	c := queue.NewCommitter(s, queue.CommitterOptions{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	var poison []fanout.AcceptParams
	for _, p := range refusedMessages() {
		poison = append(poison, p)
	}
	const callers, each = 8, 40
	actx, acancel := context.WithTimeout(context.Background(), time.Minute)
	defer acancel()
	var mu sync.Mutex
	var goodIDs []string
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for i := range each {
				if (w+i)%4 == 0 {
					p := poison[(w*each+i)%len(poison)]
					p.Message.ID = fanout.NewMessageID()
					p.Message.ReceivedAt = time.Now()
					_, err := c.Accept(actx, p)
					if err == nil || !errors.Is(err, fanout.ErrInvalidMessage) || errors.Is(err, fanout.ErrStoreUnavailable) {
						t.Errorf("refused message: got %v, want ErrInvalidMessage only", err)
					}
					continue
				}
				p := benchBatch(1, true, "a")[0]
				res, err := c.Accept(actx, p)
				if err != nil {
					t.Errorf("good message failed: %v", err)
					continue
				}
				mu.Lock()
				goodIDs = append(goodIDs, res.MessageID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, goodIDs, callers*each*3/4)
	for _, id := range goodIDs {
		_, err := s.GetMessage(t.Context(), id)
		require.NoError(t, err)
	}
}
