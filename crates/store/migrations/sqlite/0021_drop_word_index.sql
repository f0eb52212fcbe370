-- The word index (`message_fts`, FTS5 unicode61 over `message_text`) has answered no query since
-- migration 0016 moved SEARCH to the trigram index, yet its triggers tokenised every message's
-- text in the delivery transaction and tokenised it again (the external-content 'delete') when
-- the message was expunged, both under the single write lock. Measured with bench/run's
-- logged-in IMAP workload (docs/benchmarks.md). A word/stem index for FUZZY search (issue 22)
-- will be a table of its own, written off the delivery path as the trigram index is.
DROP TRIGGER IF EXISTS message_text_ai;
DROP TRIGGER IF EXISTS message_text_ad;
DROP TRIGGER IF EXISTS message_text_au;
DROP TABLE IF EXISTS message_fts;
