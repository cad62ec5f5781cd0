package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fanouthq/fanout"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ fanout.Store = (*Store)(nil)

// Options configures Open. The zero value is valid.
type Options struct {
	// Logger receives the store's few log lines: migrations applied,
	// background checkpoints (debug) and their failures (warn). Nil discards
	// them.
	Logger *slog.Logger
}

// Store is a fanout.Store on one SQLite file. It is safe for concurrent
// use; writes are serialized on one connection, reads use a pool, and a
// background goroutine checkpoints the WAL so that commits do not.
type Store struct {
	lock   *fileLock // held from Open to Close (lock.go)
	writer *sql.DB   // one connection, IMMEDIATE transactions
	reader *sql.DB   // read-only pool
	logger *slog.Logger
	ckpt   *checkpointer
	closed atomic.Bool
	gate   gate // write transactions, accepts first
	// wal syncs durable commits outside the gate (walsync.go); nil when
	// the database is not in WAL mode, and then the writer commits with
	// synchronous=FULL and switches to NORMAL for relaxed writes.
	wal *walSyncer

	// reclaimMu guards reclaimed, set once Reclaim has taken back the
	// leases found in the file.
	reclaimMu sync.Mutex
	reclaimed bool

	stmtsMu sync.Mutex
	stmts   map[string]*sql.Stmt // prepared on writer, by query; nil once closed
	wanted  map[string]struct{}  // queries to prepare and keep
}

// Open opens (creating it if needed) the SQLite database at path and
// returns a Store on it. It does not migrate: call Migrate before use.
// The Store holds an exclusive lock on the file (path+".lock") until
// Close: while it is open, another Open of path, in this process or
// another, fails at once with an error that wraps ErrLocked and names the
// file.
// path is a file name; ":memory:" is refused because the writer and the
// readers must share one database. The Store starts a goroutine that Close
// stops.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite: path %q: a database file is required", path)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// One Store per file, in any process: the lock comes first and is held
	// until Close, so that Reclaim may take every lease it finds as one
	// of a process that is gone.
	lock, err := lockFile(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w: %w", path, fanout.ErrStoreUnavailable, err)
	}
	var opened []*sql.DB
	fail := func(err error) (*Store, error) {
		errs := []error{fmt.Errorf("open sqlite %s: %w: %w", path, fanout.ErrStoreUnavailable, err)}
		for _, db := range opened {
			errs = append(errs, db.Close())
		}
		errs = append(errs, lock.release())
		return nil, errors.Join(errs...)
	}
	// The writer connects first: it switches the file to WAL, which the
	// other connections then find in the file.
	conns := []struct {
		dsn string
		n   int
	}{
		{writerDSN(path, "FULL"), 1},
		{readerDSN(path), max(4, runtime.GOMAXPROCS(0))},
		{checkpointDSN(path), 1},
	}
	for _, c := range conns {
		db, err := sql.Open("sqlite", c.dsn)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, db)
		db.SetMaxOpenConns(c.n)
		db.SetMaxIdleConns(c.n)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		if err := db.PingContext(ctx); err != nil {
			return fail(err)
		}
	}
	// In WAL mode the writer commits without an fsync and durable writes
	// sync the WAL themselves (walsync.go): reopen the writer so that its
	// setting, kept by any connection the pool opens again, is NORMAL.
	wal, err := openWAL(ctx, opened[0], path)
	if err != nil {
		return fail(err)
	}
	if wal != nil {
		writer, err := sql.Open("sqlite", writerDSN(path, "NORMAL"))
		if err == nil {
			writer.SetMaxOpenConns(1)
			writer.SetMaxIdleConns(1)
			writer.SetConnMaxLifetime(0)
			writer.SetConnMaxIdleTime(0)
			err = writer.PingContext(ctx)
			if cerr := opened[0].Close(); err == nil {
				err = cerr
			}
			opened[0] = writer
		}
		if err != nil {
			return fail(errors.Join(err, wal.close()))
		}
	}
	return &Store{
		lock:   lock,
		writer: opened[0],
		reader: opened[1],
		wal:    wal,
		logger: logger,
		ckpt:   startCheckpointer(ctx, opened[2], logger),
		stmts:  make(map[string]*sql.Stmt),
		wanted: make(map[string]struct{}),
	}, nil
}

// The connections' settings. Every connection waits up to busyTimeoutMS
// for a lock (another process, a checkpoint) before failing and has
// foreign keys on (the cascades).
const dsnCommon = "&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"

// writerDSN is the DSN of the single write connection: WAL; synchronous
// as given (FULL: an fsync on every commit, durable on power loss; NORMAL
// once the Store syncs durable commits itself, see walsync.go); IMMEDIATE
// transactions, so that a write transaction holds the write lock from its
// start and never fails to upgrade a read lock; statement journals in
// memory (multi-row INSERTs need them); checkpoints left to the
// checkpointer, with the writer's own automatic checkpoint only as a
// backstop if the WAL grows past 10,000 pages; and a cap on the WAL file
// kept after a checkpoint.
func writerDSN(path, synchronous string) string {
	return "file:" + escapePath(path) + "?_txlock=immediate" + dsnCommon +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + synchronous + ")" +
		"&_pragma=temp_store(MEMORY)" +
		"&_pragma=wal_autocheckpoint(10000)" +
		"&_pragma=journal_size_limit(67108864)"
}

