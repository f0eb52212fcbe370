-- Text of document attachments (PDF, DOCX, XLSX, PPTX, ODT/ODS/ODP) for SEARCH TEXT and BODY
-- (issue 22). Extracted off the delivery path by a background task (`Store::extract_attachment_text`,
-- run by `wharf serve`), which appends the folded text to `body`; the pg_trgm index
-- (`message_text_trgm`, migration 0016) covers `body`, so its expression is unchanged.
--
-- `attachments_version`: 0 = not extracted yet (every row when this migration runs, and a row
-- whose text is rewritten, e.g. by the header backfill), 1 = done (text appended, or nothing to
-- extract). The partial index finds what is left to do.
ALTER TABLE message_text ADD COLUMN attachments_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX message_text_attachments_pending ON message_text (message_id) WHERE attachments_version < 1;
