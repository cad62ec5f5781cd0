package sqlite

import (
	"fmt"
	"strings"
)

// Every SQL statement of the package is in this file: constants for the
// fixed ones, small builders for the ones whose shape depends on the
// filters or the batch size. Placeholders are bound positionally; ?NNN
// reuses argument NNN.

// Migrations.
const (
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS fanout_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)`
	qAppliedMigrations = `SELECT version FROM fanout_migrations`
	qRecordMigration   = `INSERT INTO fanout_migrations (version, name, applied_at) VALUES (?, ?, ?)`
)

// qCheckpoint copies what it can of the WAL into the database file without
// waiting for any lock; it returns (busy, WAL frames, frames copied).
const qCheckpoint = `PRAGMA wal_checkpoint(PASSIVE)`

// Column lists shared by the queries that return messages, deliveries and
// attempts; scanMessage, scanDelivery and scanAttempt read them in order.
const (
	messageColumns = `m.id, m.route, m.tenant, m.method, m.path, m.headers, m.body, m.idempotency_key, m.received_at`
	// messageSummaryColumns leaves the body out (NULL scans as nil).
	messageSummaryColumns = `m.id, m.route, m.tenant, m.method, m.path, m.headers, NULL, m.idempotency_key, m.received_at`
	deliveryColumns       = `d.id, d.message_id, d.route, d.target, d.step, d.after_steps, d.state, d.attempts, d.next_attempt_at, ` +
		`d.last_status, d.last_error, d.last_class, d.created_at, d.updated_at, d.attempts_before`
	attemptColumns = `a.id, a.delivery_id, a.message_id, a.target, a.number, a.started_at, a.duration_us, ` +
		`a.request_method, a.request_url, a.request_headers, a.status, a.response_headers, a.response_body, a.class, a.error`
)

// Accept.
const (
	qLookupKey = `SELECT message_id, received_at FROM idempotency_keys WHERE route = ? AND key = ?`
	qUpsertKey = `INSERT INTO idempotency_keys (route, key, message_id, received_at) VALUES (?, ?, ?, ?)
ON CONFLICT (route, key) DO UPDATE SET message_id = excluded.message_id, received_at = excluded.received_at`

	qInsertMessagesHead = `INSERT INTO messages (id, route, tenant, method, path, headers, body, idempotency_key, received_at) VALUES `
	qInsertMessagesRow  = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertMessagesArgs  = 9

	// A new delivery is pending and due when its message was received.
	qInsertDeliveriesHead = `INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at) VALUES `
	qInsertDeliveriesRow  = `(?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)`
	insertDeliveriesArgs  = 8
)

// copyDeliveriesSQL returns the statement that inserts a pending delivery
// to each of n targets (?3 .. ?n+2, in order) for every message whose
// rowid is in ?1 .. ?2, due when the message was received, in the order
// of the messages and then of the targets.
func copyDeliveriesSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
SELECT m.id, m.route, t.column2, 'pending', 0, m.received_at, m.received_at, m.received_at, m.received_at, m.received_at
FROM messages AS m, (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d, ?%d)", i, i+3)
	}
	b.WriteString(`) AS t
WHERE m.rowid BETWEEN ?1 AND ?2
ORDER BY m.rowid, t.column1`)
	return b.String()
}

// valuesSQL returns head, n copies of row comma separated, and tail: a
// statement on n VALUES rows.
func valuesSQL(head, row, tail string, n int) string {
	var b strings.Builder
	b.Grow(len(head) + n*(len(row)+1) + len(tail))
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(tail)
	return b.String()
}

// Lease, Complete, ReleaseLeases, NextDue.
const (
	// qLeaseCandidates picks the due deliveries of a target, oldest due
	// first, in the order of the deliveries_due index so that LIMIT stops
	// the scan early.
	qLeaseCandidates = `SELECT ` + deliveryColumns + `, ` + messageColumns + `
FROM deliveries AS d JOIN messages AS m ON m.id = d.message_id
WHERE d.target = ?1 AND d.due_at IS NOT NULL AND d.due_at <= ?2
ORDER BY d.due_at, d.received_at, d.id
LIMIT ?3`
	// qLeaseMark takes the picked deliveries; it runs in the same
	// transaction as qLeaseCandidates.
	qLeaseMark = `UPDATE deliveries SET state = 'delivering', attempts = attempts + 1,
    lease_owner = ?1, lease_expires_at = ?2, due_at = ?2, updated_at = ?3
