-- Nothing to do: SQLite's migration 0027 replaces its message-id index with one that also holds
-- the mailbox and UID, for SEARCH's join. PostgreSQL plans that join itself (bitmap scans of its
-- own indexes); kept so both dialects count the same migrations.
SELECT 1;
