-- Substring search through an index (issue 22): a pg_trgm GIN index over all of a message's
-- folded text, so that `LIKE '%needle%'` (answered exactly: PostgreSQL rechecks every candidate
-- the index gives) does not read the whole mailbox. One index over the concatenated columns,
-- not one per column: a field key (SUBJECT, FROM, ...) takes the candidates of the whole text and
-- confirms on its own column (`strpos`). The expression must stay identical to the one in
-- `sql/search.rs` (`PG_TRGM_EXPR`), or the planner will not use the index.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension, but a server may lack it
-- or refuse it: then this migration still succeeds without the index, with a warning, and
-- SEARCH keeps answering (correctly) by reading the mailbox's text.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'wharf: pg_trgm unavailable (%), SEARCH reads mailbox text without an index', SQLERRM;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX message_text_trgm ON message_text USING GIN (('
            || 'subject || E''\n'' || from_addr || E''\n'' || to_addr || E''\n'' || cc_addr || E''\n'' '
            || '|| bcc_addr || E''\n'' || coalesce(headers, '''') || E''\n'' || body) gin_trgm_ops)';
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'wharf: trigram index not created (%), SEARCH reads mailbox text without an index', SQLERRM;
END $$;
-- How the row's text was folded: 0 = lower-cased only (before this migration), 1 = lower-cased
-- and diacritics removed (`text::FOLD_VERSION`). Older rows are folded again from their message
-- by the background backfill (`Store::backfill_header_text`).
ALTER TABLE message_text ADD COLUMN text_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX message_text_stale ON message_text (message_id) WHERE headers IS NULL OR text_version < 1;
