-- Message ids are never given twice. SQLite's rowid takes max(id) + 1, so deleting the newest
-- message handed its id to the next one, and a session that had not yet heard of the expunge
-- could read the new message (of any account) under the old id. Ids now come from a counter
-- that only grows (PostgreSQL's identity column never reused them).
INSERT INTO counters (name, value) VALUES ('message_id', COALESCE((SELECT MAX(id) FROM messages), 0));
