-- The job queue: one row per job, in the same database as the data so a record write and the
-- jobs it causes commit together. Times are Unix milliseconds. A job is claimable when it is
-- `pending` and due, or `running` with an expired lease (its worker died).
CREATE TABLE IF NOT EXISTS _jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- pending | running | succeeded | failed | dead
    state        TEXT NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    unique_key   TEXT NULL,
    result       TEXT NULL,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    finished     INTEGER NULL
);
-- Claiming: the due jobs of a queue, highest priority first, then oldest.
CREATE INDEX IF NOT EXISTS _jobs_claim ON _jobs (queue, state, priority DESC, run_at);
-- One live job per unique key (a second enqueue returns the first).
CREATE UNIQUE INDEX IF NOT EXISTS _jobs_unique ON _jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
