-- 003_nodes: nothing to change. In PostgreSQL this version adds the table
-- of the nodes' heartbeats (postgres/migration/003_nodes.up.sql); SQLite
-- has one process per database file (Open locks it), so every lease found
-- at start is one of a process that has stopped and no heartbeat is
-- needed. The version exists so that both dialects number alike.
SELECT 1;
