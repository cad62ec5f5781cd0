-- 001_init: messages, their deliveries to targets, the attempts made for
-- them, and the idempotency keys remembered per route.
--
-- Times are INTEGER milliseconds since the Unix epoch (UTC); attempt
-- durations are INTEGER microseconds. Headers are JSON objects of
-- http.Header ({"Name": ["v1", "v2"]}), NULL for a nil header.

CREATE TABLE messages (
    id              TEXT    NOT NULL PRIMARY KEY,     -- "msg_" + ULID
    route           TEXT    NOT NULL,
    tenant          TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    headers         BLOB,                             -- JSON http.Header
    body            BLOB    NOT NULL,
    idempotency_key TEXT    NOT NULL DEFAULT '',      -- as sent; dedup uses idempotency_keys
    received_at     INTEGER NOT NULL
);

-- Newest-first listing (also by route or tenant: the scan filters as it
-- goes), purge by age, backfill of a time range. One index only: every
-- index is paid for by each Accept.
CREATE INDEX messages_received ON messages (received_at, id);

-- One delivery per message and target.
--
-- due_at is the time the delivery can next be leased: next_attempt_at while
-- pending or retrying, lease_expires_at while delivering, NULL once
-- succeeded or dead. It keeps Lease, NextDue and Backlog on one small
-- partial index. received_at is the message's, copied so that the oldest
-- waiting message and time filters need no join.
CREATE TABLE deliveries (
    id               INTEGER NOT NULL PRIMARY KEY,
    message_id       TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    route            TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('pending', 'delivering', 'retrying', 'succeeded', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    due_at           INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_status      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    last_class       TEXT    NOT NULL DEFAULT '',
    received_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (message_id, target)
);

-- Lease (target, due first), NextDue (min due_at of a target) and Backlog
-- (count and oldest received_at of waiting deliveries, index only).
CREATE INDEX deliveries_due ON deliveries (target, due_at, received_at)
    WHERE due_at IS NOT NULL;
-- Dead letters: Backlog counts and bulk replay of a target's dead ones.
CREATE INDEX deliveries_dead ON deliveries (target, received_at)
    WHERE state = 'dead';

-- One HTTP exchange with a target. Attempts go with their message; a
-- delivery is only ever deleted with its message, so message_id carries the
-- cascade and delivery_id needs no index of its own.
CREATE TABLE attempts (
    id               INTEGER NOT NULL PRIMARY KEY,
    delivery_id      INTEGER NOT NULL,
    message_id       TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    target           TEXT    NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_us      INTEGER NOT NULL,
    request_method   TEXT    NOT NULL DEFAULT '',
    request_url      TEXT    NOT NULL DEFAULT '',
    request_headers  BLOB,
    status           INTEGER NOT NULL DEFAULT 0,
    response_headers BLOB,
    response_body    BLOB,
    class            TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX attempts_message ON attempts (message_id, started_at);

-- Idempotency keys remembered per route. A key points at the newest
-- message that used it; a message accepted with a key whose row is older
-- than its dedup window takes the row over. Purge forgets rows received
-- before PurgeParams.KeysBefore; deleting the message forgets its key.
CREATE TABLE idempotency_keys (
    route       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (route, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_received ON idempotency_keys (received_at);
CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
