-- The blob lifecycle decided in the database (see src/sql/blob_life.rs): a row now outlives its
-- last reference until the sweep removes the file, writers pin a hash before relying on its file,
-- and a collector marks the row while it removes the file.
ALTER TABLE blobs ADD COLUMN released_at BIGINT;                 -- unix s; NULL while referenced
ALTER TABLE blobs ADD COLUMN pins BIGINT NOT NULL DEFAULT 0;     -- writers not yet committed
ALTER TABLE blobs ADD COLUMN pinned_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN deleting_since BIGINT;              -- unix s; set during removal
CREATE INDEX blobs_unreferenced ON blobs (released_at) WHERE refcount <= 0;
CREATE INDEX blobs_deleting ON blobs (deleting_since) WHERE deleting_since IS NOT NULL;
