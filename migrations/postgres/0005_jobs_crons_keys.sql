-- Mirrors migrations/sqlite/0005_jobs_crons_keys.sql.
ALTER TABLE _jobs ADD COLUMN IF NOT EXISTS started BIGINT NULL;
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
CREATE TABLE IF NOT EXISTS _apikeys (
    id      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name    TEXT NOT NULL,
    scopes  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    created BIGINT NOT NULL
);
