-- State every node of a store must share instead of keeping in its data directory (issue 19):
-- DKIM signing keys, the ACME account and certificate, pending ACME challenges, and leases that
-- let one node at a time do a job (certificate renewal). `scope` says what a row is ('dkim',
-- 'acme', 'acme-challenge', 'lease'), `name` which one. Secret values are sealed by the caller
-- (AEAD with the node-state key from the configuration) before they reach this table, so a
-- database dump alone does not reveal them. `expires_at` (unix seconds) lets a reader ignore and
-- the owner prune rows that are over: challenges, leases.
CREATE TABLE node_state (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      BYTEA NOT NULL,
    holder     TEXT,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (scope, name)
);

-- Authentication failure counts each node reports for the others (see wharf-directory's
-- throttle): one row per node, kind ('ip' or 'account') and key, with the node's count in its
-- current window. A node adds the other nodes' counts of a key to its own, so guessing spread
-- over several nodes behind a balancer is throttled as if it hit one.
CREATE TABLE auth_failures (
    node         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (node, kind, key)
);
CREATE INDEX auth_failures_recent ON auth_failures(updated_at);
