-- The nodes serving this store: each `wharf serve` registers under a generated id (its lease
-- owner name), renews `last_seen` while it runs, and removes itself on a clean stop.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    version    TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
