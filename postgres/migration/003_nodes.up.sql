-- 003_nodes: the processes that lease deliveries, and their heartbeats
-- (Store.Reclaim; docs/operations.md). SQLite needs no such table: one
-- process owns a file (sqlite/migration/003_nodes.up.sql).
--
-- One row per owner, the name a process leases deliveries under (a new one
-- at every start); node is the identity that survives its restarts. Times
-- are the database server's clock unless a test gives its own.
-- alive_since is when the owner's current run of heartbeats began (reset
-- after a gap of the heartbeat timeout): an owner judges others only once
-- it has itself been heartbeating for that long, so that after an outage
-- of the database nobody takes the leases of nodes that are just
-- reconnecting. A row is deleted when its owner releases its leases at
-- shutdown, or with its leases once it is gone.
CREATE TABLE nodes (
    owner        text        NOT NULL PRIMARY KEY,
    node         text        NOT NULL,
    started_at   timestamptz NOT NULL,
    alive_since  timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

CREATE INDEX nodes_node ON nodes (node);
