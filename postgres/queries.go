package postgres

import (
	"strconv"
	"strings"

	"github.com/fanouthq/fanout"
)

// Every SQL statement of the package is in this file: constants for the
// fixed ones, small builders for the ones whose shape depends on the
// filters. Batches of rows are bound as arrays and expanded with unnest, so
// one statement (one prepared plan) serves every batch size.

// Migrations.
const (
	// qMigrateLock serializes Migrate on one schema across processes until
	// the transaction ends.
	qMigrateLock = `SELECT pg_advisory_xact_lock($1)`
	// qCreateSchema is followed by the quoted schema name.
	qCreateSchema     = `CREATE SCHEMA IF NOT EXISTS `
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS fanout_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL
)`
	qAppliedMigrations = `SELECT version FROM fanout_migrations`
	qRecordMigration   = `INSERT INTO fanout_migrations (version, name, applied_at) VALUES ($1, $2, $3)`
)

// Column lists shared by the queries that return messages, deliveries and
// attempts; messageRow, deliveryRow and scanAttempt read them in order.
const (
	messageColumns = `m.id, m.route, m.tenant, m.method, m.path, m.headers, m.body, m.idempotency_key, m.received_at`
	// messageSummaryColumns leaves the body out (NULL scans as nil).
	messageSummaryColumns = `m.id, m.route, m.tenant, m.method, m.path, m.headers, NULL::bytea, m.idempotency_key, m.received_at`
	deliveryColumns       = `d.id, d.message_id, d.route, d.target, d.step, d.after_steps, d.state, d.attempts, d.next_attempt_at, ` +
		`d.last_status, d.last_error, d.last_class, d.created_at, d.updated_at, d.attempts_before`
	attemptColumns = `a.id, a.delivery_id, a.message_id, a.target, a.number, a.started_at, a.duration_us, ` +
		`a.request_method, a.request_url, a.request_headers, a.status, a.response_headers, a.response_body, a.class, a.error`
)

// Accept.
const (
	// qClaimKeys inserts the key rows that do not exist yet, pointing at
	// the first message of the batch that uses each key, and returns the
	// keys it inserted. On a key that a concurrent transaction has just
	// inserted, ON CONFLICT waits for that transaction to end, so that
	// qLockKeys then reads its committed row. Keys come sorted, so that two
	// claimers wait on each other in one order only.
	qClaimKeys = `INSERT INTO idempotency_keys (route, key, message_id, received_at)
SELECT v.route, v.key, v.message_id, v.received_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
    AS v (route, key, message_id, received_at, ord)
ORDER BY v.ord
ON CONFLICT (route, key) DO NOTHING
RETURNING route, key`
	// qLockKeys reads the rows of the keys and locks them until the
	// transaction ends, in the byte order of the sorted keys: a concurrent
	// Accept that wants to take a key over waits, then reads the new owner.
	qLockKeys = `SELECT k.route, k.key, k.message_id, k.received_at
FROM idempotency_keys AS k
JOIN unnest($1::text[], $2::text[]) AS v (route, key) ON k.route = v.route AND k.key = v.key
ORDER BY k.route COLLATE "C", k.key COLLATE "C"
FOR UPDATE OF k`
	// qTakeKeys points keys whose row is older than the dedup window at the
	// message that takes them over; qLockKeys holds their locks.
	qTakeKeys = `UPDATE idempotency_keys AS k SET message_id = v.message_id, received_at = v.received_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v (route, key, message_id, received_at)
WHERE k.route = v.route AND k.key = v.key`

	qInsertMessages = `INSERT INTO messages (id, route, tenant, method, path, headers, body, idempotency_key, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[], $8::text[], $9::timestamptz[])`

	// qInsertDeliveries adds pending deliveries, due when their message was
	// received.
	qInsertDeliveries = `INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
