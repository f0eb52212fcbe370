-- The nodes serving this store: each `wharf serve` registers under a generated id (its lease
-- owner name), renews `last_seen` while it runs, and removes itself on a clean stop.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    version    TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
