//! SEARCH text keys: candidates from the full-text index (FTS5 or tsvector), confirmed by a
//! case-insensitive substring check on the stored text, so that answers are exactly RFC 9051's.
//! See `crate::text` for why the index can only narrow, never decide.

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
        let select: Vec<String> = cols.iter().map(|c| format!("t.{c}")).collect();
        let select = select.join(", ");
        let terms = needle_terms(&needle);
        // Column names come from the fixed list above; only the needle is bound.
        let (sql, query_text) = if terms.is_empty() {
            (
                format!(
                    "SELECT mm.uid, {select} FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                     WHERE mm.mailbox_id = $1 ORDER BY mm.uid"
                ),
                None,
            )
        } else {
            match self.dialect {
                Dialect::Sqlite => (
                    format!(
                        "SELECT mm.uid, {select} FROM message_fts \
                         JOIN message_text t ON t.message_id = message_fts.rowid \
                         JOIN mailbox_messages mm ON mm.message_id = t.message_id \
                         WHERE mm.mailbox_id = $1 AND message_fts MATCH $2 ORDER BY mm.uid"
                    ),
                    Some(fts5_query(
                        &terms,
                        if cols.len() == 1 { Some(cols[0]) } else { None },
                    )),
                ),
                Dialect::Postgres => (
                    format!(
                        "SELECT mm.uid, {select} FROM mailbox_messages mm JOIN message_text t ON t.message_id = mm.message_id \
                         WHERE mm.mailbox_id = $1 AND (t.fts @@ to_tsquery('simple', $2) OR t.fts_complete = 0) \
                         ORDER BY mm.uid"
                    ),
                    Some(tsquery(&terms)),
                ),
            }
        };
        let mut q = db::query(sql).bind(mailbox);
        if let Some(t) = query_text {
            q = q.bind(t);
        }
        let rows = q.fetch_all(&self.reader).await?;
        let mut out = Vec::new();
        for row in rows {
            let mut hit = false;
            for i in 0..cols.len() {
                let text: String = row.try_get(i + 1)?;
                if contains_folded(&text, &needle) {
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
}
