-- When the current (or last) attempt of a job started (Unix ms): enqueue-to-start latency.
ALTER TABLE _jobs ADD COLUMN started INTEGER NULL;
-- Cron schedules: each tick enqueues one job of `kind`. `last_tick` (Unix ms of the last
-- fired tick) is advanced with a compare-and-set, so with several instances a tick fires once.
CREATE TABLE IF NOT EXISTS _crons (
    id          TEXT PRIMARY KEY NOT NULL,
    expression  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    last_tick   INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);
-- API keys: a secret for a program (a worker, a CI job) with named scopes instead of a
-- superuser login. Only the SHA-256 of the secret is stored; the key is shown once.
CREATE TABLE IF NOT EXISTS _apikeys (
    id      TEXT PRIMARY KEY NOT NULL,
    name    TEXT NOT NULL,
    scopes  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    created INTEGER NOT NULL
);
