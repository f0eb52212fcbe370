-- IMAP URLAUTH (RFC 4467): the mailbox access key URLAUTH tokens of a mailbox are made with (an
-- HMAC-SHA256 key, 32 random octets as 64 hex digits). Made on the first GENURLAUTH, replaced by
-- RESETKEY (which invalidates every URL made before), gone with the mailbox.
CREATE TABLE urlauth_keys (
    mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    access_key TEXT NOT NULL
);
