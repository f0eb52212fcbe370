-- SQLite gets a message id counter (its rowids could be reused); PostgreSQL's identity column
-- never reuses ids, so this migration has nothing to do here.
SELECT 1;
