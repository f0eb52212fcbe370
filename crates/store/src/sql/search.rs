//! SEARCH text keys: candidates from the full-text index (FTS5 or tsvector), confirmed by a
//! case-insensitive substring check on the stored text, so that answers are exactly RFC 9051's.
//! See `crate::text` for why the index can only narrow, never decide.

use super::writer::TextColumns;
use super::{Dialect, Shared, db, to_u32};
use crate::Result;
use crate::model::*;
use crate::text::{contains_folded, fold, fts5_query, needle_terms, tsquery};

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

impl Shared {
    pub async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        let needle = fold(needle);
        let cols = columns(field);
        let terms = needle_terms(&needle);
        match self.dialect {
            Dialect::Sqlite => {
                self.search_text_sqlite(mailbox, cols, &needle, &terms)
                    .await
            }
            Dialect::Postgres => {
                self.search_text_postgres(mailbox, cols, &needle, &terms)
                    .await
            }
        }
    }

    /// SQLite decides in SQL: the stored text is folded, so `instr` is the exact substring test,
    /// run by SQLite on its own pages without copying a text out (a 20,000-message mailbox: 82 ms
    /// when every text was copied into Rust and tested there).
    async fn search_text_sqlite(
        &self,
        mailbox: MailboxId,
        cols: &[&str],
        needle: &str,
        terms: &crate::text::NeedleTerms,
    ) -> Result<Vec<Uid>> {
        // Column names come from the fixed list above; only the needle is bound.
        let contains: Vec<String> = cols
            .iter()
            .map(|c| format!("instr(t.{c}, $2) > 0"))
            .collect();
        let contains = contains.join(" OR ");
        let scan_mailbox = format!(
            "SELECT mm.uid FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND ({contains}) ORDER BY mm.uid"
        );
        let use_index = if terms.is_empty() {
            None
        } else {
            let fts = fts5_query(terms, if cols.len() == 1 { Some(cols[0]) } else { None });
            // SQLite's planner has no statistics for the FTS table and would start from the
            // mailbox, reading every message's text before asking the index. So choose here:
            // the index's matches across the whole store, when they are fewer than the mailbox's
            // messages, each joined by key; otherwise (a word most messages contain) the
            // mailbox's texts, which is then no more work than the index would have cost.
            let mut tx = self.begin_read().await?;
            let in_mailbox: i64 =
                db::query_scalar("SELECT COUNT(*) FROM mailbox_messages WHERE mailbox_id = $1")
                    .bind(mailbox)
                    .fetch_one(&mut tx)
                    .await?;
            let matches: i64 = db::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM message_fts WHERE message_fts MATCH $1 LIMIT $2)",
            )
            .bind(fts.clone())
            .bind(in_mailbox + 1)
            .fetch_one(&mut tx)
            .await?;
            tx.commit().await?;
            (matches <= in_mailbox).then_some(fts)
        };
        let q = match use_index {
            None => db::query(scan_mailbox)
                .bind(mailbox)
                .bind(needle.to_string()),
            Some(fts) => db::query(format!(
                "SELECT mm.uid FROM message_fts \
                 CROSS JOIN mailbox_messages mm ON mm.message_id = message_fts.rowid \
                 CROSS JOIN message_text t ON t.message_id = message_fts.rowid \
                 WHERE message_fts MATCH $3 AND mm.mailbox_id = $1 AND ({contains}) ORDER BY mm.uid"
            ))
            .bind(mailbox)
            .bind(needle.to_string())
            .bind(fts),
        };
        let mut out: Vec<Uid> = q
            .heavy()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| to_u32(row.try_get(0usize)?, "uid"))
            .collect::<Result<_>>()?;
        out.dedup();
        Ok(out)
    }

    /// PostgreSQL: candidates from the tsvector index (or every row whose text was too long to
    /// index completely), confirmed here.
    async fn search_text_postgres(
        &self,
        mailbox: MailboxId,
        cols: &[&str],
        needle: &str,
        terms: &crate::text::NeedleTerms,
    ) -> Result<Vec<Uid>> {
        let select: Vec<String> = cols.iter().map(|c| format!("t.{c}")).collect();
        let select = select.join(", ");
        let q = if terms.is_empty() {
            db::query(format!(
                "SELECT mm.uid, {select} FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                 WHERE mm.mailbox_id = $1 ORDER BY mm.uid"
            ))
            .bind(mailbox)
        } else {
            db::query(format!(
                "SELECT mm.uid, {select} FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND (t.fts @@ to_tsquery('simple', $2) OR t.fts_complete = 0) \
                 ORDER BY mm.uid"
            ))
            .bind(mailbox)
            .bind(tsquery(terms))
        };
        let rows = q.fetch_all(&self.reader).await?;
        let mut out = Vec::new();
        for row in rows {
            let mut hit = false;
            for i in 0..cols.len() {
                // NULL: header text not yet backfilled (stored before migration 0007).
                let text: Option<String> = row.try_get(i + 1)?;
                if text.is_some_and(|t| contains_folded(&t, needle)) {
                    hit = true;
                    break;
                }
            }
            if hit {
                out.push(to_u32(row.try_get("uid")?, "uid")?);
            }
        }
        // A message can appear once per mailbox row; the join never duplicates, but keep the
        // contract (ascending, unique) explicit.
        out.dedup();
        Ok(out)
    }

    /// Messages stored before migration 0007 have no header text, so SEARCH TEXT finds their
    /// header fields only through subject and addresses. Fills in up to `batch` of them from
    /// their bodies (the whole row is rewritten, and on PostgreSQL its tsvector); returns how
    /// many were done, 0 once none is left. Safe on several nodes at once: a row filled twice
    /// is filled with the same text.
    pub async fn backfill_header_text(&self, batch: usize) -> Result<usize> {
        let ids: Vec<i64> = db::query_scalar(
            "SELECT message_id FROM message_text WHERE headers IS NULL ORDER BY message_id LIMIT $1",
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            let columns = match self.message_raw(*id).await {
                Ok(raw) => {
                    let dialect = self.dialect;
                    tokio::task::spawn_blocking(move || {
                        TextColumns::new(&wharf_mime::analyze(&raw).search, dialect)
                    })
                    .await
                    .map_err(|e| crate::StoreError::Backend(format!("text analysis task: {e}")))?
                }
                // Deleted meanwhile: its row went with it.
                Err(crate::StoreError::NotFound(_)) => continue,
                // Not retried forever: the row keeps the text it had, with an empty header.
                Err(e) => {
                    tracing::warn!(message = id, error = %e, "store: header text not backfilled");
                    db::query("UPDATE message_text SET headers = '' WHERE message_id = $1")
                        .bind(*id)
                        .execute(&self.writer)
                        .await?;
                    continue;
                }
            };
            rows.push((*id, columns));
        }
        let mut tx = self.begin_write().await?;
        for (id, columns) in &rows {
            columns.write(self.dialect, &mut tx, *id, true).await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }
}
