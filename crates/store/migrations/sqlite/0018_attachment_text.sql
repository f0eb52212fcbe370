-- Text of document attachments (PDF, DOCX, XLSX, PPTX, ODT/ODS/ODP) for SEARCH TEXT and BODY
-- (issue 22). Extracted off the delivery path by a background task (`Store::extract_attachment_text`,
-- run by `wharf serve`), which appends the folded text to `body`: the update triggers of 0016 then
-- take the row out of the trigram index and set `tri_indexed = 0`, and the writer indexes it again
-- when idle (SEARCH reads unindexed rows meanwhile, so it is exact either way).
--
-- `attachments_version`: 0 = not extracted yet (every row when this migration runs, and a row
-- whose text is rewritten, e.g. by the header backfill), 1 = done (text appended, or nothing to
-- extract). The partial index finds what is left to do.
ALTER TABLE message_text ADD COLUMN attachments_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX message_text_attachments_pending ON message_text (message_id) WHERE attachments_version < 1;
