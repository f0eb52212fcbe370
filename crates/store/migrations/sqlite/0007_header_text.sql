-- SEARCH TEXT covers the whole header (RFC 9051 §6.4.4): every field as `Name: value`, folded.
-- NULL for messages stored before this migration until the background backfill fills it in
-- (`Store::backfill_header_text`).
ALTER TABLE message_text ADD COLUMN headers TEXT;
DROP TRIGGER message_text_ai;
DROP TRIGGER message_text_ad;
DROP TABLE message_fts;
CREATE VIRTUAL TABLE message_fts USING fts5(
    subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body,
    content = 'message_text', content_rowid = 'message_id'
);
CREATE TRIGGER message_text_ai AFTER INSERT ON message_text BEGIN
    INSERT INTO message_fts (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES (new.message_id, new.subject, new.from_addr, new.to_addr, new.cc_addr, new.bcc_addr, new.headers, new.body);
END;
CREATE TRIGGER message_text_ad AFTER DELETE ON message_text BEGIN
    INSERT INTO message_fts (message_fts, rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES ('delete', old.message_id, old.subject, old.from_addr, old.to_addr, old.cc_addr, old.bcc_addr, old.headers, old.body);
END;
CREATE TRIGGER message_text_au AFTER UPDATE ON message_text BEGIN
    INSERT INTO message_fts (message_fts, rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES ('delete', old.message_id, old.subject, old.from_addr, old.to_addr, old.cc_addr, old.bcc_addr, old.headers, old.body);
    INSERT INTO message_fts (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body)
    VALUES (new.message_id, new.subject, new.from_addr, new.to_addr, new.cc_addr, new.bcc_addr, new.headers, new.body);
END;
INSERT INTO message_fts (message_fts) VALUES ('rebuild');
CREATE INDEX message_text_no_headers ON message_text (message_id) WHERE headers IS NULL;
