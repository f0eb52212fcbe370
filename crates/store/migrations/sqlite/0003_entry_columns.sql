-- The IMAP view carries what an index entry needs (size, internal date), so SELECT, FETCH FLAGS,
-- CONDSTORE syncs and STATUS read mailbox_messages alone: a messages row holds the summary and
-- fills a page or more, one page read per message when they had to be joined.
ALTER TABLE mailbox_messages ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailbox_messages ADD COLUMN internal_date INTEGER NOT NULL DEFAULT 0;
UPDATE mailbox_messages SET
    size = (SELECT m.size FROM messages m WHERE m.id = mailbox_messages.message_id),
    internal_date = (SELECT m.internal_date FROM messages m WHERE m.id = mailbox_messages.message_id);