WHERE id IN (SELECT value FROM json_each(?4))`

	// qInsertAttemptsHead, qInsertAttemptsRow and qInsertAttemptsTail
	// record attempts, one VALUES row each, taking the message and target
	// from the delivery (no row when the delivery is gone with its message)
	// and the number from the delivery when the attempt has none.
	qInsertAttemptsHead = `WITH v (delivery_id, number, started_at, duration_us, request_method, request_url,
    request_headers, status, response_headers, response_body, class, error) AS (VALUES `
	qInsertAttemptsRow  = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertAttemptsArgs  = 12
	qInsertAttemptsTail = `)
INSERT INTO attempts (delivery_id, message_id, target, number, started_at, duration_us,
    request_method, request_url, request_headers, status, response_headers, response_body, class, error)
SELECT d.id, d.message_id, d.target, CASE WHEN v.number > 0 THEN v.number ELSE d.attempts_before + d.attempts END,
    v.started_at, v.duration_us, v.request_method, v.request_url, v.request_headers,
    v.status, v.response_headers, v.response_body, v.class, v.error
FROM v JOIN deliveries AS d ON d.id = v.delivery_id`

	// qCompleteHead, qCompleteRow and qCompleteTail move the deliveries
	// still leased by their owner to their new state, one VALUES row each.
	// next_at is the next attempt time of a retrying delivery and NULL
	// otherwise (due_at NULL: nothing left to do).
	// uncounted (0 or 1) moves the attempt out of the budget
	// (fanout.CompleteParams.Uncounted).
	qCompleteHead = `WITH v (delivery_id, owner, state, next_at, status, error, class, now, uncounted) AS (VALUES `
	qCompleteRow  = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	completeArgs  = 9
	qCompleteTail = `)
UPDATE deliveries SET state = v.state, next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at),
    due_at = v.next_at, lease_owner = NULL, lease_expires_at = NULL,
    attempts = deliveries.attempts - v.uncounted, attempts_before = deliveries.attempts_before + v.uncounted,
    last_status = v.status, last_error = v.error, last_class = v.class, updated_at = v.now
FROM v
WHERE deliveries.id = v.delivery_id AND deliveries.lease_owner = v.owner AND deliveries.state = 'delivering'`

	// qReleaseLeases gives back every delivery leased by an owner: due
	// again (at once, or when it was scheduled if that is later), one
	// attempt fewer, pending again if that leaves none.
	qReleaseLeases = `UPDATE deliveries SET
    state = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'pending' END,
    attempts = MAX(attempts - 1, 0),
    due_at = MIN(next_attempt_at, ?1),
    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
WHERE lease_owner = ?2 AND state = 'delivering'`
	// qReleaseLeaseIDs is qReleaseLeases for the ids in a JSON array.
	qReleaseLeaseIDs = qReleaseLeases + ` AND id IN (SELECT value FROM json_each(?3))`

	// qReclaimLeases takes back every delivery leased by an owner other
	// than ?2: due again as in qReleaseLeases, but the attempt count stays
	// (the owner may have sent it), so the state is retrying.
	qReclaimLeases = `UPDATE deliveries SET
    state = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END,
    due_at = MIN(next_attempt_at, ?1),
    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
