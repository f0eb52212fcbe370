-- A stem index for IMAP FUZZY (RFC 6203, `words.rs`), which read the whole mailbox's text for
-- every search before: `stems` holds one token per distinct stem of the message's words (English,
-- German, French and Spanish Snowball stems of the folded words; 48 bits of the stem's hash), and
-- a GIN index answers "holds one of these tokens" (`&&`) for every needle word. FUZZY scores only
-- those messages from their text, as before: the index narrows the messages read, it decides no
-- answer, so both backends answer alike (SQLite keeps the same tokens in `message_fts_stem`).
--
-- NULL = not indexed yet. Filled off the delivery path by a background task
-- (`Shared::index_stems`); FUZZY reads the rows not indexed yet, so answers are the same whether
-- or not indexing has caught up. The messages already stored are indexed by the same work.
ALTER TABLE message_text ADD COLUMN stems BIGINT[];
CREATE INDEX message_text_stems ON message_text USING GIN (stems);
CREATE INDEX message_text_unstemmed ON message_text (message_id) WHERE stems IS NULL;
-- Text rewritten (the header backfill, attachment text appended): back in line to be indexed.
CREATE FUNCTION wharf_message_text_unstem() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.stems := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER message_text_unstem
BEFORE UPDATE OF subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body ON message_text
FOR EACH ROW EXECUTE FUNCTION wharf_message_text_unstem();
