-- Wharf schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql (same tables, same columns).
-- Booleans are 0/1 integers and every integer is 64-bit so both backends decode alike.

CREATE TABLE domains (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE            -- lower-case
);

CREATE TABLE accounts (
    id               INTEGER PRIMARY KEY,
    domain_id        INTEGER NOT NULL REFERENCES domains(id),
    local_part       TEXT NOT NULL,      -- as given
    local_key        TEXT NOT NULL,      -- lower-case, for lookups
    secret_hash      TEXT NOT NULL,
    scram_sha256     TEXT NOT NULL DEFAULT '',
    quota_bytes      INTEGER NOT NULL DEFAULT 0,
    used_bytes       INTEGER NOT NULL DEFAULT 0,
    disabled         INTEGER NOT NULL DEFAULT 0,
    pop3_expire_days INTEGER,
    UNIQUE (domain_id, local_key)
);

CREATE TABLE aliases (
    address TEXT NOT NULL,               -- lower-case `local@domain` or `@domain`
    target  TEXT NOT NULL,
    PRIMARY KEY (address, target)
);

-- Monotonic counters; `uid_validity` hands out a fresh UIDVALIDITY to every created mailbox.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('uid_validity', CAST(strftime('%s', 'now') AS INTEGER));

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    special_use    TEXT,
    subscribed     INTEGER NOT NULL DEFAULT 0,
    uid_validity   INTEGER NOT NULL,
    uid_next       INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

CREATE TABLE blobs (
    hash     TEXT PRIMARY KEY,           -- hex SHA-256
    size     INTEGER NOT NULL,
    refcount INTEGER NOT NULL            -- number of `messages` rows naming the blob
);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    blob_hash     TEXT NOT NULL REFERENCES blobs(hash),
    size          INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    sent_date     INTEGER,
    summary       BLOB NOT NULL,
    preview       TEXT NOT NULL
);
CREATE INDEX messages_account ON messages(account_id);

CREATE TABLE mailbox_messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    flags      INTEGER NOT NULL,
    keywords   TEXT NOT NULL DEFAULT '',  -- space separated
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);
CREATE INDEX mailbox_messages_message ON mailbox_messages(message_id);

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

CREATE TABLE maildrop_locks (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Lower-cased search text of each message (what substring confirmation reads) ...
CREATE TABLE message_text (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    from_addr  TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    cc_addr    TEXT NOT NULL,
    bcc_addr   TEXT NOT NULL,
    body       TEXT NOT NULL
);

-- ... and its FTS5 index (external content), kept in step by triggers.
CREATE VIRTUAL TABLE message_fts USING fts5(
    subject, from_addr, to_addr, cc_addr, bcc_addr, body,
    content = 'message_text', content_rowid = 'message_id'
);
CREATE TRIGGER message_text_ai AFTER INSERT ON message_text BEGIN
    INSERT INTO message_fts (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, body)
    VALUES (new.message_id, new.subject, new.from_addr, new.to_addr, new.cc_addr, new.bcc_addr, new.body);
END;
CREATE TRIGGER message_text_ad AFTER DELETE ON message_text BEGIN
    INSERT INTO message_fts (message_fts, rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, body)
    VALUES ('delete', old.message_id, old.subject, old.from_addr, old.to_addr, old.cc_addr, old.bcc_addr, old.body);
END;
