-- Subscriptions are names, not mailboxes: a name stays subscribed after its mailbox is deleted
-- (RFC 9051 §6.3.7), a name may be subscribed before its mailbox exists, and LIST (SUBSCRIBED)
-- reports such names as \NonExistent (RFC 5258).
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;
ALTER TABLE mailboxes DROP COLUMN subscribed;
