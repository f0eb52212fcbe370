-- Who may use the admin REST API (`/api/v1`): an account's role ('user' or 'admin'), and API
-- tokens with scopes, of which only a SHA-256 of the secret is kept.
ALTER TABLE accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
