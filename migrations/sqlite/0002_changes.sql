-- The change feed's outbox: one row per record a write created, updated or deleted (cascades and
-- relation clean-ups included), written in the write's own transaction. The position is the
-- rowid: pruning never deletes the newest row, so the next one is always max + 1 and a position
-- is never reused (AUTOINCREMENT would do the same at the cost of a sqlite_sequence write per
-- change).
CREATE TABLE IF NOT EXISTS _changes (
    pos        INTEGER PRIMARY KEY,
    -- The instance that wrote it (its own events are published before the outbox is read).
    instance   TEXT NOT NULL,
    collection TEXT NOT NULL,
    record     TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- Unix time in milliseconds (pruning compares it; no date text to format per write).
    created    INTEGER NOT NULL
);

-- The highest position pruned so far: a consumer resuming from below it missed changes.
CREATE TABLE IF NOT EXISTS _changes_pruned (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    through INTEGER NOT NULL
);
INSERT INTO _changes_pruned (id, through) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
