-- The blob lifecycle decided in the database (see src/sql/blob_life.rs): a row now outlives its
-- last reference until the sweep removes the file, writers pin a hash before relying on its file,
-- and a collector marks the row while it removes the file.
ALTER TABLE blobs ADD COLUMN released_at INTEGER;                 -- unix s; NULL while referenced
ALTER TABLE blobs ADD COLUMN pins INTEGER NOT NULL DEFAULT 0;     -- writers not yet committed
ALTER TABLE blobs ADD COLUMN pinned_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN deleting_since INTEGER;              -- unix s; set during removal
CREATE INDEX blobs_unreferenced ON blobs (released_at) WHERE refcount <= 0;
CREATE INDEX blobs_deleting ON blobs (deleting_since) WHERE deleting_since IS NOT NULL;
