package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/postgres"
	"github.com/fanouthq/fanout/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// urlEnv names the environment variable with the URL of the test database.
const urlEnv = "FANOUT_TEST_POSTGRES_URL"

// testURL returns the URL of the test database, or skips the test.
func testURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(urlEnv)
	if url == "" {
		tb.Skip(urlEnv + " is not set; skipping PostgreSQL store tests")
	}
	return url
}

// testLogger writes the store's logs to t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter is an io.Writer on t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// connect opens a plain connection to the test database, closed when the
// test ends.
func connect(tb testing.TB) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), testURL(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// newSchema returns the name of a schema that does not exist yet; it is
// dropped, with everything in it, when the test ends (after the stores
// opened on it are closed: cleanups run last registered first).
func newSchema(tb testing.TB) string {
	tb.Helper()
	url := testURL(tb)
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	schema := "fanout_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// open opens a store on schema, closed when the test ends.
func open(tb testing.TB, schema string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), testURL(tb), postgres.Options{Logger: testLogger(tb), Schema: schema, MaxConns: 8})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, s.Close()) })
	return s
}

// openMigrated opens a store on a fresh schema and migrates it.
func openMigrated(tb testing.TB) (*postgres.Store, string) {
	tb.Helper()
	schema := newSchema(tb)
	s := open(tb, schema)
	require.NoError(tb, s.Migrate(tb.Context()))
	return s, schema
}

func TestStore(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.Run(t, func(t *testing.T) func() fanout.Store {
		t.Helper()
		schema := newSchema(t)
		return func() fanout.Store { return open(t, schema) }
	})
}

