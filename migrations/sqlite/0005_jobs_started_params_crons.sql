-- When the current (or last) attempt of a job started (Unix ms): enqueue-to-start latency.
ALTER TABLE _jobs ADD COLUMN started INTEGER NULL;
-- Application settings (PocketBase's `_params`): one JSON document per key, `settings` for
-- `/api/settings`. Secrets are stored here and never returned by the API.
CREATE TABLE IF NOT EXISTS _params (
    id      TEXT PRIMARY KEY NOT NULL,
    value   TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
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