WHERE state = 'delivering' AND lease_owner IS NOT ?2`

	qNextDue = `SELECT MIN(due_at) FROM deliveries WHERE target = ? AND due_at IS NOT NULL`
)

// GetMessage, ListMessages, DeleteMessage.
const (
	qGetMessage         = `SELECT ` + messageColumns + ` FROM messages AS m WHERE m.id = ?`
	qMessageDeliveries  = `SELECT ` + deliveryColumns + ` FROM deliveries AS d WHERE d.message_id = ? ORDER BY d.id`
	qMessageAttempts    = `SELECT ` + attemptColumns + ` FROM attempts AS a WHERE a.message_id = ? ORDER BY a.started_at, a.id`
	qDeliveriesOfPage   = `SELECT ` + deliveryColumns + ` FROM deliveries AS d WHERE d.message_id IN (SELECT value FROM json_each(?)) ORDER BY d.id`
	qDeleteMessage      = `DELETE FROM messages WHERE id = ?`
	qMessageExists      = `SELECT 1 FROM messages WHERE id = ?1 AND (?2 = '' OR tenant = ?2)`
	qListMessagesHead   = `SELECT ` + messageSummaryColumns + ` FROM messages AS m`
	qListMessagesOrder  = ` ORDER BY m.received_at DESC, m.id DESC LIMIT ?`
	qListCursor         = `(m.received_at, m.id) < (?, ?)`
	qListRoute          = `m.route = ?`
	qListTenant         = `m.tenant = ?`
	qListSince          = `m.received_at >= ?`
	qListUntil          = `m.received_at < ?`
	qListDeliveryExists = `EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message_id = m.id`
	qListDeliveryTarget = ` AND d.target = ?`
	qListDeliveryState  = ` AND d.state = ?`
)

// listMessagesSQL assembles the ListMessages query from the filters in use.
func listMessagesSQL(f listFilter) (string, []any) {
	var conds []string
	var args []any
	if f.route != "" {
		conds, args = append(conds, qListRoute), append(args, f.route)
	}
	if f.tenant != "" {
		conds, args = append(conds, qListTenant), append(args, f.tenant)
	}
	if f.since != nil {
		conds, args = append(conds, qListSince), append(args, *f.since)
	}
	if f.until != nil {
		conds, args = append(conds, qListUntil), append(args, *f.until)
	}
	if f.state == "dead" {
		return listDeadSQL(f, conds, args)
	}
	if f.target != "" || f.state != "" {
		c := qListDeliveryExists
		if f.target != "" {
			c += qListDeliveryTarget
			args = append(args, f.target)
		}
		if f.state != "" {
			c += qListDeliveryState
			args = append(args, f.state)
		}
		conds = append(conds, c+")")
	}
	if f.cursor != nil {
		conds, args = append(conds, qListCursor), append(args, f.cursor.receivedAt, f.cursor.id)
	}
	q := qListMessagesHead
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + qListMessagesOrder, append(args, f.limit)
}

// listDeadSQL is listMessagesSQL for state=dead, the dead-letter list:
// dead deliveries are few and old, so walking the messages newest first
// and checking each one's deliveries (the EXISTS of other states) can read
// most of the table before a page is full. It starts from the dead
// deliveries instead, through the partial index deliveries_dead (named,
// since without a target the planner prefers scanning the unique index
// of all deliveries; the literal 'dead' is what makes the partial index
// usable), and looks each message up by id: the cost follows the number
// of dead deliveries, not of messages. conds and args hold the message
// filters so far.
func listDeadSQL(f listFilter, conds []string, args []any) (string, []any) {
	sub := `SELECT DISTINCT d.message_id AS id FROM deliveries AS d INDEXED BY deliveries_dead WHERE d.state = 'dead'`
	var subArgs []any
	if f.target != "" {
		sub, subArgs = sub+` AND d.target = ?`, append(subArgs, f.target)
	}
	if f.route != "" {
		sub, subArgs = sub+` AND d.route = ?`, append(subArgs, f.route)
	}
	if f.since != nil {
		sub, subArgs = sub+` AND d.received_at >= ?`, append(subArgs, *f.since)
	}
	if f.until != nil {
		sub, subArgs = sub+` AND d.received_at < ?`, append(subArgs, *f.until)
	}
	if f.cursor != nil {
		conds, args = append(conds, qListCursor), append(args, f.cursor.receivedAt, f.cursor.id)
	}
	// CROSS JOIN keeps the dead deliveries the outer loop.
	q := `SELECT ` + messageSummaryColumns + ` FROM (` + sub + `) AS dd CROSS JOIN messages AS m ON m.id = dd.id`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + qListMessagesOrder, append(append(subArgs, args...), f.limit)
}

// Replay, Backfill.
const (
	// qReplayMessage makes the deliveries of one message (to one target
	// when ?3 is not empty) pending and due at ?1 with no attempts made,
	// except those being delivered.
	qReplayMessage = `UPDATE deliveries SET state = 'pending', attempts_before = attempts_before + attempts, attempts = 0, next_attempt_at = ?1, due_at = ?1,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
WHERE message_id = ?2 AND state <> 'delivering' AND (?3 = '' OR target = ?3)`
	// qReplayHead starts the bulk replay; replaySQL adds the filters.
	qReplayHead = `UPDATE deliveries SET state = 'pending', attempts_before = attempts_before + attempts, attempts = 0, next_attempt_at = ?1, due_at = ?1,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
WHERE state = ?2 AND state <> 'delivering'`
	// qReplayReturning ends either replay: the message of each replayed
	// delivery, and whether it is a step.
	qReplayReturning = ` RETURNING message_id, step <> ''`
	qReplayTarget    = ` AND target = ?`
	qReplayRoute     = ` AND route = ?`
	qReplaySince     = ` AND received_at >= ?`
	qReplayUntil     = ` AND received_at < ?`
	qReplayTenant    = ` AND EXISTS (SELECT 1 FROM messages AS m WHERE m.id = deliveries.message_id AND m.tenant = ?)`

	// qBackfill adds a pending delivery to ?1, due at ?2, for each message
	// of route ?3 received in [?4, ?5) that has none.
	qBackfill = `INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
