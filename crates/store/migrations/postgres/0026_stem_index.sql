-- A stem index for IMAP FUZZY (RFC 6203, `words.rs`), which read the whole mailbox's text for
-- every search before: `message_stems.stems` holds one token per distinct stem of the message's
-- words (English, German, French and Spanish Snowball stems of the folded words; 48 bits of the
-- stem's hash), and a GIN index answers "holds one of these tokens" (`&&`) for every needle word.
-- FUZZY scores only those messages from their text, as before: the index narrows the messages
-- read, it decides no answer, so both backends answer alike (SQLite keeps the same tokens in
-- `message_fts_stem`).
--
-- A table of its own, not a column of `message_text`: writing an indexed column there would make
-- every update of the row a non-HOT one, which re-enters the row in every index of the table,
-- the pg_trgm index of its whole text included.
--
-- Filled off the delivery path, by each node's store writer when idle (`Shared::index_stems`), from
-- `message_stems_pending`, where the triggers below put every new row and every row whose text
-- changes (the header backfill, attachment text appended). FUZZY reads the pending rows' text, so
-- answers are the same whether or not indexing has caught up. The messages already stored are
-- put in line here, and indexed by the same work.
CREATE TABLE message_stems (
    message_id BIGINT PRIMARY KEY REFERENCES message_text (message_id) ON DELETE CASCADE,
    stems      BIGINT[] NOT NULL
);
CREATE INDEX message_stems_tokens ON message_stems USING GIN (stems);
CREATE TABLE message_stems_pending (
    message_id BIGINT PRIMARY KEY REFERENCES message_text (message_id) ON DELETE CASCADE
);
INSERT INTO message_stems_pending (message_id) SELECT message_id FROM message_text;
-- New rows, once per statement (a delivery batch, `wharf migrate`'s copy).
CREATE FUNCTION wharf_message_text_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_stems_pending (message_id) SELECT message_id FROM inserted;
    RETURN NULL;
END $$;
CREATE TRIGGER message_text_stems_ai AFTER INSERT ON message_text
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION wharf_message_text_inserted();
-- Text rewritten: its tokens are out of date; back in line to be indexed.
CREATE FUNCTION wharf_message_text_rewritten() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_stems WHERE message_id = NEW.message_id;
    INSERT INTO message_stems_pending (message_id) VALUES (NEW.message_id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER message_text_stems_au
AFTER UPDATE OF subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body ON message_text
FOR EACH ROW EXECUTE FUNCTION wharf_message_text_rewritten();
