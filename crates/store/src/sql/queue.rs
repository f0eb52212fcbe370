//! The outbound queue on SQL (`QueueStore` for `SqlStore`): one `queue` row per entry, its body a
//! blob shared (by reference count) with any mailbox copy of the same message, per-recipient state
//! as JSON, and leases that let several workers or nodes drain one queue without ever sending an
//! entry twice at the same time.
//!
//! Lock order (PostgreSQL): a transaction touches at most one queue row and then at most one blob
//! row; no transaction takes a blob row before a queue row, so queue work cannot deadlock with
//! message writers (which take account, then blob rows).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

use super::blob_life::Pins;
use super::{Dialect, Row, Shared, SqlStore, Tx, db};
use crate::StoreError;
use crate::queue::{
    AttemptRecord, NewQueueEntry, QueueEntry, QueueError, QueueId, QueueStore, QueuedRecipient, Ret,
};

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> QueueError {
        StoreError::from(e).into()
    }
}

type QResult<T> = std::result::Result<T, QueueError>;

const COLUMNS: &str = "id, sender, recipients, size, envid, ret, require_tls, created, \
                       next_attempt, attempts, expires, delay_notified, lease_owner, lease_until";

fn backend(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(format!("{what}: {e}"))
}

fn entry_from_row(row: &Row) -> QResult<QueueEntry> {
    let id: i64 = row.try_get("id")?;
    let recipients: String = row.try_get("recipients")?;
    let recipients: Vec<QueuedRecipient> = serde_json::from_str(&recipients)
        .map_err(|e| backend(&format!("recipients of queue entry {id}"), e))?;
    let ret = match row.try_get::<Option<String>, _>("ret")? {
        None => None,
        Some(r) => Some(
            Ret::from_param(&r)
                .ok_or_else(|| backend(&format!("RET of queue entry {id}"), r.clone()))?,
        ),
    };
    let attempts: i64 = row.try_get("attempts")?;
    let size: i64 = row.try_get("size")?;
    Ok(QueueEntry {
        id,
        sender: row.try_get("sender")?,
        recipients,
        size: u64::try_from(size).map_err(|e| backend("queue size", e))?,
        envid: row.try_get("envid")?,
        ret,
        require_tls: row.try_get::<i64, _>("require_tls")? != 0,
        created: row.try_get("created")?,
        next_attempt: row.try_get("next_attempt")?,
        attempts: u32::try_from(attempts).map_err(|e| backend("queue attempts", e))?,
        expires: row.try_get("expires")?,
        delay_notified: row.try_get::<i64, _>("delay_notified")? != 0,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
    })
}

fn recipients_json(r: &[QueuedRecipient]) -> QResult<String> {
    serde_json::to_string(r).map_err(|e| backend("encoding recipients", e))
}

/// The lease columns and blob of one entry, row-locked on PostgreSQL.
struct Held {
    owner: Option<String>,
    until: Option<i64>,
    blob_hash: String,
    recipients: String,
}

impl Held {
    fn holds(&self, owner: &str, now: i64) -> bool {
        self.owner.as_deref() == Some(owner) && self.until.is_some_and(|u| u >= now)
    }

    /// The entry's recipients, for `owner` while it holds the lease (`LeaseLost` otherwise).
    fn recipients_for(&self, id: QueueId, owner: &str, now: i64) -> QResult<Vec<QueuedRecipient>> {
        if !self.holds(owner, now) {
            return Err(QueueError::LeaseLost(id));
        }
        serde_json::from_str(&self.recipients)
            .map_err(|e| backend(&format!("recipients of queue entry {id}"), e))
    }
}

