-- 001_init: messages, their deliveries to targets, the attempts made for
-- them, and the idempotency keys remembered per route. The same tables,
-- columns and indexes as sqlite/migration/001_init.up.sql, in PostgreSQL
-- types.
--
-- Times are timestamptz (microseconds); attempt durations are bigint
-- microseconds. Headers are the JSON of an http.Header
-- ({"Name": ["v1", "v2"]}) stored as bytea exactly as encoded (NULL for a
-- nil header), as in SQLite: jsonb would cost a parse on every Accept and
-- rejects strings (\u0000) that a downstream response header can carry.

CREATE TABLE messages (
    id              text        NOT NULL PRIMARY KEY,  -- "msg_" + ULID
    route           text        NOT NULL,
    tenant          text        NOT NULL DEFAULT '',
    method          text        NOT NULL,
    path            text        NOT NULL,
    headers         bytea,                             -- JSON http.Header
    body            bytea       NOT NULL,
    idempotency_key text        NOT NULL DEFAULT '',   -- as sent; dedup uses idempotency_keys
    received_at     timestamptz NOT NULL
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
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       text        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    route            text        NOT NULL,
    target           text        NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('pending', 'delivering', 'retrying', 'succeeded', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    due_at           timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_status      integer     NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT '',
    last_class       text        NOT NULL DEFAULT '',
    received_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (message_id, target)
);

-- Lease (target, due first, in the exact order of its ORDER BY so that
-- LIMIT stops the scan), NextDue (min due_at of a target), Backlog (count
-- and oldest received_at of waiting deliveries, index only) and the
-- targets with work that Listen wakes after a reconnection.
CREATE INDEX deliveries_due ON deliveries (target, due_at, received_at, id)
    WHERE due_at IS NOT NULL;
-- Dead letters: Backlog counts and bulk replay of a target's dead ones.
CREATE INDEX deliveries_dead ON deliveries (target, received_at)
    WHERE state = 'dead';

-- One HTTP exchange with a target. Attempts go with their message; a
-- delivery is only ever deleted with its message, so message_id carries the
-- cascade and delivery_id needs no index of its own.
CREATE TABLE attempts (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      bigint      NOT NULL,
    message_id       text        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    target           text        NOT NULL,
    number           integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_us      bigint      NOT NULL,
    request_method   text        NOT NULL DEFAULT '',
    request_url      text        NOT NULL DEFAULT '',
    request_headers  bytea,
    status           integer     NOT NULL DEFAULT 0,
    response_headers bytea,
    response_body    bytea,
    class            text        NOT NULL DEFAULT '',
    error            text        NOT NULL DEFAULT ''
);

CREATE INDEX attempts_message ON attempts (message_id, started_at);

-- Idempotency keys remembered per route. A key points at the newest
-- message that used it; a message accepted with a key whose row is older
-- than its dedup window takes the row over. Purge forgets rows received
-- before PurgeParams.KeysBefore; deleting the message forgets its key.
--
-- The primary key is what makes a key safe across processes: Accept claims
-- a key by inserting its row (ON CONFLICT DO NOTHING, which waits for a
-- concurrent claim to commit or roll back) before the message row exists,
-- so the foreign key is checked at commit (DEFERRABLE INITIALLY DEFERRED;
-- the cascade itself is never deferred).
CREATE TABLE idempotency_keys (
    route       text        NOT NULL,
    key         text        NOT NULL,
    message_id  text        NOT NULL
        REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (route, key)
);

CREATE INDEX idempotency_keys_received ON idempotency_keys (received_at);
CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