SELECT v.message_id, v.route, v.target, 'pending', 0, v.at, v.at, v.at, v.at, v.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS v (message_id, route, target, at, ord)
ORDER BY v.ord`

	// qNotify notifies channel $1 once per target in $2. Accept runs it
	// right after its COMMIT, as a transaction of its own (see Accept).
	qNotify = `SELECT count(pg_notify($1, t)) FROM unnest($2::text[]) AS t`
)

// qCountAndNotify ends a statement whose data-modifying CTE "changed"
// returns the target of every delivery it made due: it returns how many
// and notifies channel $1 once per target, on commit. Only the rare
// writes (Replay, Backfill, ReleaseLeases) notify inside their
// transaction; see Accept for why it does not.
const qCountAndNotify = `,
due AS (SELECT target, count(*) AS n FROM changed GROUP BY target)
SELECT COALESCE(sum(n), 0)::bigint, count(pg_notify($1, target)) FROM due`

// qReplayCountAndNotify is qCountAndNotify for a replay, which also
// returns the messages of the steps it replayed, to settle them.
const qReplayCountAndNotify = `,
due AS (SELECT target, count(*) AS n FROM changed GROUP BY target)
SELECT COALESCE(sum(n), 0)::bigint, count(pg_notify($1, target)),
    (SELECT array_agg(DISTINCT message_id) FROM changed WHERE step <> '') FROM due`

// Lease, Complete, ReleaseLeases, NextDue.
const (
	// qLeaseSettings sets up the implicit transaction of a Lease batch
	// (settings that end with it). The lease commits without waiting for
	// its WAL flush (see Lease). And the plan must read the deliveries_due
	// index in order and stop after the limit: with statistics that
	// underestimate the backlog (a table analyzed while nearly empty, a
	// burst since), PostgreSQL would rather collect every due delivery of
	// the target with a bitmap scan and sort them, which with a large
	// backlog costs a full read of it per Lease.
	qLeaseSettings = `SELECT set_config('synchronous_commit', 'off', true),
    set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)`

	// qLeaseHead, the limit and qLeaseTail pick the due deliveries of
	// target $1 at $2, oldest due first, in the order of the deliveries_due
	// index so that the LIMIT stops the scan early; skip those another
	// transaction is leasing right now; and lease them to $3 until $4. The
	// rows come in the order they were picked. The limit is a literal (see
	// leaseSQL).
	qLeaseHead = `WITH picked AS (
    SELECT id, due_at AS was_due
    FROM deliveries
    WHERE target = $1 AND due_at IS NOT NULL AND due_at <= $2
    ORDER BY due_at, received_at, id
    LIMIT `
	qLeaseTail = `
    FOR UPDATE SKIP LOCKED
), d AS (
    UPDATE deliveries AS d SET state = 'delivering', attempts = d.attempts + 1,
        lease_owner = $3, lease_expires_at = $4, due_at = $4, updated_at = $2
    FROM picked
    WHERE d.id = picked.id
    RETURNING d.*, picked.was_due
)
SELECT ` + deliveryColumns + `, ` + messageColumns + `
FROM d JOIN messages AS m ON m.id = d.message_id
ORDER BY d.was_due, d.received_at, d.id`

	// qInsertAttempts records attempts, taking the message and target from
	// the delivery (no row when the delivery is gone with its message) and
	// the number from the delivery when the attempt has none.
	qInsertAttempts = `INSERT INTO attempts (delivery_id, message_id, target, number, started_at, duration_us,
    request_method, request_url, request_headers, status, response_headers, response_body, class, error)
SELECT d.id, d.message_id, d.target, CASE WHEN v.number > 0 THEN v.number ELSE d.attempts_before + d.attempts END,
    v.started_at, v.duration_us, v.request_method, v.request_url, v.request_headers,
    v.status, v.response_headers, v.response_body, v.class, v.error
FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[],
        $7::bytea[], $8::integer[], $9::bytea[], $10::bytea[], $11::text[], $12::text[]) WITH ORDINALITY
    AS v (delivery_id, number, started_at, duration_us, request_method, request_url,
        request_headers, status, response_headers, response_body, class, error, ord)
