-- Sieve scripts (RFC 5228), managed over ManageSieve (RFC 5804) or the CLI; at most one per
-- account is active and runs at local delivery.
CREATE TABLE sieve_scripts (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    content    TEXT NOT NULL,
    active     BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
-- What Sieve remembers between deliveries: ids seen by the duplicate test (RFC 7352) and the
-- senders a vacation reply went to (RFC 5230 §4.2), each until it expires.
CREATE TABLE sieve_tracking (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX sieve_tracking_expiry ON sieve_tracking (expires_at);
