-- Tombstones (QRESYNC's record of expunged UIDs) are kept for [store] expunge_history_days and
-- then pruned; `vanished_floor` is the highest mod-sequence pruned in the mailbox, below which
-- the expunges since a mod-sequence are no longer known exactly (IMAP then resyncs in full).
ALTER TABLE expunged ADD COLUMN expunged_at BIGINT NOT NULL DEFAULT 0;
UPDATE expunged SET expunged_at = EXTRACT(EPOCH FROM now())::BIGINT;
CREATE INDEX expunged_age ON expunged (expunged_at);
ALTER TABLE mailboxes ADD COLUMN vanished_floor BIGINT NOT NULL DEFAULT 0;