JOIN deliveries AS d ON d.id = v.delivery_id
ORDER BY v.ord`

	// qComplete moves the deliveries still leased by their owner to their
	// new state. next_at is the next attempt time of a retrying delivery
	// and NULL otherwise (due_at NULL: nothing left to do).
	// uncounted (0 or 1) moves the attempt out of the budget
	// (fanout.CompleteParams.Uncounted).
	qComplete = `UPDATE deliveries AS d SET state = v.state, next_attempt_at = COALESCE(v.next_at, d.next_attempt_at),
    due_at = v.next_at, lease_owner = NULL, lease_expires_at = NULL,
    attempts = d.attempts - v.uncounted, attempts_before = d.attempts_before + v.uncounted,
    last_status = v.status, last_error = v.error, last_class = v.class, updated_at = v.now
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[], $6::text[], $7::text[], $8::timestamptz[], $9::integer[])
    AS v (delivery_id, owner, state, next_at, status, error, class, now, uncounted)
WHERE d.id = v.delivery_id AND d.lease_owner = v.owner AND d.state = 'delivering'`

	// qReleaseLeases gives back every delivery leased by owner $3: due
	// again (at once, or when it was scheduled if that is later), one
	// attempt fewer, pending again if that leaves none. Other nodes'
	// workers are notified: the work is theirs now. Leased deliveries have
	// a due_at, so the scan stays on the deliveries_due index.
	// The owner is done: its heartbeat row goes too (see Reclaim).
	qReleaseLeases = `WITH changed AS (
    UPDATE deliveries SET ` + releaseSet + `
    WHERE due_at IS NOT NULL AND state = 'delivering' AND lease_owner = $3
    RETURNING target
), left_nodes AS (
    DELETE FROM nodes WHERE owner = $3
)` + qCountAndNotify
	// qReleaseLeaseIDs is qReleaseLeases for the deliveries in $4 only.
	qReleaseLeaseIDs = `WITH changed AS (
    UPDATE deliveries SET ` + releaseSet + `
    WHERE id = ANY ($4::bigint[]) AND state = 'delivering' AND lease_owner = $3
    RETURNING target
)` + qCountAndNotify
	releaseSet = `state = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'pending' END,
        attempts = GREATEST(attempts - 1, 0),
        due_at = LEAST(next_attempt_at, $2),
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $2`

	// qHeartbeat records that owner $1 of node $2 is alive at $3 (NULL:
	// the server's clock), starting a new run of heartbeats (alive_since)
	// when its last one is older than the timeout $4 (microseconds), and
	// returns the time it used, whether the row is new, and the owners
	// that look gone: the earlier owners of node $2, and, once $1 has been
	// alive for the timeout itself, those whose heartbeat is older than
	// it. qReclaimGone checks them again under their row locks.
	qHeartbeat = `WITH t AS (
    SELECT COALESCE($3::timestamptz, now()) AS now, $4::bigint * interval '1 microsecond' AS dead
), me AS (
    INSERT INTO nodes AS n (owner, node, started_at, alive_since, heartbeat_at)
    SELECT $1, $2, t.now, t.now, t.now FROM t
    ON CONFLICT (owner) DO UPDATE SET node = EXCLUDED.node, heartbeat_at = EXCLUDED.heartbeat_at,
        alive_since = CASE WHEN n.heartbeat_at < EXCLUDED.heartbeat_at - (SELECT dead FROM t)
            THEN EXCLUDED.heartbeat_at ELSE n.alive_since END
    RETURNING n.heartbeat_at, n.alive_since, (n.xmax = 0) AS inserted
)
SELECT me.heartbeat_at, me.inserted, ARRAY(
    SELECT o.owner FROM nodes AS o
    WHERE o.owner <> $1 AND (($2 <> '' AND o.node = $2)
        OR (t.dead > interval '0' AND me.alive_since <= t.now - t.dead AND o.heartbeat_at < t.now - t.dead))
    ORDER BY o.owner)
