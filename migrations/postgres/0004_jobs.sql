-- Mirrors migrations/sqlite/0004_jobs.sql: the job queue (times in Unix milliseconds).
CREATE TABLE IF NOT EXISTS _jobs (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    run_at       BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    state        TEXT NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    unique_key   TEXT NULL,
    result       TEXT NULL,
    created      BIGINT NOT NULL,
    updated      BIGINT NOT NULL,
    finished     BIGINT NULL
);
CREATE INDEX IF NOT EXISTS _jobs_claim ON _jobs (queue, state, priority DESC, run_at);
CREATE UNIQUE INDEX IF NOT EXISTS _jobs_unique ON _jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
