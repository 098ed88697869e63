-- A deleted record's row as it was (JSON), so consumers of the change feed on other instances
-- (realtime) can show and check what is gone. NULL for creates and updates (those are read back).
ALTER TABLE _changes ADD COLUMN data TEXT;
