-- The IMAP view carries what an index entry needs (size, internal date), so SELECT, FETCH FLAGS,
-- CONDSTORE syncs and STATUS read mailbox_messages alone (see the SQLite migration).
ALTER TABLE mailbox_messages ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailbox_messages ADD COLUMN internal_date BIGINT NOT NULL DEFAULT 0;
UPDATE mailbox_messages mm SET size = m.size, internal_date = m.internal_date
    FROM messages m WHERE m.id = mm.message_id;