impl Shared {
    async fn lock_queue_row(&self, tx: &mut Tx, id: QueueId) -> QResult<Held> {
        let sql = self.dialect.pick(
            "SELECT lease_owner, lease_until, blob_hash, recipients FROM queue WHERE id = $1",
            "SELECT lease_owner, lease_until, blob_hash, recipients FROM queue WHERE id = $1 FOR UPDATE",
        );
        let row = db::query(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(QueueError::NotFound(id))?;
        Ok(Held {
            owner: row.try_get("lease_owner")?,
            until: row.try_get("lease_until")?,
            blob_hash: row.try_get("blob_hash")?,
            recipients: row.try_get("recipients")?,
        })
    }

    /// Stores the blob durably, then the blob reference and the row in one transaction.
    async fn enqueue(&self, entry: NewQueueEntry) -> QResult<QueueId> {
        if entry.recipients.is_empty() {
            return Err(QueueError::Invalid("no recipients".into()));
        }
        if entry.recipients.iter().any(|r| r.address.is_empty()) {
            return Err(QueueError::Invalid("empty recipient address".into()));
        }
        let size = i64::try_from(entry.raw.len())
            .map_err(|_| QueueError::Invalid("message too large".into()))?;
        let recipients = recipients_json(&entry.recipients)?;
        let raw = entry.raw.clone();
        let hash = tokio::task::spawn_blocking(move || crate::blob::blob_hash(&raw))
            .await
            .map_err(|e| backend("hashing task", e))?;
        // Pinned before the file is looked at: a concurrent expunge of the last mailbox copy of
        // the same content, in this process or another, must not delete the file this commit is
        // about to name (`blob_life`).
        let pins = self.pin_blobs(&[(hash.clone(), size)]).await?;
        let outcome = self
            .enqueue_durable(&entry, &hash, &pins, &recipients)
            .await;
        if outcome.is_err() {
            self.unpin_blobs(pins).await;
        }
        outcome
    }

    async fn enqueue_durable(
        &self,
        entry: &NewQueueEntry,
        hash: &str,
        pins: &Pins,
        recipients: &str,
    ) -> QResult<QueueId> {
        let size = i64::try_from(entry.raw.len())
            .map_err(|_| QueueError::Invalid("message too large".into()))?;
        let blobs = self.blobs.clone();
        let (h, raw) = (hash.to_string(), entry.raw.clone());
        tokio::task::spawn_blocking(move || blobs.put_durable(&[(h.as_str(), raw.as_ref())]))
            .await
            .map_err(|e| backend("blob write task", e))?
            .map_err(|e| backend("writing the queued message", e))?;
        let mut tx = self.begin_write().await?;
        self.settle_pins(&mut tx, pins, &BTreeMap::from([(hash.to_string(), 1)]))
            .await?;
        let id: i64 = db::query_scalar(
            "INSERT INTO queue (sender, recipients, blob_hash, size, envid, ret, require_tls, \
             created, next_attempt, attempts, expires, delay_notified) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, 0) RETURNING id",
        )
        .bind(&entry.sender)
        .bind(recipients)
        .bind(hash)
        .bind(size)
        .bind(entry.envid.clone())
        .bind(entry.ret.map(|r| r.parameter().to_string()))
        .bind(i64::from(entry.require_tls))
        .bind(entry.created)
        .bind(entry.next_attempt)
        .bind(entry.expires)
        .fetch_one(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> QResult<Vec<QueueEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement: choosing and taking happen together. PostgreSQL skips rows another
        // transaction is taking and re-checks the lease condition on rows committed meanwhile;
        // SQLite's single writer (BEGIN IMMEDIATE) serialises callers.
        let sql = format!(
            "UPDATE queue SET lease_owner = $1, lease_until = $2 WHERE id IN (\
             SELECT id FROM queue WHERE next_attempt <= $3 \
             AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY next_attempt, id LIMIT $4{}) RETURNING {COLUMNS}",
            match self.dialect {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            }
        );
        let mut tx = self.begin_write().await?;
        let rows = db::query(sql)
            .bind(owner)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut tx)
            .await?;
        let mut out = rows
            .iter()
            .map(entry_from_row)
            .collect::<QResult<Vec<_>>>()?;
        tx.commit().await?;
        out.sort_by_key(|e| (e.next_attempt, e.id));
        Ok(out)
    }

    async fn queue_message(&self, id: QueueId) -> QResult<Bytes> {
        let hash: String = db::query_scalar("SELECT blob_hash FROM queue WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(QueueError::NotFound(id))?;
        self.blobs.read(&hash).await.map_err(|e| {
            tracing::error!(queue_id = id, hash = %hash, error = %e, "queue: blob of a queued message is unreadable");
            backend(&format!("message of queue entry {id}"), e)
        })
    }

    async fn record_attempt(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        record: AttemptRecord,
    ) -> QResult<()> {
        let recipients = recipients_json(&record.recipients)?;
        let mut tx = self.begin_write().await?;
        let before = self
            .lock_queue_row(&mut tx, id)
            .await?
            .recipients_for(id, owner, now)?;
        if before.len() != record.recipients.len()
            || before
                .iter()
                .zip(&record.recipients)
                .any(|(a, b)| a.address != b.address)
        {
            return Err(QueueError::Invalid("recipient list changed".into()));
        }
        db::query(
            "UPDATE queue SET recipients = $1, attempts = $2, next_attempt = $3, \
             delay_notified = $4, lease_owner = NULL, lease_until = NULL WHERE id = $5",
        )
        .bind(recipients)
        .bind(i64::from(record.attempts))
        .bind(record.next_attempt)
        .bind(i64::from(record.delay_notified))
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_delivered(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        recipients: &[usize],
        remote_mta: Option<&str>,
    ) -> QResult<()> {
        // Relaxed: committed (and so safe from a crash of the process, the case that matters)
        // before the next message goes out, without an fsync per delivered message; a power cut
        // can forget it, which sends the message again: a duplicate, never a loss.
        let mut tx = self.begin_write_relaxed().await?;
        let mut list = self
            .lock_queue_row(&mut tx, id)
            .await?
            .recipients_for(id, owner, now)?;
        crate::queue::mark_delivered(&mut list, recipients, remote_mta);
        db::query("UPDATE queue SET recipients = $1 WHERE id = $2")
            .bind(recipients_json(&list)?)
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn renew_leases(
        &self,
        ids: &[QueueId],
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> QResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut held = 0u64;
        let mut tx = self.begin_write_relaxed().await?;
        // In chunks, far below the bind-parameter limits.
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (4..4 + chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "UPDATE queue SET lease_until = $1 WHERE lease_owner = $2 AND lease_until >= $3 \
                 AND id IN ({})",
                placeholders.join(",")
            );
            let mut q = db::query(sql)
                .bind(now.saturating_add(lease_secs))
                .bind(owner)
                .bind(now);
            for id in chunk {
                q = q.bind(*id);
            }
            held += q.execute(&mut tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(usize::try_from(held).unwrap_or(usize::MAX))
    }

    /// Deletes the row (checking the lease when `owner` is given) and its blob reference; the
    /// file goes after commit when nothing else names it. False when the row did not exist.
    async fn remove_entry(&self, id: QueueId, lease: Option<(&str, i64)>) -> QResult<bool> {
        let mut tx = self.begin_write().await?;
        let held = match self.lock_queue_row(&mut tx, id).await {
            Ok(h) => h,
            Err(QueueError::NotFound(_)) if lease.is_none() => return Ok(false),
            Err(e) => return Err(e),
        };
        if let Some((owner, now)) = lease
            && !held.holds(owner, now)
        {
            return Err(QueueError::LeaseLost(id));
        }
        db::query("DELETE FROM queue WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let freed = self
            .unref_blobs(&mut tx, BTreeMap::from([(held.blob_hash, 1)]))
            .await?;
        tx.commit().await?;
        if let Err(e) = self.collect_garbage(freed).await {
            tracing::warn!(queue_id = id, error = %e, "queue: could not remove a released blob (the orphan sweep will)");
        }
        Ok(true)
    }

    async fn list_queue(&self) -> QResult<Vec<QueueEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM queue ORDER BY id");
        let rows = db::query(sql).fetch_all(&self.reader).await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn list_queue_page(
        &self,
        after: Option<QueueId>,
        limit: usize,
    ) -> QResult<Vec<QueueEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM queue WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = db::query(sql)
            .bind(after.unwrap_or(0))
            .bind(super::directory::page_limit(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn get_queue_entry(&self, id: QueueId) -> QResult<Option<QueueEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM queue WHERE id = $1");
        let row = db::query(sql).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn retry_now(&self, id: Option<QueueId>, now: i64) -> QResult<u64> {
        let mut tx = self.begin_write().await?;
        let done = match id {
            Some(id) => {
                db::query("UPDATE queue SET next_attempt = $1 WHERE next_attempt > $1 AND id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut tx)
                    .await?
            }
            None => {
                db::query("UPDATE queue SET next_attempt = $1 WHERE next_attempt > $1")
                    .bind(now)
                    .execute(&mut tx)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn enqueue(&self, entry: NewQueueEntry) -> QResult<QueueId> {
        self.shared.enqueue(entry).await
    }
    async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> QResult<Vec<QueueEntry>> {
        self.shared.lease_due(owner, now, lease_secs, limit).await
    }
    async fn message(&self, id: QueueId) -> QResult<Bytes> {
        self.shared.queue_message(id).await
    }
    async fn record_attempt(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        record: AttemptRecord,
    ) -> QResult<()> {
        self.shared.record_attempt(id, owner, now, record).await
    }
    async fn record_delivered(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        recipients: &[usize],
        remote_mta: Option<&str>,
    ) -> QResult<()> {
        self.shared
            .record_delivered(id, owner, now, recipients, remote_mta)
            .await
    }
    async fn renew_leases(
        &self,
        ids: &[QueueId],
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> QResult<usize> {
        self.shared.renew_leases(ids, owner, now, lease_secs).await
    }
    async fn complete(&self, id: QueueId, owner: &str, now: i64) -> QResult<()> {
        self.shared
            .remove_entry(id, Some((owner, now)))
            .await
            .map(|_| ())
    }
    async fn list(&self) -> QResult<Vec<QueueEntry>> {
        self.shared.list_queue().await
    }
    async fn list_page(&self, after: Option<QueueId>, limit: usize) -> QResult<Vec<QueueEntry>> {
        self.shared.list_queue_page(after, limit).await
    }
    async fn count(&self) -> QResult<u64> {
        let n: i64 = db::query_scalar("SELECT COUNT(*) FROM queue")
            .fetch_one(&self.shared.reader)
            .await
            .map_err(|e| QueueError::Backend(e.to_string()))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
    async fn get(&self, id: QueueId) -> QResult<Option<QueueEntry>> {
        self.shared.get_queue_entry(id).await
    }
    async fn retry_now(&self, id: Option<QueueId>, now: i64) -> QResult<u64> {
        self.shared.retry_now(id, now).await
    }
    async fn drop_entry(&self, id: QueueId) -> QResult<bool> {
        self.shared.remove_entry(id, None).await
    }
}
