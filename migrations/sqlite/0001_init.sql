-- System tables of a Basalt data directory. Append-only: never edit after release.
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
CREATE UNIQUE INDEX IF NOT EXISTS idx__collections_name ON _collections (name COLLATE NOCASE);

CREATE TABLE IF NOT EXISTS _params (
    id      TEXT PRIMARY KEY NOT NULL,
    value   TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
