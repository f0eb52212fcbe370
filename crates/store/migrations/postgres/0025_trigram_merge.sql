-- Nothing to do: SQLite's migration 0025 tunes the merging of its FTS5 trigram index.
-- PostgreSQL's pg_trgm index (0016) is kept by PostgreSQL. Kept so both dialects count the same
-- migrations.
SELECT 1;
