-- What the daily DMARC aggregate and TLS-RPT reports are made from (see the SQLite migration).
CREATE TABLE report_tallies (
    kind      TEXT    NOT NULL,
    day       BIGINT  NOT NULL,
    domain    TEXT    NOT NULL,
    item_hash TEXT    NOT NULL,
    item      TEXT    NOT NULL,
    count     BIGINT  NOT NULL,
    PRIMARY KEY (kind, day, domain, item_hash)
);
-- One row per report made: the claim that keeps several nodes from sending the same one.
CREATE TABLE report_claims (
    kind       TEXT    NOT NULL,
    day        BIGINT  NOT NULL,
    domain     TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    claimed_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, day, domain)
);