// message returns a message of route received at.
func message(route string, at time.Time) fanout.Message {
	return fanout.Message{
		ID:         fanout.NewMessageID(),
		Route:      route,
		Method:     http.MethodPost,
		Path:       "/in",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"n":1}`),
		ReceivedAt: at,
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	schema := newSchema(t) // does not exist: Migrate creates it
	const processes = 6
	stores := make([]*postgres.Store, processes)
	for i := range stores {
		stores[i] = open(t, schema)
	}
	start := make(chan struct{})
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "store %d", i)
	}

	conn := connect(t)
	rows, err := conn.Query(t.Context(),
		"SELECT version, name FROM "+pgx.Identifier{schema, "fanout_migrations"}.Sanitize()+" ORDER BY version")
	require.NoError(t, err)
	type applied struct {
		Version int32
		Name    string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	require.NoError(t, err)
	require.Equal(t, []applied{{1, "init"}, {2, "steps"}, {3, "nodes"}, {4, "attempt_count"}, {5, "access"}}, got, "every migration recorded once")

	var tables int
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&tables))
	require.Equal(t, 10, tables, "messages, deliveries, attempts, idempotency_keys, nodes, subscriptions, api_keys, audit_log, access_version, fanout_migrations")

	// The schema works from every process.
	m := message("r", time.Now())
	_, err = stores[0].Accept(t.Context(), []fanout.AcceptParams{{Message: m, Targets: []string{"a"}}})
	require.NoError(t, err)
	_, err = stores[processes-1].GetMessage(t.Context(), m.ID)
	require.NoError(t, err)
	require.NoError(t, stores[1].Migrate(t.Context()), "migrating again is a no-op")
}

// listener runs Store.Listen until the test ends and collects the targets
// it is called with.
type listener struct {
	got chan string
}

// listen starts Listen on s; the test's cleanup stops it and requires it to
// have returned nil.
func listen(t *testing.T, s *postgres.Store) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{got: make(chan string, 4096)}
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, func(target string) {
			select {
			case l.got <- target:
			default: // the test reads what it needs; drop the rest
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return l
}

// waitFor waits until the listener is called with target and reports
// whether it was within timeout.
func (l *listener) waitFor(target string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case got := <-l.got:
			if got == target {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// established accepts messages to a target of its own through s until the
// listener hears of it, so that the listener is known to be listening.
func (l *listener) established(t *testing.T, s *postgres.Store) {
	t.Helper()
	const target = "warm-up"
	for range 100 {
		_, err := s.Accept(t.Context(), []fanout.AcceptParams{{Message: message("r", time.Now()), Targets: []string{target}}})
		require.NoError(t, err)
		if l.waitFor(target, 100*time.Millisecond) {
			return
		}
	}
	require.Fail(t, "the listener never heard of work")
}

func TestListenAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	node1, schema := openMigrated(t)
	node2 := open(t, schema)
	l := listen(t, node2)
	l.established(t, node1)

	// Accept on one node wakes the other.
	m := message("r", time.Now())
	_, err := node1.Accept(ctx, []fanout.AcceptParams{{Message: m, Targets: []string{"crm", "analytics"}}})
	require.NoError(t, err)
	require.True(t, l.waitFor("crm", 10*time.Second), "no notification for crm")

	// So do a replay and a backfill.
	now := time.Now()
	leased, err := node2.Lease(ctx, fanout.LeaseParams{Target: "analytics", Owner: "w", Limit: 1, Now: now})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.NoError(t, node2.Complete(ctx, []fanout.CompleteParams{{
		DeliveryID: leased[0].Delivery.ID, Owner: "w", State: fanout.StateDead, Now: now,
		Attempt: fanout.Attempt{Status: 400, StartedAt: now, Class: fanout.ClassStatus, Error: "400 Bad Request"},
	}}))
	n, err := node1.Replay(ctx, fanout.ReplayParams{MessageID: m.ID, Target: "analytics", Now: now})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, l.waitFor("analytics", 10*time.Second), "no notification for the replay")

	n, err = node1.Backfill(ctx, fanout.BackfillParams{Route: "r", Target: "late", Since: now.Add(-time.Hour), Now: time.Now()})
	require.NoError(t, err)
	require.Positive(t, n)
	require.True(t, l.waitFor("late", 10*time.Second), "no notification for the backfill")

	// A lease given back is announced: another node may take it now.
	leased, err = node1.Lease(ctx, fanout.LeaseParams{Target: "late", Owner: "w1", Limit: 100, Now: time.Now()})
	require.NoError(t, err)
	require.NotEmpty(t, leased)
	n, err = node1.ReleaseLeases(ctx, fanout.ReleaseParams{Owner: "w1"})
	require.NoError(t, err)
	require.Equal(t, len(leased), n)
	require.True(t, l.waitFor("late", 10*time.Second), "no notification for the released leases")
}

func TestListenIgnoresOtherSchemas(t *testing.T) {
	t.Parallel()
	mine, _ := openMigrated(t)
	other, _ := openMigrated(t)
	l := listen(t, mine)
	l.established(t, mine)
	_, err := other.Accept(t.Context(), []fanout.AcceptParams{{Message: message("r", time.Now()), Targets: []string{"elsewhere"}}})
	require.NoError(t, err)
	_, err = mine.Accept(t.Context(), []fanout.AcceptParams{{Message: message("r", time.Now()), Targets: []string{"here"}}})
	require.NoError(t, err)
	deadline := time.After(10 * time.Second)
	for target := ""; target != "here"; {
		select {
		case target = <-l.got:
			require.NotEqual(t, "elsewhere", target, "a notification from another schema")
		case <-deadline:
			require.Fail(t, "no notification for here")
		}
	}
}

func TestListenReconnects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, schema := openMigrated(t)
	l := listen(t, s)
	l.established(t, s)

	// Kill the listening connection, as a failover or a network cut would.
	conn := connect(t)
	var killed int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = 'fanout listen' AND query = $1`, `LISTEN "fanout_deliveries:`+schema+`"`).Scan(&killed))
	require.Equal(t, 1, killed)

	// Work accepted while it was away is reported after it reconnects
	// (from the catch-up), and new work from then on.
	_, err := s.Accept(ctx, []fanout.AcceptParams{{Message: message("r", time.Now()), Targets: []string{"while-away"}}})
	require.NoError(t, err)
	require.True(t, l.waitFor("while-away", 30*time.Second), "nothing heard after the connection was lost")
	_, err = s.Accept(ctx, []fanout.AcceptParams{{Message: message("r", time.Now()), Targets: []string{"after"}}})
	require.NoError(t, err)
	require.True(t, l.waitFor("after", 30*time.Second), "no notification after reconnecting")
}

func TestListenEndsOnClose(t *testing.T) {
	t.Parallel()
	s, err := postgres.Open(t.Context(), testURL(t), postgres.Options{Schema: newSchema(t)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Listen(context.Background(), func(string) {}) }()
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-done, fanout.ErrClosed)
}

