-- The change feed's outbox (mirrors migrations/sqlite/0002_changes.sql): one row per record a
-- write created, updated or deleted, written in the write's own transaction and tailed by every
-- instance. Positions are drawn from the sequence AFTER the record write in the same transaction
-- (the transaction then already has an xid), which the tailer's gap rule relies on.
CREATE TABLE IF NOT EXISTS _changes (
    pos        BIGSERIAL PRIMARY KEY,
    instance   TEXT NOT NULL,
    collection TEXT NOT NULL,
    record     TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- Unix time in milliseconds (pruning compares it; no date text to format per write).
    created    BIGINT NOT NULL
);

-- The highest position pruned so far: a consumer resuming from below it missed changes.
CREATE TABLE IF NOT EXISTS _changes_pruned (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    through BIGINT NOT NULL
);
INSERT INTO _changes_pruned (id, through) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
