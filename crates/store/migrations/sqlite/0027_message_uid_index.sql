-- SEARCH and FUZZY join their index's matches (message ids) to the mailbox's UIDs
-- (`sql/search.rs`). Through `mailbox_messages_message (message_id)` each match cost an index
-- probe and then a read of the table row for `mailbox_id` and `uid`; this index holds both, so
-- the join reads the index alone. Measured on a copy of a 100,000-message store (the SQL alone):
-- a word in 1 % of the messages 2.54 against 0.96 ms, a word in 98 % 100.5 against 89.3 ms.
-- It replaces the old index, which is its prefix (every lookup by message id still uses it).
CREATE INDEX mailbox_messages_message_uid ON mailbox_messages (message_id, mailbox_id, uid);
DROP INDEX mailbox_messages_message;
