-- Mirrors migrations/sqlite/0003_changes_data.sql: a deleted record's row as it was (JSON).
ALTER TABLE _changes ADD COLUMN IF NOT EXISTS data TEXT;