// openWAL returns the syncer of the database's WAL file, or nil when the
// writer did not get the database into WAL mode (a file system without
// shared memory, say): the writer then keeps synchronous=FULL.
func openWAL(ctx context.Context, writer *sql.DB, path string) (*walSyncer, error) {
	var mode string
	if err := writer.QueryRowContext(ctx, qJournalMode).Scan(&mode); err != nil {
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, nil
	}
	return openWALSyncer(path)
}

// readerDSN is the DSN of the read pool: query_only makes a write through a
// reader an error instead of a second writer.
func readerDSN(path string) string {
	return "file:" + escapePath(path) + "?_pragma=query_only(1)" + dsnCommon
}

// checkpointDSN is the DSN of the checkpointer's connection; a checkpoint
// fsyncs the database file as synchronous=FULL asks.
func checkpointDSN(path string) string {
	return "file:" + escapePath(path) + "?_pragma=synchronous(FULL)" + dsnCommon
}

// escapePath escapes the characters that end the path part of a SQLite URI
// filename.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Ping checks that the database file answers a read before ctx ends.
// /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.reader.QueryRowContext(ctx, "SELECT 1 FROM messages LIMIT 1").Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.dbErr("ping", err)
	}
	return nil
}

// Close stops the checkpointer and closes the connections; closing the
// last connection checkpoints the WAL into the database file. Calls made
// after Close fail with an error that wraps fanout.ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stmtsMu.Lock()
	stmts := s.stmts
	s.stmts = nil
	s.stmtsMu.Unlock()
	errs := []error{s.ckpt.stop()}
	for _, st := range stmts {
		errs = append(errs, st.Close())
	}
	errs = append(errs, s.reader.Close(), s.writer.Close())
	if s.wal != nil {
		errs = append(errs, s.wal.close()) // after the connections: see openWALSyncer
	}
	errs = append(errs, s.lock.release()) // last: the file is free once nothing of this Store uses it
	return errors.Join(errs...)
}

// stmt returns query prepared for tx, a write transaction. The writer's
// statements are prepared once and kept: the writer has one connection, so
// every transaction can reuse them instead of parsing the SQL again (which
// for a 64-row INSERT costs more than running it). A statement not kept yet
// is prepared for this transaction only and kept once the transaction
// ends, when the connection is free to prepare it.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s.stmtsMu.Lock()
	st, ok := s.stmts[query]
	if !ok && s.stmts != nil {
		s.wanted[query] = struct{}{}
	}
	s.stmtsMu.Unlock()
	if ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
}

// execTx runs a write statement in tx through stmt.
func (s *Store) execTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }() // only the transaction's handle: the kept statement stays
	return st.ExecContext(ctx, args...)
}

// scanTx runs a one-row query in tx through stmt and scans it into dest;
// no row is sql.ErrNoRows.
func (s *Store) scanTx(ctx context.Context, tx *sql.Tx, query string, args []any, dest ...any) error {
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // see execTx
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// queryTx runs a query in tx through stmt and calls each for every row.
func (s *Store) queryTx(ctx context.Context, tx *sql.Tx, query string, args []any, each func(*sql.Rows) error) error {
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // see execTx
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports what matters
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// prepareWanted prepares and keeps the statements stmt asked for. It runs
// with no transaction open, and prepares without holding stmtsMu: the
// writer's connection may be taken meanwhile by a transaction that needs
// stmtsMu. A failure leaves the statement to a later try.
func (s *Store) prepareWanted(ctx context.Context) {
	s.stmtsMu.Lock()
	queries := make([]string, 0, len(s.wanted))
	for query := range s.wanted {
		queries = append(queries, query)
	}
	clear(s.wanted)
	s.stmtsMu.Unlock()
	for _, query := range queries {
		s.keep(ctx, query)
	}
}

// keep prepares query on the writer and keeps it, unless it is kept
// already or the store is closed.
func (s *Store) keep(ctx context.Context, query string) {
	st, err := s.writer.PrepareContext(ctx, query)
	if err != nil {
		return
	}
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if _, dup := s.stmts[query]; dup || s.stmts == nil {
		defer func() { _ = st.Close() }() // a copy nobody uses
		return
	}
	s.stmts[query] = st
}

// dbErr is where database errors become the store's: sql.ErrNoRows becomes
// fanout.ErrNotFound, every other failure wraps fanout.ErrStoreUnavailable
// (and fanout.ErrClosed after Close) and keeps the cause.
func (s *Store) dbErr(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, fanout.ErrNotFound)
	case s.closed.Load():
		return fmt.Errorf("%s: %w: %w: %w", op, fanout.ErrStoreUnavailable, fanout.ErrClosed, err)
	default:
		return fmt.Errorf("%s: %w: %w", op, fanout.ErrStoreUnavailable, err)
	}
}

