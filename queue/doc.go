// Package queue is Fanout's durable delivery engine: it turns accepted
// inbound requests into stored messages and stored messages into HTTP
// deliveries, so that nothing accepted is ever lost (docs/delivery.md).
//
// Three long-running parts share one fanout.Store:
//
//   - Committer is the single writer of accepts. Callers (the data plane)
//     hand it a message and block; its Run loop drains every message
//     already waiting into one Store.Accept transaction (group commit, no
//     timer wait) and then answers each caller. One fsync thus covers many
//     messages, which is what makes durable accepts fast. A message the
//     store refuses (fanout.ErrInvalidMessage) fails alone: the group is
//     committed again in halves without it (docs/delivery.md).
//   - Dispatcher runs one worker per configured target. A worker leases due
//     deliveries of its target, sends each through a Sender (the upstream
//     client) with at most Target.MaxInFlight attempts in flight, decides
//     success, retry with backoff or dead letter, and hands the outcome to a
//     completer goroutine that records many outcomes in one Store.Complete.
//     Each target has its own worker, limit and lease loop, so a slow or
//     dead target never delays another. Idle workers sleep until the next
//     delivery is due, a Notify, or a safety poll.
//   - Purger applies retention: it periodically deletes succeeded messages
//     and forgets old idempotency keys.
//
// Crash safety comes from the store's leases: a delivery leased by a
// process that dies becomes due again when its lease expires, and sooner
// through Store.Reclaim, which the Dispatcher calls before its workers
// lease and then every Heartbeat: it takes back the leases of processes
// that have stopped (docs/operations.md, "Recovery after a crash"). On a
// clean shutdown the Dispatcher finishes in-flight attempts (up to a grace
// period), records their outcomes and gives back the leases it did not use.
package queue
