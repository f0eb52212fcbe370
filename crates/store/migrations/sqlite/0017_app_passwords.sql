-- App passwords: per-device secrets an account's user creates on the web self-service pages and
-- gives a mail client in place of the account password (IMAP, POP3, SMTP AUTH). Only a SHA-256
-- of the random secret is kept; each one has a label, is revocable, and records its last use.
CREATE TABLE app_passwords (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX app_passwords_account ON app_passwords(account_id);