// writeKind says how a write transaction is scheduled and made durable.
type writeKind int

const (
	// writeDurable is durable on power loss when it returns: the WAL is
	// fsynced after the commit (walsync.go; synchronous=FULL when the
	// Store has no walSyncer). Every write not listed below.
	writeDurable writeKind = iota
	// writeAccept is writeDurable, and goes through the gate before every
	// other waiting write: Accept, whose callers wait for the commit.
	writeAccept
	// writeRelaxed commits with synchronous=NORMAL: no fsync. Lease,
	// Complete and ReleaseLeases only. See write for why that is safe.
	writeRelaxed
)

// Switching the writer's synchronous setting when the Store has no
// walSyncer; SQLite refuses to change it inside a transaction, so it is
// switched before BEGIN and back after the commit.
const (
	qJournalMode = `PRAGMA journal_mode`
	qSyncNormal  = `PRAGMA synchronous = NORMAL`
	qSyncFull    = `PRAGMA synchronous = FULL`
)

// withTx runs fn in a write transaction and commits it with an fsync
// (synchronous=FULL).
func (s *Store) withTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.write(ctx, op, writeDurable, fn)
}

// write runs fn in a write transaction scheduled and committed as kind
// says.
//
// Why writeRelaxed does not weaken durability: in WAL mode a commit with
// synchronous=NORMAL is atomic and survives a crash of the process (its
// frames are in the OS's page cache); only a power loss or a kernel crash
// can lose it, and then only the most recent relaxed commits: the WAL is
// one file written sequentially, the next durable write's sync (the next
// Accept) flushes the whole file and so every frame written before it, and
// recovery keeps a prefix of the WAL (it stops at the first frame whose
// checksum fails), never a later commit without an earlier one. Nothing
// a relaxed transaction writes is a promise to a client: a lost lease
// makes the delivery due again, a lost completion leaves it leased until
// the lease expires and it is delivered again. Both are re-deliveries,
// which at-least-once delivery allows; an accepted message (writeAccept,
// synced before Accept returns) is never lost. Checkpoints run with synchronous=FULL and fsync
// the WAL before copying it into the database.
//
// A durable write's WAL sync (walsync.go) runs after the gate is free, so
// the next write transaction proceeds while the disk flushes; write
// returns only once its commit is on disk.
func (s *Store) write(ctx context.Context, op string, kind writeKind, fn func(tx *sql.Tx) error) error {
	seq, err := s.writeTx(ctx, op, kind, fn)
	if err != nil || seq == 0 {
		return err
	}
	if err := s.wal.sync(seq); err != nil {
		// Committed, but not known to be on disk: the caller must not
		// promise durability. Whoever retries finds it (an Accept with an
		// idempotency key) or stores it again.
		return s.dbErr(op, err)
	}
	return nil
}

// writeTx runs fn in a write transaction holding the gate. For a durable
// write on a Store with a walSyncer it returns the commit's number for
// walSyncer.sync, else 0.
func (s *Store) writeTx(ctx context.Context, op string, kind writeKind, fn func(tx *sql.Tx) error) (seq uint64, err error) {
	if err := s.gate.lock(ctx, kind == writeAccept); err != nil {
		return 0, s.dbErr(op, err)
	}
	// Deferred calls run last first: the connection goes back to the pool
	// and the gate is freed before prepareWanted takes the connection.
	defer s.prepareWanted(ctx)
	defer s.gate.unlock()
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return 0, s.dbErr(op, err)
	}
	defer func() { _ = conn.Close() }() // back to the pool; nothing to report
	if kind == writeRelaxed && s.wal == nil {
		if _, err := conn.ExecContext(ctx, qSyncNormal); err != nil {
			return 0, s.dbErr(op, err)
		}
		defer s.restoreFull(ctx, conn)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.dbErr(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one to report
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, s.dbErr(op, err)
	}
	s.ckpt.wake()
	if kind != writeRelaxed && s.wal != nil {
		seq = s.wal.commit()
	}
	return seq, nil
}

// restoreFull sets the writer connection back to synchronous=FULL, the
// setting every other write relies on. If that fails the connection is
// discarded: the pool opens a new one with the DSN's settings.
func (s *Store) restoreFull(ctx context.Context, conn *sql.Conn) {
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), qSyncFull); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "sqlite: restore synchronous=FULL failed; dropping the connection",
			slog.String(logKeyError, err.Error()))
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// exec runs one write statement in its own transaction and returns the
// number of rows it changed.
func (s *Store) exec(ctx context.Context, op string, kind writeKind, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, op, kind, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return s.dbErr(op, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return s.dbErr(op, err)
		}
		return nil
	})
	return n, err
}

// withReadTx runs fn in a read transaction, so that its queries see one
// snapshot.
func (s *Store) withReadTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.dbErr(op, err)
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to commit
	return fn(tx)
}

// closeRows closes rows and keeps the first error.
func closeRows(rows *sql.Rows, err *error) {
	if cerr := rows.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// Keys of the store's log attributes.
const (
	logKeyVersion = "version"
	logKeyName    = "name"
)
