-- The spam filter's state (crates/spam), shared by every node.
-- Token counts of the statistical classifier: the global model is account 0, a user's model is
-- that account's id (no foreign key because of 0; delete_account removes a user's rows).
CREATE TABLE spam_tokens (
    account_id INTEGER NOT NULL,
    token      INTEGER NOT NULL,
    ham        INTEGER NOT NULL DEFAULT 0,
    spam       INTEGER NOT NULL DEFAULT 0,
    -- Last trained: tokens seen once and not since are pruned after a while.
    last_seen  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, token)
);
-- Messages trained per model.
CREATE TABLE spam_totals (
    account_id INTEGER PRIMARY KEY,
    ham        INTEGER NOT NULL DEFAULT 0,
    spam       INTEGER NOT NULL DEFAULT 0
);
-- What each message of an account was last trained as (1 spam, 0 ham), so that moving it back
-- and forth re-trains instead of counting twice.
CREATE TABLE spam_trained (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL,
    verdict    INTEGER NOT NULL,
    PRIMARY KEY (account_id, message_id)
);
-- Training asked for by a user's move into or out of Junk (or $Junk/$NotJunk), queued in the
-- transaction of the move and done by a background task.
CREATE TABLE spam_training (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL,
    verdict    INTEGER NOT NULL,
    queued_at  INTEGER NOT NULL
);
-- Greylisting triplets (client network, sender, recipient): first and last attempt, and until
-- when the triplet passes without delay.
CREATE TABLE greylist (
    triplet      TEXT PRIMARY KEY,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    passed_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX greylist_last_seen ON greylist (last_seen);
-- Allow and block lists: scope is a domain name (all its users) or an account address; entry
-- is an address or '@domain'; kind is 'allow' or 'block'.
CREATE TABLE spam_lists (
    scope TEXT NOT NULL,
    entry TEXT NOT NULL,
    kind  TEXT NOT NULL,
    PRIMARY KEY (scope, entry)
);
-- Addresses a user has written to (their mail is trusted: a reply from a known correspondent).
CREATE TABLE spam_correspondents (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (account_id, address)
);
-- Past verdicts per authenticated sender domain (rows unused for long are pruned).
CREATE TABLE spam_reputation (
    domain     TEXT PRIMARY KEY,
    ham        INTEGER NOT NULL DEFAULT 0,
    spam       INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
