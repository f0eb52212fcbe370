-- A message whose last copy was expunged keeps its body for [store] blob_grace_secs; this row
-- keeps what is needed to read it meanwhile, so a session that has not yet heard of the expunge
-- still gets what it asks for (FETCH OK instead of NO [EXPUNGEISSUED]). Pruned by the sweep.
CREATE TABLE released_messages (
    message_id  INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    blob_hash   TEXT NOT NULL,
    released_at INTEGER NOT NULL
);
CREATE INDEX released_messages_at ON released_messages (released_at);