func TestTwoNodesNeverLeaseTheSameDelivery(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	node1, schema := openMigrated(t)
	node2 := open(t, schema)
	const total = 2000
	t0 := time.Now().Add(-time.Hour)
	for batch := range total / 200 {
		params := make([]fanout.AcceptParams, 200)
		for i := range params {
			params[i] = fanout.AcceptParams{Message: message("r", t0.Add(time.Duration(batch*200+i)*time.Millisecond)), Targets: []string{"a"}}
		}
		_, err := node1.Accept(ctx, params)
		require.NoError(t, err)
	}

	// Two workers per node lease and complete until nothing is left.
	type worker struct {
		node  *postgres.Store
		owner string
	}
	workers := []worker{{node1, "n1-w1"}, {node1, "n1-w2"}, {node2, "n2-w1"}, {node2, "n2-w2"}}
	got := make([][]int64, len(workers))
	errs := make([]error, len(workers))
	now := time.Now()
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			for {
				leased, err := w.node.Lease(ctx, fanout.LeaseParams{Target: "a", Owner: w.owner, Limit: 13, Now: now, LeaseFor: time.Hour})
				if err != nil || len(leased) == 0 {
					errs[i] = err
					return
				}
				done := make([]fanout.CompleteParams, len(leased))
				for j, ld := range leased {
					got[i] = append(got[i], ld.Delivery.ID)
					done[j] = fanout.CompleteParams{
						DeliveryID: ld.Delivery.ID, Owner: w.owner, State: fanout.StateSucceeded, Now: now,
						Attempt: fanout.Attempt{Number: ld.Delivery.Attempts, StartedAt: now, Status: 200},
					}
				}
				if err := w.node.Complete(ctx, done); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[int64]string{}
	for i, w := range workers {
		require.NoError(t, errs[i], w.owner)
		for _, id := range got[i] {
			prev, dup := seen[id]
			require.False(t, dup, "delivery %d leased by %s and %s", id, prev, w.owner)
			seen[id] = w.owner
		}
	}
	require.Len(t, seen, total, "every delivery leased once")
	require.NotEmpty(t, slices.Concat(got[0], got[1]), "node 1 leased nothing: the test did not race")
	require.NotEmpty(t, slices.Concat(got[2], got[3]), "node 2 leased nothing: the test did not race")
	backlog, err := node2.Backlog(ctx)
	require.NoError(t, err)
	require.Empty(t, backlog, "every delivery succeeded")
}

func TestIdempotencyAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	node1, schema := openMigrated(t)
	node2 := open(t, schema)
	const keys, rounds = 40, 5
	now := time.Now()

	// Each round, both nodes accept a batch with the same keys at once,
	// in opposite orders (so that their claims cross) and with fresh
	// message ids: exactly one message per key may be stored.
	for round := range rounds {
		batch := func(reverse bool) []fanout.AcceptParams {
			params := make([]fanout.AcceptParams, keys)
			for i := range params {
				m := message("r", now)
				m.IdempotencyKey = fmt.Sprintf("round-%d-key-%d", round, i)
				params[i] = fanout.AcceptParams{Message: m, Targets: []string{"a", "b"}, DedupWindow: time.Hour}
			}
			if reverse {
				slices.Reverse(params)
			}
			return params
		}
		p1, p2 := batch(false), batch(true)
		var r1, r2 []fanout.AcceptResult
		var err1, err2 error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; r1, err1 = node1.Accept(ctx, p1) })
		wg.Go(func() { <-start; r2, err2 = node2.Accept(ctx, p2) })
		close(start)
		wg.Wait()
		require.NoError(t, err1)
		require.NoError(t, err2)

		byKey := map[string][]fanout.AcceptResult{}
		for i, r := range r1 {
			k := p1[i].Message.IdempotencyKey
			byKey[k] = append(byKey[k], r)
		}
		for i, r := range r2 {
			k := p2[i].Message.IdempotencyKey
			byKey[k] = append(byKey[k], r)
		}
		require.Len(t, byKey, keys)
		for k, rs := range byKey {
			require.Len(t, rs, 2, k)
			require.Equal(t, rs[0].MessageID, rs[1].MessageID, "key %s got two messages", k)
			require.NotEqual(t, rs[0].Replayed, rs[1].Replayed, "key %s: one call stores, the other replays", k)
		}
	}
	page, _, err := node1.ListMessages(ctx, fanout.ListMessagesParams{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, page, keys*rounds, "one message per key")
}

func TestIdempotencyTakeoverAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	node1, schema := openMigrated(t)
	node2 := open(t, schema)
	const window = 24 * time.Hour
	t0 := time.Now().Add(-48 * time.Hour)
	keyed := func(key string, at time.Time) []fanout.AcceptParams {
		m := message("r", at)
		m.IdempotencyKey = key
		return []fanout.AcceptParams{{Message: m, Targets: []string{"a"}, DedupWindow: window}}
	}
	const keys = 20
	for i := range keys {
		_, err := node1.Accept(ctx, keyed(fmt.Sprintf("k%d", i), t0))
		require.NoError(t, err)
	}
	// Every old key is past its window: both nodes try to take each one
	// over at once; one must win and the other replay the winner.
	later := t0.Add(window + time.Hour)
	for i := range keys {
		key := fmt.Sprintf("k%d", i)
		var r1, r2 []fanout.AcceptResult
		var err1, err2 error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; r1, err1 = node1.Accept(ctx, keyed(key, later)) })
		wg.Go(func() { <-start; r2, err2 = node2.Accept(ctx, keyed(key, later)) })
		close(start)
		wg.Wait()
		require.NoError(t, err1)
		require.NoError(t, err2)
		require.Equal(t, r1[0].MessageID, r2[0].MessageID, "key %s taken over twice", key)
		require.NotEqual(t, r1[0].Replayed, r2[0].Replayed, key)
	}
}

func TestIdempotencyTakeoverInBatch(t *testing.T) {
	t.Parallel()
	s, _ := openMigrated(t)
	const window = 24 * time.Hour
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keyed := func(at time.Time) fanout.AcceptParams {
		m := message("r", at)
		m.IdempotencyKey = "k"
		return fanout.AcceptParams{Message: m, Targets: []string{"a"}, DedupWindow: window}
	}
	// In one batch, a key used again past its window is taken over by the
	// later message, and a third use within the window replays that one;
	// the sqlite package resolves the batch the same way.
	first, late, again := keyed(t0), keyed(t0.Add(window+time.Hour)), keyed(t0.Add(window+2*time.Hour))
	res, err := s.Accept(t.Context(), []fanout.AcceptParams{first, late, again})
	require.NoError(t, err)
	require.Equal(t, []fanout.AcceptResult{
		{MessageID: first.Message.ID},
		{MessageID: late.Message.ID},
		{MessageID: late.Message.ID, Replayed: true},
	}, res)
	// The stored key points at the taker.
	res, err = s.Accept(t.Context(), []fanout.AcceptParams{keyed(t0.Add(window + 3*time.Hour))})
	require.NoError(t, err)
	require.Equal(t, fanout.AcceptResult{MessageID: late.Message.ID, Replayed: true}, res[0])
}

func TestTimesAreMicrosecondsInUTC(t *testing.T) {
	t.Parallel()
	s, _ := openMigrated(t)
	received := time.Date(2026, 3, 1, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
	m := message("r", received)
	_, err := s.Accept(t.Context(), []fanout.AcceptParams{{Message: m, Targets: []string{"a"}}})
	require.NoError(t, err)
	md, err := s.GetMessage(t.Context(), m.ID)
	require.NoError(t, err)
	want := time.Date(2026, 3, 1, 13, 0, 0, 123456000, time.UTC)
	require.Equal(t, want, md.Message.ReceivedAt)
	require.Equal(t, want, md.Deliveries[0].NextAttemptAt)
	require.Equal(t, want, md.Deliveries[0].CreatedAt)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	testURL(t)
	_, err := postgres.Open(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", postgres.Options{})
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	_, err = postgres.Open(t.Context(), "postgres://%zz", postgres.Options{})
	require.Error(t, err)
}

func TestWriteErrorsAreUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, newSchema(t))
	// Not migrated: every statement fails on the missing tables.
	_, err := s.Accept(t.Context(), []fanout.AcceptParams{{Message: fanout.Message{Route: "r"}, Targets: []string{"a"}}})
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.ErrorContains(t, err, "accept")
	m := message("r", time.Now())
	m.IdempotencyKey = "k"
	_, err = s.Accept(t.Context(), []fanout.AcceptParams{{Message: m, Targets: []string{"a"}, DedupWindow: time.Hour}})
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.ErrorContains(t, err, "accept")
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, err := postgres.Open(t.Context(), testURL(t), postgres.Options{Schema: newSchema(t)})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	require.NoError(t, s.Close())
	_, err = s.GetMessage(t.Context(), fanout.NewMessageID())
	require.ErrorIs(t, err, fanout.ErrClosed, "a closed store says so")
	require.ErrorIs(t, err, fanout.ErrStoreUnavailable)
	require.NoError(t, s.Close(), "Close is idempotent")
}
