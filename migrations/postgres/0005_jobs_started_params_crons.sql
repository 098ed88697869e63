-- Mirrors migrations/sqlite/0005_jobs_started_params_crons.sql.
ALTER TABLE _jobs ADD COLUMN IF NOT EXISTS started BIGINT NULL;
CREATE TABLE IF NOT EXISTS _params (
    id      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value   TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS _crons (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    expression  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    last_tick   BIGINT NOT NULL DEFAULT 0,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL
);
