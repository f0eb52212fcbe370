-- The tsvector column `fts` and its GIN index have answered no query since migration 0016 moved
-- SEARCH to pg_trgm, yet every delivery computed `to_tsvector` and inserted into the GIN index
-- (issue 19 item 5: PostgreSQL CPU per delivery). SQLite drops its word index in the same
-- migration. A word/stem index for FUZZY search (issue 22) will be written off the delivery path.
DROP INDEX IF EXISTS message_text_fts;
ALTER TABLE message_text DROP COLUMN IF EXISTS fts;
ALTER TABLE message_text DROP COLUMN IF EXISTS fts_complete;
