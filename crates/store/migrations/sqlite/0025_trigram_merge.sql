-- The trigram index (0016) in fewer segments. Each indexing transaction writes a segment, and
-- FTS5's own merges, run as it indexes, wait until a level holds four; a query then reads each of
-- its trigrams once per segment. The writer now merges in its idle time with FTS5's `merge`
-- command (`Shared::merge_index_step`), which with `usermerge 2` merges any level holding two or
-- more segments, so a caught-up index keeps about one segment per level.
INSERT INTO message_fts_tri (message_fts_tri, rank) VALUES ('usermerge', 2);
