-- 002_steps: the deliveries of async steps routes.
--
-- A delivery may be one step of a steps route: step is its name ('' for
-- any other delivery) and after_steps the names of the steps it runs after,
-- comma separated (step names are [A-Za-z_][A-Za-z0-9_]*). Two new states:
-- 'blocked' (waiting for the steps it runs after; due_at NULL) and
-- 'skipped' (one of them is dead). A succeeded step keeps its target's
-- response (response_headers, response_body) for the templates of the
-- steps after it. A message may send two steps to the same target, so a
-- delivery is unique per message, target and step.
--
-- SQLite cannot change a CHECK or UNIQUE constraint in place: the table is
-- rebuilt and its indexes made again.

CREATE TABLE deliveries_new (
    id               INTEGER NOT NULL PRIMARY KEY,
    message_id       TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    route            TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    step             TEXT    NOT NULL DEFAULT '',
    after_steps      TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL
        CHECK (state IN ('blocked', 'pending', 'delivering', 'retrying', 'succeeded', 'dead', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    due_at           INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_status      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    last_class       TEXT    NOT NULL DEFAULT '',
    response_headers BLOB,
    response_body    BLOB,
    received_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (message_id, target, step)
);

INSERT INTO deliveries_new (id, message_id, route, target, state, attempts, next_attempt_at, due_at,
    lease_owner, lease_expires_at, last_status, last_error, last_class, received_at, created_at, updated_at)
SELECT id, message_id, route, target, state, attempts, next_attempt_at, due_at,
    lease_owner, lease_expires_at, last_status, last_error, last_class, received_at, created_at, updated_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;

CREATE INDEX deliveries_due ON deliveries (target, due_at, received_at)
    WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (target, received_at)
    WHERE state = 'dead';
