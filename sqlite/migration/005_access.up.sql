-- 005_access: API management decided at run time (fanout.AccessStore):
-- tenants' subscriptions to routes, self-service API keys (their hashes
-- only), the audit log of every decision and key change, and one version
-- number that every change moves on, which nodes poll to reload.

CREATE TABLE subscriptions (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    route        TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'active', 'rejected', 'revoked')),
    note         TEXT    NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    decided_by   TEXT    NOT NULL DEFAULT '',
    requested_at INTEGER NOT NULL,
    decided_at   INTEGER,
    UNIQUE (tenant, route)
);

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    sha256       TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- A tenant's live keys have distinct names.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (tenant, name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    tenant  TEXT    NOT NULL,
    route   TEXT    NOT NULL DEFAULT '',
    reason  TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE access_version (
    one     INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL
);

INSERT INTO access_version (one, version) VALUES (1, 0);
