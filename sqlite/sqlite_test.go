package sqlite_test

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/sqlite"
	"github.com/fanouthq/fanout/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger writes the store's logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter is an io.Writer on t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// open opens a store on path, closed when the test ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) func() fanout.Store {
		path := filepath.Join(t.TempDir(), "fanout.db")
		return func() fanout.Store { return open(t, path) }
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "fanout.db")
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msg := fanout.Message{
		ID: fanout.NewMessageID(), Route: "r", Method: http.MethodPost, Path: "/in",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"n":1}`),
		IdempotencyKey: "k", ReceivedAt: received,
	}

	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	_, err = s.Accept(ctx, []fanout.AcceptParams{{Message: msg, Targets: []string{"a", "b"}, DedupWindow: time.Hour}})
	require.NoError(t, err)
	leased, err := s.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "w", Limit: 1, Now: received, LeaseFor: time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.NoError(t, s.Close())

	_, err = s.GetMessage(ctx, msg.ID)
	require.ErrorIs(t, err, fanout.ErrClosed, "a closed store says so")
	require.NoError(t, s.Close(), "Close is idempotent")

	s = open(t, path)
	require.NoError(t, s.Migrate(ctx), "migrating again is a no-op")
	md, err := s.GetMessage(ctx, msg.ID)
	require.NoError(t, err)
	require.Equal(t, msg.Body, md.Message.Body)
	require.Equal(t, msg.Header, md.Message.Header)
	require.Len(t, md.Deliveries, 2)

	// The lease taken before the restart expires and the work is done.
	later := received.Add(2 * time.Minute)
	leased, err = s.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: "w2", Limit: 10, Now: later, LeaseFor: time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.Equal(t, 2, leased[0].Delivery.Attempts)

	// The idempotency key survived too.
	again := msg
	again.ID = fanout.NewMessageID()
	res, err := s.Accept(ctx, []fanout.AcceptParams{{Message: again, Targets: []string{"a"}, DedupWindow: time.Hour}})
	require.NoError(t, err)
	require.Equal(t, fanout.AcceptResult{MessageID: msg.ID, Replayed: true}, res[0])
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(t.Context(), "", sqlite.Options{})
	require.Error(t, err)
	_, err = sqlite.Open(t.Context(), ":memory:", sqlite.Options{})
	require.Error(t, err)
	_, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "dir", "fanout.db"), sqlite.Options{})
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
}

func TestWriteErrorsAreUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "fanout.db"))
	// Not migrated: every statement fails on the missing tables.
	_, err := s.Accept(t.Context(), []fanout.AcceptParams{{Message: fanout.Message{Route: "r"}, Targets: []string{"a"}}})
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.ErrorContains(t, err, "accept")
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "fanout.db"))
	errs := make(chan error, 2)
	go func() { errs <- s.Migrate(t.Context()) }()
	go func() { errs <- s.Migrate(t.Context()) }()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
}

// TestOneStorePerFile opens a file twice, as a second process would: the
// second Open fails at once, naming the file, until the first Store is
// closed (or its process ends, which frees the lock the same way).
func TestOneStorePerFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fanout.db")
	first := open(t, path)
	require.NoError(t, first.Migrate(t.Context()))

	_, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	require.ErrorIs(t, err, sqlite.ErrLocked)
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.ErrorContains(t, err, path+": ")
	require.ErrorContains(t, err, "in use by another fanout process (pid "+strconv.Itoa(os.Getpid())+", lock file "+path+".lock)")

	require.NoError(t, first.Close())
	again := open(t, path)
	require.NoError(t, again.Migrate(t.Context()), "free once the first is closed")
}
