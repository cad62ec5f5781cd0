-- 003_attempt_count: the attempt number keeps counting across replays.
--
-- attempts is the budget of the delivery's current run: a replay sets it to
-- 0 so that the delivery gets max_attempts again. attempts_before holds the
-- attempts made before the last replay (docs/delivery.md): the number of an
-- attempt, sent as Fanout-Attempt and stored in attempts.number, is
-- attempts_before + attempts.

ALTER TABLE deliveries ADD COLUMN attempts_before INTEGER NOT NULL DEFAULT 0;
