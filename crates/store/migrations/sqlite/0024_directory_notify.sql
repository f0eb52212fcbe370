-- Nothing to do: PostgreSQL's migration 0024 adds triggers that tell other nodes of directory
-- changes (sql/dir_cache.rs). The embedded store reads its directory in-process and caches
-- nothing, so it has nothing to be told. Kept so both dialects count the same migrations.
SELECT 1;
