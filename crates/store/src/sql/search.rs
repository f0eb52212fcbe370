//! SEARCH text keys. The needle and the stored text are folded alike (`crate::text::fold`); a
//! needle of three or more characters is then answered through a trigram index, shorter ones by
//! reading the mailbox's text. Either way the answer is RFC 9051's substring match, exactly:
//! SQLite's trigram phrase query is the substring test itself (consecutive trigrams, positions
//! kept), and on PostgreSQL every candidate of the pg_trgm index is rechecked by PostgreSQL
//! (`LIKE`) and then confirmed column by column with `strpos`.

use super::writer::TextColumns;
use super::{Dialect, Shared, db, to_u32};
use crate::Result;
use crate::model::*;
use crate::text::{FOLD_VERSION, fold, fts5_trigram_query, indexable, like_contains};

fn columns(field: TextField) -> &'static [&'static str] {
    match field {
        TextField::Text => &[
            "subject",
            "from_addr",
            "to_addr",
            "cc_addr",
            "bcc_addr",
            "headers",
            "body",
        ],
        TextField::Body => &["body"],
        TextField::Subject => &["subject"],
        TextField::From => &["from_addr"],
        TextField::To => &["to_addr"],
        TextField::Cc => &["cc_addr"],
        TextField::Bcc => &["bcc_addr"],
    }
}

/// SQLite: the trigram index is used when its matches across the store are at most this many times
/// the mailbox's messages (see `search_text_sqlite`).
const INDEX_FACTOR: i64 = 4;

/// SQLite's FTS5 indexes of message text: the trigram index (substrings) and the stem index
/// (FUZZY words).
#[derive(Clone, Copy)]
enum FtsIndex {
    Trigram,
    Stem,
}

impl FtsIndex {
    fn table(self) -> &'static str {
        match self {
            FtsIndex::Trigram => "message_fts_tri",
            FtsIndex::Stem => "message_fts_stem",
        }
    }

    /// The `message_text` column that is 0 while a row is not in the index.
    fn pending_flag(self) -> &'static str {
        match self {
            FtsIndex::Trigram => "tri_indexed",
            FtsIndex::Stem => "stem_indexed",
        }
    }
}

/// SQLite: an index's matches for `fts` across the store, counted up to `cap`.
async fn count_fts(tx: &mut db::Tx, index: FtsIndex, fts: &str, cap: i64) -> Result<i64> {
    let table = index.table();
    db::query_scalar(format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH $1 LIMIT $2)"
    ))
    .bind(fts.to_string())
    .bind(cap)
    .fetch_one(tx)
    .await
}

/// SQLite: the store's rows not in `index` yet, counted up to `cap`.
async fn count_unindexed(tx: &mut db::Tx, index: FtsIndex, cap: i64) -> Result<i64> {
    let flag = index.pending_flag();
    db::query_scalar(format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM message_text WHERE {flag} = 0 LIMIT $1)"
    ))
    .bind(cap)
    .fetch_one(tx)
    .await
}

/// The messages in `mailbox`, counted up to `cap`.
async fn count_mailbox(tx: &mut db::Tx, mailbox: MailboxId, cap: i64) -> Result<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM mailbox_messages WHERE mailbox_id = $1 LIMIT $2)",
    )
    .bind(mailbox)
    .bind(cap)
    .fetch_one(tx)
    .await
}

/// Text (bytes) one stem-indexing transaction stems, beyond its first message (`index_stems`).
const STEM_TEXT_BUDGET: usize = 256 * 1024;

/// FUZZY word search: messages read and scored per step.
const WORDS_BATCH: i64 = 128;

/// The expression PostgreSQL's trigram index (`message_text_trgm`, migration 0016) is built on,
/// for table alias `t`. It must stay the same expression, or the planner will not use the index.
const PG_TRGM_EXPR: &str = "(t.subject || E'\\n' || t.from_addr || E'\\n' || t.to_addr || E'\\n' || t.cc_addr || E'\\n' \
     || t.bcc_addr || E'\\n' || coalesce(t.headers, '') || E'\\n' || t.body)";

