-- 002_steps: the deliveries of async steps routes, as in
-- sqlite/migration/002_steps.up.sql.
--
-- A delivery may be one step of a steps route: step is its name ('' for
-- any other delivery) and after_steps the names of the steps it runs after,
-- comma separated. Two new states: 'blocked' (waiting for the steps it runs
-- after; due_at NULL) and 'skipped' (one of them is dead). A succeeded step
-- keeps its target's response for the templates of the steps after it. A
-- delivery is unique per message, target and step.

ALTER TABLE deliveries
    ADD COLUMN step             text  NOT NULL DEFAULT '',
    ADD COLUMN after_steps      text  NOT NULL DEFAULT '',
    ADD COLUMN response_headers bytea,
    ADD COLUMN response_body    bytea;

ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_state_check,
    ADD CONSTRAINT deliveries_state_check
        CHECK (state IN ('blocked', 'pending', 'delivering', 'retrying', 'succeeded', 'dead', 'skipped'));

ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_message_id_target_key,
    ADD CONSTRAINT deliveries_message_id_target_step_key UNIQUE (message_id, target, step);
