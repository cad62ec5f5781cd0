// Package sqlite implements fanout.Store on one embedded SQLite file, for
// the single-node deployment that needs no database server.
//
// It uses the pure-Go driver modernc.org/sqlite, so the fanout binary still
// builds with CGO_ENABLED=0. The file runs in WAL mode; the writer commits
// at synchronous=NORMAL and a durable write (an accept) returns only after
// the WAL has been fdatasync'ed (walsync.go: one sync covers every commit
// before it, and runs after the write lock is released), so a commit that
// returned is on disk, even across a power loss. SQLite allows one writer
// at a time, so a Store keeps one connection for every write (its
// transactions begin IMMEDIATE, so they never fail to upgrade a read lock)
// and a separate pool of read-only connections that read a snapshot while
// the writer commits. A Store owns its file: Open locks path+".lock" until
// Close, so a second Store on the file, in any process, fails at once, and
// every lease found in the file when the Store starts (Reclaim) belongs to
// a process that has stopped.
//
// Throughput comes from batching, not from concurrent writers: Accept and
// Complete take many items and commit them in one transaction (one fsync),
// with multi-row statements of up to 64 rows, which is what the queue's
// group commit relies on. The writer's statements are prepared once and
// reused. A background goroutine checkpoints the WAL (PASSIVE, at most
// every 250ms after a commit) so that no commit pays for a checkpoint.
//
// The schema is in migration/NNN_name.up.sql, embedded and applied by
// Store.Migrate, which records versions in fanout_migrations; all queries
// are in queries.go. Times are stored as Unix milliseconds and attempt
// durations as microseconds.
//
// Idempotency keys live in their own table, one row per route and key,
// pointing at the newest message that used the key. A message whose key row
// is older than its DedupWindow takes the row over and is stored as new;
// Purge forgets rows received before PurgeParams.KeysBefore, and deleting a
// message forgets its key.
package sqlite
