-- A stem index for IMAP FUZZY (RFC 6203, `words.rs`), which read the whole mailbox's text for
-- every search before. Each message is indexed under one token per distinct stem of its words
-- (English, German, French and Spanish Snowball stems of the folded words; a token is 48 bits of
-- the stem's hash, spelled as 12 hex digits, which the `ascii` tokenizer keeps whole). FUZZY asks
-- for the messages holding, for every needle word, one of its stems' tokens, and scores only those
-- from their text, as before: the index narrows the messages read, it decides no answer.
-- `detail = none`: only which messages hold a token (no columns, no positions); a field key
-- (FUZZY SUBJECT) takes the candidates of the whole text and is decided by the score, which reads
-- the field. The name starts with `message_fts` so `wharf migrate` skips it (PostgreSQL keeps the
-- tokens in its `message_stems` table).
--
-- Written off the delivery path, as the trigram index (0016) is: rows are stored with
-- `stem_indexed = 0`, and the store's writer indexes them in its idle time
-- (`Shared::index_stems`); FUZZY reads the rows not indexed yet, so answers are the same whether
-- or not indexing has caught up. The messages already stored are indexed by the same work.
CREATE VIRTUAL TABLE message_fts_stem USING fts5(
    stems, content = '', contentless_delete = 1, tokenize = 'ascii', detail = none
);
INSERT INTO message_fts_stem (message_fts_stem, rank) VALUES ('usermerge', 2);
ALTER TABLE message_text ADD COLUMN stem_indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX message_text_unstemmed ON message_text (message_id) WHERE stem_indexed = 0;
CREATE TRIGGER message_text_stem_ad AFTER DELETE ON message_text WHEN old.stem_indexed = 1 BEGIN
    DELETE FROM message_fts_stem WHERE rowid = old.message_id;
END;
-- Text rewritten (the header backfill, attachment text appended): out of the index, and back in
-- line to be indexed.
CREATE TRIGGER message_text_stem_au
AFTER UPDATE OF subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body ON message_text
WHEN old.stem_indexed = 1 BEGIN
    DELETE FROM message_fts_stem WHERE rowid = old.message_id;
    UPDATE message_text SET stem_indexed = 0 WHERE message_id = new.message_id;
END;