/// PostgreSQL: tokens as the text of a `bigint[]` (bound as text, cast in the statement).
fn pg_bigint_array(tokens: &[u64]) -> String {
    let items: Vec<String> = tokens.iter().map(u64::to_string).collect();
    format!("{{{}}}", items.join(","))
}

/// A FUZZY search's scoring: the needle, the searched columns' weights, and the hits so far.
struct Scorer {
    /// Moved to the blocking thread while a batch is scored.
    query: Option<crate::words::WordQuery>,
    /// One per searched column, in the order the rows hold them after the UID.
    weights: Vec<f64>,
    out: Vec<(Uid, u8)>,
}

impl Scorer {
    /// Scores rows of (uid, the searched columns' text) on a blocking thread.
    async fn score(&mut self, rows: &[db::Row]) -> Result<()> {
        let mut batch: Vec<(Uid, Vec<String>)> = Vec::with_capacity(rows.len());
        for row in rows {
            let uid = to_u32(row.try_get(0usize)?, "uid")?;
            let mut texts = Vec::with_capacity(self.weights.len());
            for i in 0..self.weights.len() {
                texts.push(row.try_get::<String, _>(i + 1)?);
            }
            batch.push((uid, texts));
        }
        let Some(mut query) = self.query.take() else {
            return Err(crate::StoreError::Backend(
                "word search lost its query".into(),
            ));
        };
        let weights = self.weights.clone();
        let (query, scored) = tokio::task::spawn_blocking(move || {
            let mut scored = Vec::new();
            for (uid, texts) in &batch {
                let fields: Vec<(&str, f64)> = texts
                    .iter()
                    .map(String::as_str)
                    .zip(weights.iter().copied())
                    .collect();
                if let Some(score) = query.score(&fields) {
                    scored.push((*uid, score));
                }
            }
            (query, scored)
        })
        .await
        .map_err(|e| crate::StoreError::Backend(format!("word search task: {e}")))?;
        self.query = Some(query);
        self.out.extend(scored);
        Ok(())
    }
}

