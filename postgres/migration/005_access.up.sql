-- 005_access: API management decided at run time, as in
-- sqlite/migration/005_access.up.sql: subscriptions, self-service API keys
-- (their hashes only), the audit log, and the access version that every
-- change moves on and every node polls.

CREATE TABLE subscriptions (
    id           text        NOT NULL PRIMARY KEY,
    tenant       text        NOT NULL,
    route        text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('pending', 'active', 'rejected', 'revoked')),
    note         text        NOT NULL DEFAULT '',
    reason       text        NOT NULL DEFAULT '',
    decided_by   text        NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL,
    decided_at   timestamptz,
    UNIQUE (tenant, route)
);

CREATE TABLE api_keys (
    id           text        NOT NULL PRIMARY KEY,
    tenant       text        NOT NULL,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    sha256       text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE UNIQUE INDEX api_keys_live_name ON api_keys (tenant, name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    tenant  text        NOT NULL,
    route   text        NOT NULL DEFAULT '',
    reason  text        NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE access_version (
    one     integer NOT NULL PRIMARY KEY CHECK (one = 1),
    version bigint  NOT NULL
);

INSERT INTO access_version (one, version) VALUES (1, 0);