FROM me, t`

	// qReclaimGone deletes the rows of the owners in $3 that are still gone
	// at $2 (earlier owners of node $4, or no heartbeat since $5; a
	// heartbeat that committed meanwhile keeps its owner) and takes back
	// their leases: due again, attempts kept (the owner may have sent
	// them), retrying. Other nodes' workers are notified on channel $1.
	qReclaimGone = `WITH gone AS (
    DELETE FROM nodes
    WHERE owner = ANY ($3::text[]) AND (($4 <> '' AND node = $4) OR heartbeat_at < $5)
    RETURNING owner
), changed AS (
    UPDATE deliveries SET state = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END,
        due_at = LEAST(next_attempt_at, $2),
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
    WHERE due_at IS NOT NULL AND state = 'delivering' AND lease_owner IN (SELECT owner FROM gone)
    RETURNING target
)` + qCountAndNotify

	qNextDue = `SELECT min(due_at) FROM deliveries WHERE target = $1 AND due_at IS NOT NULL`

	// qTargetsWithWork lists the targets that have waiting deliveries, one
	// index probe per target (a loose index scan of deliveries_due).
	qTargetsWithWork = `WITH RECURSIVE t (target) AS (
    (SELECT target FROM deliveries WHERE due_at IS NOT NULL ORDER BY target LIMIT 1)
    UNION ALL
    SELECT (SELECT d.target FROM deliveries AS d
            WHERE d.due_at IS NOT NULL AND d.target > t.target ORDER BY d.target LIMIT 1)
    FROM t WHERE t.target IS NOT NULL
)
SELECT target FROM t WHERE target IS NOT NULL`
)

// leaseSQL returns the Lease statement for limit. pgx prepares statements
// and PostgreSQL may then plan them once for any arguments; with LIMIT $n
// such a generic plan assumes a tenth of the table comes back and joins it
// by hashing whole tables. A literal LIMIT keeps the plan to index lookups
// of the rows picked; workers use a few limits only, each prepared once.
func leaseSQL(limit int) string {
	return qLeaseHead + strconv.Itoa(limit) + qLeaseTail
}

// GetMessage, ListMessages, DeleteMessage.
const (
	qGetMessage        = `SELECT ` + messageColumns + ` FROM messages AS m WHERE m.id = $1`
	qMessageDeliveries = `SELECT ` + deliveryColumns + ` FROM deliveries AS d WHERE d.message_id = $1 ORDER BY d.id`
	qMessageAttempts   = `SELECT ` + attemptColumns + ` FROM attempts AS a WHERE a.message_id = $1 ORDER BY a.started_at, a.id`
	qDeliveriesOfPage  = `SELECT ` + deliveryColumns + ` FROM deliveries AS d WHERE d.message_id = ANY ($1::text[]) ORDER BY d.id`
	qDeleteMessage     = `DELETE FROM messages WHERE id = $1`
)

// args collects the arguments of a statement built piece by piece; add
// returns the placeholder of the value it adds.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// listMessagesSQL assembles the ListMessages query from the filters in use.
func listMessagesSQL(f listFilter) (string, []any) {
	var a args
	var conds []string
	if f.route != "" {
		conds = append(conds, "m.route = "+a.add(f.route))
	}
	if f.tenant != "" {
		conds = append(conds, "m.tenant = "+a.add(f.tenant))
	}
	if f.since != nil {
		conds = append(conds, "m.received_at >= "+a.add(*f.since))
	}
	if f.until != nil {
		conds = append(conds, "m.received_at < "+a.add(*f.until))
	}
	if f.target != "" || f.state != "" {
		c := "EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message_id = m.id"
		if f.target != "" {
			c += " AND d.target = " + a.add(f.target)
		}
		if f.state != "" {
			c += " AND d.state = " + a.add(f.state)
		}
		conds = append(conds, c+")")
	}
	if f.cursor != nil {
		conds = append(conds, "(m.received_at, m.id) < ("+a.add(f.cursor.receivedAt)+"::timestamptz, "+a.add(f.cursor.id)+"::text)")
	}
	var q strings.Builder
	q.WriteString(`SELECT ` + messageSummaryColumns + ` FROM messages AS m`)
	if len(conds) > 0 {
		q.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	// A literal LIMIT, as in leaseSQL: a generic plan of LIMIT $n could
	// sort the whole table rather than read the index backwards.
	q.WriteString(" ORDER BY m.received_at DESC, m.id DESC LIMIT " + strconv.Itoa(f.limit))
	return q.String(), a
}

// Replay, Backfill.
const (
	// qReplayMessage makes the deliveries of message $3 (only if it belongs
	// to tenant $4 when $4 is not empty; to target $5 only when $5 is not
	// empty) pending and due at $2 with no attempts made, except those
	// being delivered. Its first row says whether the message exists;
	// notifications go to channel $1.
	qReplayMessage = `WITH msg AS (
    SELECT id FROM messages WHERE id = $3 AND ($4 = '' OR tenant = $4)
), changed AS (
    UPDATE deliveries SET state = 'pending', attempts_before = attempts_before + attempts, attempts = 0, next_attempt_at = $2, due_at = $2,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
    WHERE message_id IN (SELECT id FROM msg) AND state <> 'delivering' AND ($5 = '' OR target = $5)
    RETURNING target, message_id, step
), due AS (SELECT target, count(*) AS n FROM changed GROUP BY target)
SELECT (SELECT count(*) FROM msg), COALESCE(sum(n), 0)::bigint, count(pg_notify($1, target)),
    (SELECT array_agg(DISTINCT message_id) FROM changed WHERE step <> '') FROM due`

	// qBackfill adds a pending delivery to $2, due at $3, for each message
	// of route $4 received in [$5, $6) that has none.
	qBackfill = `WITH changed AS (
    INSERT INTO deliveries (message_id, route, target, state, attempts, next_attempt_at, due_at, received_at, created_at, updated_at)
    SELECT m.id, m.route, $2, 'pending', 0, $3, $3, m.received_at, $3, $3
    FROM messages AS m
    WHERE m.route = $4 AND m.received_at >= $5 AND m.received_at < $6
    ON CONFLICT (message_id, target, step) DO NOTHING
    RETURNING target
)` + qCountAndNotify
)

// replaySQL assembles the bulk Replay statement: $1 is the channel, $2 the
// time; the filters' arguments follow. The usual state, dead, is a literal
// so that the statement can read the deliveries_dead index.
func replaySQL(channel string, now any, state string, f replayFilter) (string, []any) {
	a := args{channel, now}
	cond := "'dead'"
	if state != string(fanout.StateDead) {
		cond = a.add(state)
	}
	var q strings.Builder
	q.WriteString(`WITH changed AS (
    UPDATE deliveries SET state = 'pending', attempts_before = attempts_before + attempts, attempts = 0, next_attempt_at = $2, due_at = $2,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
    WHERE state = ` + cond + ` AND state <> 'delivering'`)
	if f.target != "" {
		q.WriteString(" AND target = " + a.add(f.target))
	}
	if f.route != "" {
		q.WriteString(" AND route = " + a.add(f.route))
	}
	if f.since != nil {
		q.WriteString(" AND received_at >= " + a.add(*f.since))
	}
	if f.until != nil {
		q.WriteString(" AND received_at < " + a.add(*f.until))
	}
	if f.tenant != "" {
		q.WriteString(" AND EXISTS (SELECT 1 FROM messages AS m WHERE m.id = deliveries.message_id AND m.tenant = " + a.add(f.tenant) + ")")
	}
	q.WriteString("\n    RETURNING target, message_id, step\n)" + qReplayCountAndNotify)
	return q.String(), a
}

// Purge, Backlog.
const (
	// qPurgeMessages deletes up to $2 messages received before $1 whose
	// deliveries all succeeded; deliveries, attempts and keys go with them.
	qPurgeMessages = `DELETE FROM messages WHERE id IN (
    SELECT m.id FROM messages AS m
    WHERE m.received_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message_id = m.id AND d.state <> 'succeeded')
    ORDER BY m.received_at
    LIMIT $2)`
	qPurgeKeys = `DELETE FROM idempotency_keys WHERE received_at < $1`

	// qBacklog counts, per target, the waiting deliveries (due_at set:
	// pending, retrying, delivering) with the oldest one's receive time,
	// and the dead ones; each half reads one partial index only.
	qBacklog = `SELECT target, sum(waiting)::bigint, sum(dead)::bigint, min(oldest) FROM (
    SELECT target, count(*) AS waiting, 0 AS dead, min(received_at) AS oldest
    FROM deliveries WHERE due_at IS NOT NULL GROUP BY target
    UNION ALL
    SELECT target, 0, count(*), NULL
    FROM deliveries WHERE state = 'dead' GROUP BY target
) AS b GROUP BY target ORDER BY target`
)

// Access (access.go): subscriptions, self-service keys, the audit log and
// the access version.
const (
	subscriptionColumns = `id, tenant, route, state, note, reason, decided_by, requested_at, decided_at`
	apiKeyColumns       = `id, tenant, name, prefix, sha256, created_at, expires_at, revoked_at, last_used_at`
	auditColumns        = `id, at, actor, action, subject, tenant, route, reason`

	// qInsertSubscription inserts a request unless the tenant has one
	// for the route; qLockSubscriptionOf then reads that one, locked.
	qInsertSubscription = `INSERT INTO subscriptions (id, tenant, route, state, note, requested_at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant, route) DO NOTHING`
	qLockSubscriptionOf  = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE tenant = $1 AND route = $2 FOR UPDATE`
	qGetSubscription     = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE id = $1`
	qLockSubscription    = qGetSubscription + ` FOR UPDATE`
	qRequestSubscription = `UPDATE subscriptions SET state = $1, note = $2, reason = '', decided_by = '', requested_at = $3, decided_at = NULL WHERE id = $4`
	qDecideSubscription  = `UPDATE subscriptions SET state = $1, reason = $2, decided_by = $3, decided_at = $4 WHERE id = $5`
	qActiveSubscriptions = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE state = 'active' ORDER BY requested_at, id`
	qListSubscriptions   = `SELECT ` + subscriptionColumns + ` FROM subscriptions
WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR route = $2) AND ($3 = '' OR state = $3)
ORDER BY requested_at, id`

	qInsertKey   = `INSERT INTO api_keys (id, tenant, name, prefix, sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qLiveKeyName = `SELECT 1 FROM api_keys WHERE tenant = $1 AND name = $2 AND revoked_at IS NULL`
	qListKeys    = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE ($1 = '' OR tenant = $1) ORDER BY created_at, id`
	qLockKey     = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE id = $1 AND ($2 = '' OR tenant = $2) FOR UPDATE`
	qRevokeKey   = `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`
	qTouchKeys   = `UPDATE api_keys AS k SET last_used_at = u.at
FROM unnest($1::text[], $2::timestamptz[]) AS u (id, at)
WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`
	qLiveKeys = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id`

	qInsertAudit = `INSERT INTO audit_log (at, actor, action, subject, tenant, route, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qListAudit   = `SELECT ` + auditColumns + ` FROM audit_log
WHERE ($1::timestamptz IS NULL OR at >= $1) AND id > $2 AND ($3 = '' OR tenant = $3)
ORDER BY id LIMIT $4`

	qAccessVersion = `SELECT version FROM access_version WHERE one = 1`
	// qBumpAccess takes the version row's lock until the transaction
	// ends: access changes commit one at a time, in version order.
	qBumpAccess = `UPDATE access_version SET version = version + 1 WHERE one = 1`
)
