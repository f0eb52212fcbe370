-- Substring search through an index (issue 22). IMAP SEARCH text keys are substring matches
-- (RFC 9051 §6.4.4), which a word index cannot answer ("ell" is inside "hello"); before this
-- migration every such SEARCH read the whole mailbox's text. `message_fts_tri` indexes every
-- three-character sequence of the folded text (FTS5's trigram tokenizer). `case_sensitive 1`:
-- the text and the needle are both folded by Wharf (`text::fold`: case and diacritics), so the
-- tokenizer must not fold again in its own way; `detail = full` keeps positions, so a needle of
-- three or more characters is answered exactly by a phrase query (consecutive trigrams), with no
-- text read to confirm it. The name starts with `message_fts` so `wharf migrate` skips it
-- (PostgreSQL has its own index).
--
-- The index is written off the delivery path: a message's text row is stored with
-- `tri_indexed = 0`, and the store's writer indexes such rows in small batches whenever no
-- delivery is waiting (`Shared::index_pending`). SEARCH answers from the index for the rows
-- indexed and reads the (few) rows not yet indexed, in one statement, so its answers are exact
-- whether or not indexing has caught up. Contentless with `contentless_delete` (SQLite 3.43):
-- a row is removed from the index by its id alone, and only if it was indexed.
CREATE VIRTUAL TABLE message_fts_tri USING fts5(
    subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body,
    content = '', contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1', detail = full
);
ALTER TABLE message_text ADD COLUMN tri_indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX message_text_unindexed ON message_text (message_id) WHERE tri_indexed = 0;
CREATE TRIGGER message_text_tri_ad AFTER DELETE ON message_text WHEN old.tri_indexed = 1 BEGIN
    DELETE FROM message_fts_tri WHERE rowid = old.message_id;
END;
-- Text rewritten (the backfill below): out of the index, and back in line to be indexed.
CREATE TRIGGER message_text_tri_au
AFTER UPDATE OF subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body ON message_text
WHEN old.tri_indexed = 1 BEGIN
    DELETE FROM message_fts_tri WHERE rowid = old.message_id;
    UPDATE message_text SET tri_indexed = 0 WHERE message_id = new.message_id;
END;
-- The word index follows text changes only, not the bookkeeping columns (`tri_indexed`,
-- `text_version`): re-indexing a row's words each time it is marked indexed would double the
-- word index's work.
DROP TRIGGER message_text_au;
CREATE TRIGGER message_text_au
AFTER UPDATE OF subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body ON message_text BEGIN
    INSERT INTO message_fts (message_fts, rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES ('delete', old.message_id, old.subject, old.from_addr, old.to_addr, old.cc_addr, old.bcc_addr, old.headers, old.body);
    INSERT INTO message_fts (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES (new.message_id, new.subject, new.from_addr, new.to_addr, new.cc_addr, new.bcc_addr, new.headers, new.body);
END;
-- The messages already stored are indexed by the same background work, oldest first; until then
-- SEARCH reads their text as before.
--
-- How the row's text was folded: 0 = lower-cased only (before this migration), 1 = lower-cased
-- and diacritics removed (`text::FOLD_VERSION`). Older rows are folded again from their message
-- by the background backfill (`Store::backfill_header_text`); until then a needle with
-- diacritics removed may miss them. The partial index finds what is left to do.
ALTER TABLE message_text ADD COLUMN text_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX message_text_stale ON message_text (message_id) WHERE headers IS NULL OR text_version < 1;
