//! Text of document attachments for SEARCH (issue 22): PDF, DOCX, XLSX, PPTX, ODT/ODS/ODP,
//! extracted by `wharf_mime::attachments` off the delivery path and appended, folded, to the
//! row's `body`, so SEARCH TEXT and BODY find it through the same column and indexes (SQLite's
//! update triggers put the row back in line for the trigram index; PostgreSQL's pg_trgm index
//! covers `body`). Eventually consistent: until a message's extraction ran, a word only in its
//! attachment is not found.

use std::time::Duration;

use super::{Shared, db};
use crate::Result;
use crate::model::AccountId;
use crate::text::fold;

/// `message_text.attachments_version` once extracted (migration 0018).
pub(super) const ATTACHMENTS_VERSION: i64 = 1;

/// Extraction threads of this process, running or left running after a timeout (see
/// `extract_attachment_text`).
static EXTRACTING: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(1)));

impl Shared {
    /// Extracts the attachment text of up to `batch` messages not done yet, oldest first; returns
    /// how many were looked at, 0 once none is left. Each message on a blocking thread, within
    /// `limits` (size, text and time per message); a message whose extraction overruns its time
    /// by far, or whose blob cannot be read, is marked done without attachment text (with a log
    /// line), so one bad message never blocks the rest. Safe on several nodes at once: the update
    /// applies only to a row still pending, so text is appended once.
    pub async fn extract_attachment_text(
        &self,
        batch: usize,
        limits: wharf_mime::attachments::Limits,
    ) -> Result<usize> {
        let ids: Vec<i64> = db::query_scalar(
            "SELECT message_id FROM message_text WHERE attachments_version < 1 \
             ORDER BY message_id LIMIT $1",
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        let mut rows: Vec<(i64, String)> = Vec::with_capacity(ids.len());
        for id in &ids {
            let raw = match self.message_raw(*id).await {
                Ok(raw) => raw,
                // Deleted meanwhile: its row went with it.
                Err(crate::StoreError::NotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!(message = id, error = %e, "store: attachment text not extracted (message unreadable)");
                    rows.push((*id, String::new()));
                    continue;
                }
            };
            // One extraction thread at a time, counting one left running after the outer
            // timeout: a stream of pathological attachments must not pile up threads in the
            // blocking pool that delivery shares. The permit goes with the thread.
            let permit = match EXTRACTING.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => break,
            };
            let started = std::time::Instant::now();
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let found = wharf_mime::attachments::extract(&raw, &limits);
                let text = if found.text.is_empty() {
                    String::new()
                } else {
                    // PostgreSQL text holds no NUL.
                    format!("\n{}", fold(&found.text).replace('\0', " "))
                };
                (found, text)
            });
            // The extraction checks its own deadline between pages and XML events; this outer
            // bound is for a parser stuck inside one step (the thread is left to finish).
            let (found, text) = match tokio::time::timeout(
                limits.budget + Duration::from_secs(5),
                task,
            )
            .await
            {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => {
                    tracing::warn!(message = id, error = %e, "store: attachment text extraction failed");
                    rows.push((*id, String::new()));
                    continue;
                }
                Err(_) => {
                    tracing::warn!(
                        message = id,
                        "store: attachment text extraction timed out, skipped"
                    );
                    rows.push((*id, String::new()));
                    continue;
                }
            };
            for s in &found.skipped {
                tracing::info!(message = id, attachment = %s.name, kind = ?s.kind, reason = %s.reason,
                    "store: attachment text skipped");
            }
            if found.documents > 0 {
                tracing::debug!(
                    message = id,
                    documents = found.documents,
                    bytes = text.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "store: attachment text extracted"
                );
            }
            metrics::histogram!("wharf_store_seconds", "op" => "attachment_text")
                .record(started.elapsed().as_secs_f64());
            rows.push((*id, text));
        }
        if rows.is_empty() {
            return Ok(ids.len());
        }
        let mut tx = self.begin_write().await?;
        for (id, text) in &rows {
            if text.is_empty() {
                db::query(
                    "UPDATE message_text SET attachments_version = $2 \
                     WHERE message_id = $1 AND attachments_version < 1",
                )
                .bind(*id)
                .bind(ATTACHMENTS_VERSION)
                .execute(&mut tx)
                .await?;
            } else {
                db::query(
                    "UPDATE message_text SET body = body || $2, attachments_version = $3 \
                     WHERE message_id = $1 AND attachments_version < 1",
                )
                .bind(*id)
                .bind(text.as_str())
                .bind(ATTACHMENTS_VERSION)
                .execute(&mut tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(ids.len())
    }

    /// `Store::mark_for_reindex`: the rows' fold version back to 0, which the header backfill
    /// (the `message_text_stale` partial index) picks up.
    pub async fn mark_for_reindex(&self, account: Option<AccountId>) -> Result<u64> {
        let done = match account {
            Some(a) => {
                db::query(
                    "UPDATE message_text SET text_version = 0 WHERE message_id IN \
                     (SELECT id FROM messages WHERE account_id = $1)",
                )
                .bind(a)
                .execute(&self.writer)
                .await?
            }
            None => {
                db::query("UPDATE message_text SET text_version = 0")
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }
}
