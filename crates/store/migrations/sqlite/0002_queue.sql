-- The outbound queue (DESIGN.md §2), SQLite flavour. Keep in step with ../postgres/0002_queue.sql.
-- Each row holds one reference on its blob (`blobs.refcount` counts `messages` rows and `queue`
-- rows), so a body shared with local mailbox copies lives until the last of them goes.

CREATE TABLE queue (
    id             INTEGER PRIMARY KEY,
    sender         TEXT NOT NULL,             -- '' for the null reverse path
    recipients     TEXT NOT NULL,             -- JSON array of QueuedRecipient (address, state, status, …)
    blob_hash      TEXT NOT NULL REFERENCES blobs(hash),
    size           INTEGER NOT NULL,
    envid          TEXT,
    ret            TEXT,                      -- 'FULL' | 'HDRS' | NULL
    require_tls    INTEGER NOT NULL DEFAULT 0,
    created        INTEGER NOT NULL,          -- Unix seconds, like every time below
    next_attempt   INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    expires        INTEGER NOT NULL,
    delay_notified INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until    INTEGER
);
CREATE INDEX queue_next_attempt ON queue(next_attempt);
