-- IMAP METADATA (RFC 5464): entries of a mailbox, or of the server when mailbox_id is NULL, per
-- account (no mailbox is shared, so /shared entries are per account too). Entry names are
-- stored lower-cased: RFC 5464 compares them case-insensitively. A mailbox's entries go with
-- its row (ON DELETE CASCADE), so a mailbox re-created under the same name starts with none;
-- RENAME keeps the row and so the entries.
CREATE TABLE imap_metadata (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mailbox_id BIGINT REFERENCES mailboxes(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      BYTEA NOT NULL
);
CREATE UNIQUE INDEX imap_metadata_key ON imap_metadata(account_id, COALESCE(mailbox_id, 0), name);
CREATE INDEX imap_metadata_mailbox ON imap_metadata(mailbox_id);
