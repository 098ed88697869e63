-- System tables of a Basalt PostgreSQL database. Append-only: never edit after release.
-- Mirrors migrations/sqlite/0001_init.sql name for name (a test checks).
CREATE TABLE IF NOT EXISTS _collections (
    id      TEXT PRIMARY KEY NOT NULL,
    name    TEXT NOT NULL,
    type    TEXT NOT NULL,
    system  BOOLEAN NOT NULL DEFAULT FALSE,
    -- The whole definition as JSON (fields, rules, indexes, options, token secret).
    data    TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS idx__collections_name ON _collections (lower(name));

CREATE TABLE IF NOT EXISTS _params (
    id      TEXT PRIMARY KEY NOT NULL,
    value   TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
