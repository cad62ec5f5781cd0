package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanouthq/fanout"
)

var _ fanout.Store = (*Store)(nil)

// Options configures Open. The zero value is valid.
type Options struct {
	// Logger receives the store's few log lines: migrations applied
	// (info), Listen's connection failures and notifications that failed
	// after a commit (warn). Nil discards them.
	Logger *slog.Logger

	// Schema, when set, is the one schema on the connections' search_path:
	// the store's tables live there and Migrate creates it if missing. It
	// lets several stores share a database (tests use a fresh schema each).
	// Empty keeps the search_path of the DSN or the server (usually public).
	Schema string

	// MaxConns caps the connection pool; zero keeps pgxpool's default
	// (pool_max_conns in the DSN, else the larger of 4 and the number of
	// CPUs). Listen holds one more connection of its own.
	MaxConns int32
}

// Store is a fanout.Store on a PostgreSQL database, safe for concurrent use
// by any number of goroutines and processes.
type Store struct {
	pool    *pgxpool.Pool
	logger  *slog.Logger
	schema  string
	channel string // LISTEN/NOTIFY channel of the deliveries made due

	// owners are the lease owners whose heartbeat this Store has recorded
	// (Reclaim), to tell when one had to be registered again.
	ownersMu sync.Mutex
	owners   map[string]struct{}

	// life ends when Close is called; it stops the Listen loops.
	life context.Context
	kill context.CancelFunc
}

// Open connects to the PostgreSQL database at dsn (a URL or a keyword/value
// string, as pgx parses it) and returns a Store on it. It checks that the
// database answers but does not migrate: call Migrate before use. An
// unreachable database is an error that wraps fanout.ErrStoreUnavailable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	if opts.Schema != "" {
		params["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if params["application_name"] == "" {
		params["application_name"] = "fanout"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s:%d: %w: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port,
			fanout.ErrStoreUnavailable, err)
	}
	// The store's life keeps ctx's values but not its end: it lasts until
	// Close, not until Open returns.
	life, kill := context.WithCancel(context.WithoutCancel(ctx))
	return &Store{
		pool:    pool,
		logger:  logger,
		schema:  opts.Schema,
		channel: channelName(opts.Schema),
		owners:  make(map[string]struct{}),
		life:    life,
		kill:    kill,
	}, nil
}

// Close closes the connections and ends the Listen loops. Calls made after
// Close fail with an error that wraps fanout.ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	if s.closed() {
		return nil
	}
	s.kill()
	s.pool.Close() // waits for the connections in use to come back
	return nil
}

// Ping checks that the database answers a round trip on a connection of
// the pool before ctx ends: it fails while the pool has no connection to
// spare or the server does not answer (it is down, or stalled). /readyz
// uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return s.dbErr("ping", err)
	}
	return nil
}

// closed reports whether Close was called.
func (s *Store) closed() bool { return s.life.Err() != nil }

// dbErr is where database errors become the store's: pgx.ErrNoRows becomes
// fanout.ErrNotFound, every other failure wraps fanout.ErrStoreUnavailable
// (and fanout.ErrClosed after Close) and keeps the cause. Accept makes a
// refused value fanout.ErrInvalidMessage instead (refusedErr).
func (s *Store) dbErr(op string, err error) error {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", op, fanout.ErrNotFound)
	case s.closed():
		return fmt.Errorf("%s: %w: %w: %w", op, fanout.ErrStoreUnavailable, fanout.ErrClosed, err)
	default:
		return fmt.Errorf("%s: %w: %w", op, fanout.ErrStoreUnavailable, err)
	}
}

// maxTries bounds how often a write transaction that lost a race (a
// deadlock or serialization failure, or an idempotency key deleted under
// Accept) is run again.
const maxTries = 5

// errRetry asks retry to run the transaction again.
var errRetry = errors.New("concurrent change, try again")

// retry runs fn until it succeeds, fails for a reason other than a lost
// race, or has been tried maxTries times. fn runs a whole transaction, so
// running it again is safe.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for try := range maxTries {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		if try < maxTries-1 {
			// A short, growing pause lets the transaction that won finish.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(try+1) * time.Millisecond):
			}
		}
	}
	return err
}

// retryable reports whether err is a lost race that running the
// transaction again resolves.
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// refusedErr returns, when err is PostgreSQL refusing a value of the
// statement, which running it again cannot change — a data exception
// (class 22: bytes that are not UTF-8, a NUL in text, a value out of
// range) or a program limit (class 54: an index row too large) — an error
// that wraps fanout.ErrInvalidMessage and the database's error but not
// fanout.ErrStoreUnavailable; nil otherwise. Fanout checks what it stores
// at the edge (docs/security.md); this is the last line, so that such a
// value fails its own message only.
func refusedErr(op string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !(strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "54")) {
		return nil
	}
	return fmt.Errorf("%s: %w: %w", op, fanout.ErrInvalidMessage, pgErr)
}

// withTx runs fn in a transaction and commits it. Errors from fn are
// returned as they are; fn wraps them.
func (s *Store) withTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.dbErr(op, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit a no-op; on a canceled ctx pgx drops the connection
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.dbErr(op, err)
	}
	return nil
}

// readTx runs fn in a read-only REPEATABLE READ transaction, so that its
// queries see one snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.dbErr(op, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit a no-op; on a canceled ctx pgx drops the connection
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.dbErr(op, err)
	}
	return nil
}

// exec runs one statement in its own transaction and returns the number of
// rows it changed.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, s.dbErr(op, err)
	}
	return tag.RowsAffected(), nil
}

// migrateLockKey is the pg_advisory_xact_lock key that serializes Migrate
// calls on one schema, from any process: a hash of the schema name.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("fanout migrate\x00" + schema)) // a hash.Hash never fails
	return int64(h.Sum64())                               //nolint:gosec // a lock key: any bits will do
}

// Keys of the store's log attributes.
const (
	logKeyVersion = "version"
	logKeyName    = "name"
	logKeyError   = "error"
	logKeyRetryIn = "retry_in"
	logKeySchema  = "schema"
	logKeyOwner   = "owner"
)
