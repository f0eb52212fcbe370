-- What the daily DMARC aggregate and TLS-RPT reports are made from: per kind, UTC day and
-- reported domain, one counter per distinct item (a JSON document; keyed by its hash, which
-- keeps the key short whatever the item holds).
CREATE TABLE report_tallies (
    kind      TEXT    NOT NULL,
    day       INTEGER NOT NULL,
    domain    TEXT    NOT NULL,
    item_hash TEXT    NOT NULL,
    item      TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (kind, day, domain, item_hash)
);
-- One row per report made: the claim that keeps several nodes from sending the same one.
CREATE TABLE report_claims (
    kind       TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    domain     TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (kind, day, domain)
);