SELECT m.id, m.route, ?1, 'pending', 0, ?2, ?2, m.received_at, ?2, ?2
FROM messages AS m
WHERE m.route = ?3 AND m.received_at >= ?4 AND m.received_at < ?5
ON CONFLICT (message_id, target, step) DO NOTHING`
)

// replaySQL assembles the bulk Replay statement. Its first two arguments
// are the time and the state; the filters' follow.
func replaySQL(f replayFilter) (string, []any) {
	q := qReplayHead
	var args []any
	if f.target != "" {
		q, args = q+qReplayTarget, append(args, f.target)
	}
	if f.route != "" {
		q, args = q+qReplayRoute, append(args, f.route)
	}
	if f.since != nil {
		q, args = q+qReplaySince, append(args, *f.since)
	}
	if f.until != nil {
		q, args = q+qReplayUntil, append(args, *f.until)
	}
	if f.tenant != "" {
		q, args = q+qReplayTenant, append(args, f.tenant)
	}
	return q, args
}

// Purge, Backlog.
const (
	// qPurgeMessages deletes up to ?2 messages received before ?1 whose
	// deliveries all succeeded; deliveries, attempts and keys go with them.
	qPurgeMessages = `DELETE FROM messages WHERE id IN (
    SELECT m.id FROM messages AS m
    WHERE m.received_at < ?1
      AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message_id = m.id AND d.state <> 'succeeded')
    ORDER BY m.received_at
    LIMIT ?2)`
	qPurgeKeys = `DELETE FROM idempotency_keys WHERE received_at < ?`

	// qBacklog counts, per target, the waiting deliveries (due_at set:
	// pending, retrying, delivering) with the oldest one's receive time,
	// and the dead ones; each half reads one partial index only.
	qBacklog = `SELECT target, SUM(waiting), SUM(dead), MIN(oldest) FROM (
    SELECT target, COUNT(*) AS waiting, 0 AS dead, MIN(received_at) AS oldest
    FROM deliveries WHERE due_at IS NOT NULL GROUP BY target
    UNION ALL
    SELECT target, 0, COUNT(*), NULL
    FROM deliveries WHERE state = 'dead' GROUP BY target
) GROUP BY target ORDER BY target`
)

// Access (access.go): subscriptions, self-service keys, the audit log and
// the access version.
const (
	subscriptionColumns = `id, tenant, route, state, note, reason, decided_by, requested_at, decided_at`
	apiKeyColumns       = `id, tenant, name, prefix, sha256, created_at, expires_at, revoked_at, last_used_at`
	auditColumns        = `id, at, actor, action, subject, tenant, route, reason`

	qGetSubscription      = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE id = ?`
	qSubscriptionOf       = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE tenant = ? AND route = ?`
	qInsertSubscription   = `INSERT INTO subscriptions (id, tenant, route, state, note, requested_at) VALUES (?, ?, ?, ?, ?, ?)`
	qRequestSubscription  = `UPDATE subscriptions SET state = ?, note = ?, reason = '', decided_by = '', requested_at = ?, decided_at = NULL WHERE id = ?`
	qDecideSubscription   = `UPDATE subscriptions SET state = ?, reason = ?, decided_by = ?, decided_at = ? WHERE id = ?`
	qActiveSubscriptions  = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE state = 'active' ORDER BY requested_at, id`
	qListSubscriptionsSQL = `SELECT ` + subscriptionColumns + ` FROM subscriptions
WHERE (?1 = '' OR tenant = ?1) AND (?2 = '' OR route = ?2) AND (?3 = '' OR state = ?3)
ORDER BY requested_at, id`

	qInsertKey   = `INSERT INTO api_keys (id, tenant, name, prefix, sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qLiveKeyName = `SELECT 1 FROM api_keys WHERE tenant = ? AND name = ? AND revoked_at IS NULL`
	qListKeys    = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE (?1 = '' OR tenant = ?1) ORDER BY created_at, id`
	qGetKey      = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE id = ? AND (?2 = '' OR tenant = ?2)`
	qRevokeKey   = `UPDATE api_keys SET revoked_at = ? WHERE id = ?`
	qTouchKey    = `UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)`
	qLiveKeys    = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id`

	qInsertAudit = `INSERT INTO audit_log (at, actor, action, subject, tenant, route, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qListAudit   = `SELECT ` + auditColumns + ` FROM audit_log
WHERE at >= ?1 AND id > ?2 AND (?3 = '' OR tenant = ?3)
ORDER BY id LIMIT ?4`

	qAccessVersion = `SELECT version FROM access_version WHERE one = 1`
	qBumpAccess    = `UPDATE access_version SET version = version + 1 WHERE one = 1`
)
