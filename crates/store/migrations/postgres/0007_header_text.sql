-- SEARCH TEXT covers the whole header (RFC 9051 §6.4.4): every field as `Name: value`, folded.
-- NULL for messages stored before this migration until the background backfill fills it in
-- (`Store::backfill_header_text`), which also rebuilds their tsvector.
ALTER TABLE message_text ADD COLUMN headers TEXT;
CREATE INDEX message_text_no_headers ON message_text (message_id) WHERE headers IS NULL;