impl Shared {
    pub async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        let needle = fold(needle);
        let cols = columns(field);
        let mut out = match self.dialect {
            Dialect::Sqlite => self.search_text_sqlite(mailbox, cols, &needle).await?,
            Dialect::Postgres => self.search_text_postgres(mailbox, cols, &needle).await?,
        };
        // Ascending and unique is the contract. The index's answer comes in message id order,
        // sorted here rather than by SQLite's sorter (a tenth of a millisecond at 1,000 hits);
        // one row per UID (a message is in a mailbox once), kept explicit.
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// FUZZY word search (RFC 6203, `crate::words`): every message of the mailbox whose
    /// fields hold each word of the needle, stemmed, with its relevancy; UIDs ascending. The
    /// words are matched in Rust over the stored folded text, `WORDS_BATCH` messages at a time,
    /// scored on a blocking thread, so both backends answer alike and one search holds one batch
    /// of text. Which messages are read: those the stem index (migration 0026) names for every
    /// needle word, plus those not indexed yet (`stem_candidates`); the whole mailbox when the
    /// index would cost more than reading it (SQLite, a small mailbox in a large store, or a
    /// large backlog of rows not indexed yet).
    pub async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>> {
        let Some(query) = crate::words::WordQuery::new(needle) else {
            return Ok(Vec::new());
        };
        let cols = columns(field);
        // Column names come from the fixed list above; NULL headers (not backfilled) are empty.
        let select: Vec<String> = cols
            .iter()
            .map(|c| format!("coalesce(t.{c}, '')"))
            .collect();
        let select = select.join(", ");
        let groups = query.token_groups();
        let mut scorer = Scorer {
            query: Some(query),
            weights: cols
                .iter()
                .map(|c| crate::words::column_weight(c))
                .collect(),
            out: Vec::new(),
        };
        match self.stem_candidates(mailbox, &groups).await? {
            Some(uids) => {
                for chunk in uids.chunks(WORDS_BATCH as usize) {
                    let list: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let mut q = db::query(format!(
                        "SELECT mm.uid, {select} FROM mailbox_messages mm \
                         JOIN message_text t ON t.message_id = mm.message_id \
                         WHERE mm.mailbox_id = $1 AND mm.uid IN ({})",
                        list.join(", ")
                    ))
                    .bind(mailbox);
                    for uid in chunk {
                        q = q.bind(*uid);
                    }
                    let rows = q.heavy().fetch_all(&self.reader).await?;
                    scorer.score(&rows).await?;
                }
            }
            None => {
                let sql = format!(
                    "SELECT mm.uid, {select} FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                     WHERE mm.mailbox_id = $1 AND mm.uid > $2 ORDER BY mm.uid LIMIT $3"
                );
                let mut after: i64 = 0;
                loop {
                    let rows = db::query(sql.clone())
                        .bind(mailbox)
                        .bind(after)
                        .bind(WORDS_BATCH)
                        .heavy()
                        .fetch_all(&self.reader)
                        .await?;
                    let Some(last) = rows.last() else {
                        break;
                    };
                    after = last.try_get(0usize)?;
                    let full = rows.len() as i64 == WORDS_BATCH;
                    scorer.score(&rows).await?;
                    if !full {
                        break;
                    }
                }
            }
        }
        let mut out = scorer.out;
        out.sort_unstable_by_key(|&(uid, _)| uid);
        Ok(out)
    }

