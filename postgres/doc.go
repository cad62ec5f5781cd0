// Package postgres implements fanout.Store on PostgreSQL 14 or later, for
// deployments where several fanout processes share one database.
//
// It uses pgx v5 and its pool. Every process may accept, lease and complete
// at once: work is divided by row leases taken with FOR UPDATE SKIP LOCKED,
// so two workers never get the same delivery and never wait on each other,
// and a process that dies loses nothing: its leases are taken back, by
// the node itself when it restarts under the same node id, or by the
// others once its heartbeat (Store.Reclaim, in the nodes table) is older
// than the heartbeat timeout, and at worst expire. The tables, their columns and the
// semantics are those of the sqlite package; storetest holds both engines
// to one behaviour.
//
// Throughput comes from batching and pipelining, not from many small
// transactions: Accept and Complete take many items and bind each table's
// rows as arrays expanded by unnest, one statement per table, every
// statement of the call sent in one round trip and committed once (one WAL
// flush). Accept of a batch without idempotency keys to check is a single
// round trip. A lease commits without waiting for its WAL flush: only a
// crash of the database server can undo one, and then the delivery is
// simply due again (see Store.Lease).
//
// Idempotency keys live in their own table, one row per route and key,
// pointing at the newest message that used the key; its primary key is the
// last line of defence across processes. Accept claims a batch's keys
// (INSERT … ON CONFLICT DO NOTHING, which waits for a concurrent claim of
// the same key to commit) and locks their rows before deciding, so the same
// key accepted through two processes at once yields one message, the other
// call answering with its id as Replayed. A message whose key row is older
// than its DedupWindow takes the row over and is stored as new; Purge
// forgets rows received before PurgeParams.KeysBefore, and deleting a
// message forgets its key.
//
// New work wakes workers everywhere through LISTEN/NOTIFY: Accept (right
// after its commit, in the same round trip), Replay, Backfill and
// ReleaseLeases (on commit) notify each target that got due deliveries,
// and Store.Listen delivers those notifications to a callback (a
// dispatcher's Notify).
//
// The schema is in migration/*.up.sql, embedded and applied by
// Store.Migrate under a transaction-level advisory lock, so processes that
// start together migrate once; the queries are in queries.go. Times are
// timestamptz, kept to the microsecond and returned in UTC; attempt
// durations are microseconds.
package postgres
