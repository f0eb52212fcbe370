-- When each message was saved into its mailbox (RFC 8514 SAVEDATE): set by APPEND, delivery,
-- COPY and MOVE. NULL for rows older than this migration, read as their INTERNALDATE.
ALTER TABLE mailbox_messages ADD COLUMN saved_at BIGINT;