    /// The UIDs (ascending) of the messages in `mailbox` a FUZZY needle can match: those the stem
    /// index holds a token of every group for (`groups`: per needle word, its stems' tokens), and
    /// those not in the index yet, in one statement (one snapshot; a row is in exactly one part).
    /// `None`: read the whole mailbox instead.
    async fn stem_candidates(
        &self,
        mailbox: MailboxId,
        groups: &[Vec<u64>],
    ) -> Result<Option<Vec<Uid>>> {
        if groups.is_empty() || groups.iter().any(Vec::is_empty) {
            return Ok(None);
        }
        let q = match self.dialect {
            Dialect::Sqlite => {
                let fts: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let any: Vec<String> = g
                            .iter()
                            .map(|t| format!("\"{}\"", crate::words::token_text(*t)))
                            .collect();
                        format!("({})", any.join(" OR "))
                    })
                    .collect();
                let fts = fts.join(" AND ");
                if !self.index_pays(mailbox, FtsIndex::Stem, &fts).await? {
                    return Ok(None);
                }
                db::query(
                    "SELECT mm.uid FROM message_fts_stem \
                     CROSS JOIN mailbox_messages mm ON mm.message_id = message_fts_stem.rowid \
                     WHERE message_fts_stem MATCH $2 AND mm.mailbox_id = $1 \
                     UNION ALL \
                     SELECT mm.uid FROM message_text t \
                     CROSS JOIN mailbox_messages mm ON mm.message_id = t.message_id \
                     WHERE t.stem_indexed = 0 AND mm.mailbox_id = $1",
                )
                .bind(mailbox)
                .bind(fts)
            }
            Dialect::Postgres => {
                // One array per needle word (at most `words::MAX_NEEDLE_WORDS`), each answered
                // from the GIN index on `stems`; PostgreSQL plans index or mailbox by its
                // statistics.
                let overlaps: Vec<String> = (0..groups.len())
                    .map(|i| format!("t.stems && ${}::bigint[]", i + 2))
                    .collect();
                let mut q = db::query(format!(
                    "SELECT mm.uid FROM mailbox_messages mm JOIN message_stems t ON t.message_id = mm.message_id \
                     WHERE mm.mailbox_id = $1 AND {} \
                     UNION ALL \
                     SELECT mm.uid FROM mailbox_messages mm JOIN message_stems_pending p ON p.message_id = mm.message_id \
                     WHERE mm.mailbox_id = $1",
                    overlaps.join(" AND ")
                ))
                .bind(mailbox);
                for g in groups {
                    q = q.bind(pg_bigint_array(g));
                }
                q
            }
        };
        let mut uids: Vec<Uid> = q
            .heavy()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| to_u32(row.try_get(0usize)?, "uid"))
            .collect::<Result<_>>()?;
        uids.sort_unstable();
        uids.dedup();
        Ok(Some(uids))
    }

    /// SQLite has no statistics for FTS tables, so its planner would start from the mailbox and
    /// read every message's text before asking the index. So choose here: the index, when its
    /// matches for `fts` across the whole store (all accounts) are at most `INDEX_FACTOR` times
    /// the mailbox's messages (a match costs a few index entries and a key lookup, a scanned
    /// message its whole text); otherwise (a small mailbox in a large store, and a needle most
    /// messages contain) the mailbox's texts. The count is skipped when the store cannot hold
    /// that many messages (ids only grow, so the newest id bounds their number): a large mailbox
    /// pays for the index once. The mailbox is counted only as far as that needs (a full COUNT of
    /// a 100,000-message mailbox was a third of a rare word's search there). The query also reads
    /// every row of the store not indexed yet (through their partial index, not the mailbox's), so
    /// a backlog larger than that bound (an upgraded store) is read through the mailbox instead.
    async fn index_pays(&self, mailbox: MailboxId, index: FtsIndex, fts: &str) -> Result<bool> {
        let mut tx = self.begin_read().await?;
        let newest: i64 = db::query_scalar("SELECT coalesce(max(message_id), 0) FROM message_text")
            .fetch_one(&mut tx)
            .await?;
        let enough = newest.saturating_add(INDEX_FACTOR - 1) / INDEX_FACTOR;
        let in_mailbox = count_mailbox(&mut tx, mailbox, enough).await?;
        let limit = in_mailbox.saturating_mul(INDEX_FACTOR);
        let pays = in_mailbox >= enough
            || (count_unindexed(&mut tx, index, limit + 1).await? <= limit
                && count_fts(&mut tx, index, fts, limit + 1).await? <= limit);
        tx.commit().await?;
        Ok(pays)
    }

    /// SQLite: the trigram index's matches joined with the mailbox by message id, or, for a short
    /// needle or one most of the store's messages contain, the mailbox's texts tested with
    /// `instr` (the stored text is folded, so `instr` is the exact substring test, run by SQLite
    /// on its own pages without copying a text out).
    async fn search_text_sqlite(
        &self,
        mailbox: MailboxId,
        cols: &[&str],
        needle: &str,
    ) -> Result<Vec<Uid>> {
        let use_index = if indexable(needle) {
            let fts =
                fts5_trigram_query(needle, if cols.len() == 1 { Some(cols[0]) } else { None });
            self.index_pays(mailbox, FtsIndex::Trigram, &fts)
                .await?
                .then_some(fts)
        } else {
            None
        };
        // Column names come from the fixed list above; only the needle is bound.
        let contains: Vec<String> = cols
            .iter()
            .map(|c| format!("instr(t.{c}, $2) > 0"))
            .collect();
        let contains = contains.join(" OR ");
        let q = match use_index {
            // The phrase of consecutive trigrams is the substring test: indexed rows are answered
            // without reading their text. Rows not indexed yet (`index_pending` has not reached
            // them) are read, in the same statement, so the same snapshot: a row is in exactly
            // one of the two parts (a row is in the index exactly when `tri_indexed` is 1, both
            // changed in one transaction), hence `UNION ALL`, no duplicate removal.
            Some(fts) => db::query(format!(
                "SELECT mm.uid FROM message_fts_tri \
                 CROSS JOIN mailbox_messages mm ON mm.message_id = message_fts_tri.rowid \
                 WHERE message_fts_tri MATCH $3 AND mm.mailbox_id = $1 \
                 UNION ALL \
                 SELECT mm.uid FROM message_text t \
                 CROSS JOIN mailbox_messages mm ON mm.message_id = t.message_id \
                 WHERE t.tri_indexed = 0 AND mm.mailbox_id = $1 AND ({contains})"
            ))
            .bind(mailbox)
            .bind(needle.to_string())
            .bind(fts),
            None => db::query(format!(
                "SELECT mm.uid FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND ({contains}) ORDER BY mm.uid"
            ))
            .bind(mailbox)
            .bind(needle.to_string()),
        };
        q.heavy()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| to_u32(row.try_get(0usize)?, "uid"))
            .collect::<Result<_>>()
    }

    /// PostgreSQL: `strpos` on each column decides; for a needle of three or more characters a
    /// `LIKE` over all the text comes first, which the planner answers from the pg_trgm index
    /// (when migration 0016 could create it; without it, the same query reads the mailbox).
    async fn search_text_postgres(
        &self,
        mailbox: MailboxId,
        cols: &[&str],
        needle: &str,
    ) -> Result<Vec<Uid>> {
        // Column names come from the fixed list above; only the needle is bound. A NULL column
        // (header text not yet backfilled) makes its test NULL, which is not a match.
        let contains: Vec<String> = cols
            .iter()
            .map(|c| format!("strpos(t.{c}, $2) > 0"))
            .collect();
        let contains = contains.join(" OR ");
        let q = if indexable(needle) {
            db::query(format!(
                "SELECT mm.uid FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND {PG_TRGM_EXPR} LIKE $3 AND ({contains}) ORDER BY mm.uid"
            ))
            .bind(mailbox)
            .bind(needle.to_string())
            .bind(like_contains(needle))
        } else {
            db::query(format!(
                "SELECT mm.uid FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND ({contains}) ORDER BY mm.uid"
            ))
            .bind(mailbox)
            .bind(needle.to_string())
        };
        q.fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| to_u32(row.try_get(0usize)?, "uid"))
            .collect::<Result<_>>()
    }

    /// SQLite: adds up to `batch` messages not yet in the trigram index (`message_fts_tri`) to
    /// it, oldest first; returns how many, 0 once every message is indexed. The writer calls it
    /// whenever no delivery is waiting (see `writer::run`), so indexing never delays mail. One
    /// transaction: the rows' `tri_indexed` flags change with the index, so SEARCH sees each
    /// row either indexed or not. Not fsynced on its own: a power cut can lose the last batches,
    /// flags and index together, and they are indexed again. PostgreSQL indexes as it inserts.
    pub(crate) async fn index_pending(&self, batch: usize) -> Result<usize> {
        if self.dialect != Dialect::Sqlite {
            return Ok(0);
        }
        // Looked up on a reader first: an idle writer asks every few seconds, and should not
        // take the write lock to find nothing.
        let any: i64 =
            db::query_scalar("SELECT EXISTS (SELECT 1 FROM message_text WHERE tri_indexed = 0)")
                .fetch_one(&self.reader)
                .await?;
        if any == 0 {
            return Ok(0);
        }
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut tx = self.begin_write_relaxed().await?;
        db::query(
            "INSERT INTO message_fts_tri (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body) \
             SELECT message_id, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body \
             FROM message_text WHERE tri_indexed = 0 ORDER BY message_id LIMIT $1",
        )
        .bind(batch)
        .execute(&mut tx)
        .await?;
        let done = db::query(
            "UPDATE message_text SET tri_indexed = 1 WHERE message_id IN \
             (SELECT message_id FROM message_text WHERE tri_indexed = 0 ORDER BY message_id LIMIT $1)",
        )
        .bind(batch)
        .execute(&mut tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(usize::try_from(done).unwrap_or(usize::MAX))
    }

    /// Adds up to `batch` messages not yet in the stem index (migration 0026) to it, oldest
    /// first; returns how many, 0 once every message is indexed. The tokens
    /// (`words::StemIndexer`) are computed in the transaction that writes them, from the text it
    /// reads, so a text rewritten meanwhile (attachment text appended) cannot leave older tokens
    /// marked current. The store's writer calls it in its idle time, after `index_pending`, on
    /// both backends (PostgreSQL: rows locked `SKIP LOCKED`, so several nodes share the work).
    pub(crate) async fn index_stems(&self, batch: usize) -> Result<usize> {
        // Looked up on a reader first: an idle writer asks every few seconds, and should not
        // take the write lock to find nothing.
        let any: bool = db::query_scalar(self.dialect.pick(
            "SELECT EXISTS (SELECT 1 FROM message_text WHERE stem_indexed = 0)",
            "SELECT EXISTS (SELECT 1 FROM message_stems_pending)",
        ))
        .fetch_one(&self.reader)
        .await?;
        if !any {
            return Ok(0);
        }
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut tx = self.begin_write_relaxed().await?;
        let rows = db::query(self.dialect.pick(
            "SELECT message_id, subject, from_addr, to_addr, cc_addr, bcc_addr, coalesce(headers, ''), body \
             FROM message_text WHERE stem_indexed = 0 ORDER BY message_id LIMIT $1",
            // The text rows are locked too: a rewrite meanwhile waits for this transaction, and
            // its trigger then puts the row back in line.
            "SELECT t.message_id, t.subject, t.from_addr, t.to_addr, t.cc_addr, t.bcc_addr, coalesce(t.headers, ''), t.body \
             FROM message_stems_pending p JOIN message_text t ON t.message_id = p.message_id \
             ORDER BY p.message_id LIMIT $1 FOR UPDATE OF p, t SKIP LOCKED",
        ))
        .bind(batch)
        .heavy()
        .fetch_all(&mut tx)
        .await?;
        let mut indexer = crate::words::StemIndexer::new();
        let mut read = 0usize;
        let mut done = Vec::with_capacity(rows.len());
        for row in &rows {
            // A transaction stems at most about `STEM_TEXT_BUDGET` of text (and always one
            // message): on SQLite it holds the one writer connection meanwhile.
            if !done.is_empty() && read >= STEM_TEXT_BUDGET {
                break;
            }
            let id: i64 = row.try_get(0usize)?;
            let mut texts = Vec::with_capacity(7);
            for i in 1..8usize {
                texts.push(row.try_get::<String, _>(i)?);
            }
            read += texts.iter().map(String::len).sum::<usize>();
            let tokens = db::run_heavy(true, || indexer.tokens(texts.iter().map(String::as_str)));
            match self.dialect {
                Dialect::Sqlite => {
                    let doc: Vec<String> = tokens
                        .iter()
                        .map(|t| crate::words::token_text(*t))
                        .collect();
                    db::query("INSERT INTO message_fts_stem (rowid, stems) VALUES ($1, $2)")
                        .bind(id)
                        .bind(doc.join(" "))
                        .execute(&mut tx)
                        .await?;
                    db::query("UPDATE message_text SET stem_indexed = 1 WHERE message_id = $1")
                        .bind(id)
                        .execute(&mut tx)
                        .await?;
                }
                Dialect::Postgres => {
                    db::query(
                        "INSERT INTO message_stems (message_id, stems) VALUES ($1, $2::bigint[]) \
                         ON CONFLICT (message_id) DO UPDATE SET stems = EXCLUDED.stems",
                    )
                    .bind(id)
                    .bind(pg_bigint_array(&tokens))
                    .execute(&mut tx)
                    .await?;
                }
            }
            done.push(id);
        }
        if self.dialect == Dialect::Postgres && !done.is_empty() {
            let ids: Vec<u64> = done.iter().filter_map(|&i| u64::try_from(i).ok()).collect();
            db::query("DELETE FROM message_stems_pending WHERE message_id = ANY($1::bigint[])")
                .bind(pg_bigint_array(&ids))
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.len())
    }

    /// SQLite: one step of merging the trigram index's segments (FTS5's `merge` command, about
    /// `pages` leaf pages of work; the stem index's once the trigram index has none to merge);
    /// returns whether there was work, false once no level of either index holds two segments (`usermerge` 2, migration 0025). The writer runs it in its idle
    /// time once the index has caught up (`writer::index_while_idle`). Why: every indexing
    /// transaction adds a segment, FTS5's own merges wait for four on a level, and a query reads
    /// each of its trigrams once per segment (at 1,000 messages, 9 segments against 2 after the
    /// merge: a phrase 0.80 against 0.66 ms, a rare word 0.069 against 0.024 ms).
    pub(crate) async fn merge_index_step(&self, pages: usize) -> Result<bool> {
        if self.dialect != Dialect::Sqlite {
            return Ok(false);
        }
        let mut tx = self.begin_write_relaxed().await?;
        let mut worked = false;
        // The trigram index first; the stem index (0026, far smaller) once it has nothing left.
        for index in [FtsIndex::Trigram, FtsIndex::Stem] {
            let table = index.table();
            let before = tx.total_changes()?;
            db::query(format!(
                "INSERT INTO {table} ({table}, rank) VALUES ('merge', $1)"
            ))
            .bind(i64::try_from(pages).unwrap_or(i64::MAX))
            .execute(&mut tx)
            .await?;
            // FTS5: fewer than two changes means the command found nothing to merge.
            worked = tx.total_changes()?.saturating_sub(before) >= 2;
            if worked {
                break;
            }
        }
        tx.commit().await?;
        Ok(worked)
    }

    /// Messages stored before migration 0007 have no header text, so SEARCH TEXT finds their
    /// header fields only through subject and addresses; those stored before migration 0016 were
    /// folded without removing diacritics (`text_version` 0), so "cafe" misses their "café".
    /// Rewrites up to `batch` of either from their messages (the whole row, and with it the
    /// indexes); returns how many were done, 0 once none is left. Safe on several nodes at once: a row filled twice
    /// is filled with the same text.
    pub async fn backfill_header_text(&self, batch: usize) -> Result<usize> {
        // The condition is `message_text_stale`'s (migration 0016), literally, so that both
        // backends answer it from that partial index; 1 is `FOLD_VERSION`.
        let ids: Vec<i64> = db::query_scalar(
            "SELECT message_id FROM message_text WHERE headers IS NULL OR text_version < 1 \
             ORDER BY message_id LIMIT $1",
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            let columns = match self.message_raw(*id).await {
                Ok(raw) => tokio::task::spawn_blocking(move || {
                    TextColumns::new(&wharf_mime::analyze(&raw).search, &raw)
                })
                .await
                .map_err(|e| crate::StoreError::Backend(format!("text analysis task: {e}")))?,
                // Deleted meanwhile: its row went with it.
                Err(crate::StoreError::NotFound(_)) => continue,
                // Not retried forever: the row keeps the text it had, with an empty header.
                Err(e) => {
                    tracing::warn!(message = id, error = %e, "store: search text not backfilled");
                    db::query(
                        "UPDATE message_text SET headers = coalesce(headers, ''), text_version = $2 \
                         WHERE message_id = $1",
                    )
                    .bind(*id)
                    .bind(FOLD_VERSION)
                        .execute(&self.writer)
                        .await?;
                    continue;
                }
            };
            rows.push((*id, columns));
        }
        let mut tx = self.begin_write().await?;
        for (id, columns) in &rows {
            columns.write(&mut tx, *id, true).await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }
}
