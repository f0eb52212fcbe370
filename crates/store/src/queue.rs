//! The durable outbound queue as a storage contract: the entry model (DESIGN.md §2 `queue`), the
//! RFC 3461 DSN parameters stored with it (`Notify`, `Ret`), the `QueueStore` operations the
//! backends implement (`SqlStore` on SQLite and PostgreSQL, see `sql::queue`), `MemoryQueue`,
//! a faithful in-process implementation for tests, and `check_queue_store`, the contract as an
//! executable check every implementation runs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub type QueueId = i64;

/// RFC 3461 NOTIFY of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
    /// The submitter named NOTIFY explicitly (so it must be passed on).
    pub explicit: bool,
}

impl Notify {
    /// What applies when the submitter gave no NOTIFY (RFC 3461 §4.1: FAILURE and maybe DELAY).
    pub fn default_policy() -> Notify {
        Notify {
            failure: true,
            delay: true,
            ..Notify::default()
        }
    }

    /// From a submitted `NOTIFY=` value (`NEVER` or a comma list); `None` gives the default policy.
    pub fn from_param(value: Option<&str>) -> Notify {
        let Some(v) = value else {
            return Notify::default_policy();
        };
        let mut n = Notify {
            explicit: true,
            ..Notify::default()
        };
        for word in v.split(',') {
            match word.trim().to_ascii_uppercase().as_str() {
                "NEVER" => n.never = true,
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => {}
            }
        }
        n
    }

    pub fn parameter(&self) -> String {
        if self.never {
            return "NEVER".into();
        }
        let mut v = Vec::new();
        if self.success {
            v.push("SUCCESS");
        }
        if self.failure {
            v.push("FAILURE");
        }
        if self.delay {
            v.push("DELAY");
        }
        v.join(",")
    }
}

impl Ret {
    /// The `RET=` value (also how the queue stores it).
    pub fn parameter(&self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }

    /// From a submitted `RET=` value.
    pub fn from_param(value: &str) -> Option<Ret> {
        match value.to_ascii_uppercase().as_str() {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Hdrs),
            _ => None,
        }
    }
}

/// RFC 3461 RET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Ret {
    /// Return headers only (also the default when unspecified).
    #[default]
    Hdrs,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientState {
    /// Not yet delivered; retried at `next_attempt`.
    Pending,
    Delivered,
    /// Permanently failed (5xx, policy, expiry); a DSN went out when the sender asked for one.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub notify: Notify,
    /// ORCPT from submission (`rfc822;addr`).
    pub orcpt: Option<String>,
    pub state: RecipientState,
    /// Enhanced status of the last attempt (`4.4.1`, `5.1.1`, `2.0.0`).
    pub status: Option<String>,
    /// `smtp; 550 5.1.1 …` or `x-wharf; …` of the last attempt.
    pub diagnostic: Option<String>,
    /// Host that gave the last answer.
    pub remote_mta: Option<String>,
}

/// Sets the given recipients (indexes; out-of-range ones ignored) to delivered.
pub(crate) fn mark_delivered(
    list: &mut [QueuedRecipient],
    recipients: &[usize],
    remote_mta: Option<&str>,
) {
    for &i in recipients {
        if let Some(r) = list.get_mut(i) {
            r.state = RecipientState::Delivered;
            r.status = Some("2.0.0".into());
            r.remote_mta = remote_mta.map(str::to_string);
        }
    }
}

impl QueuedRecipient {
    pub fn new(address: &str) -> QueuedRecipient {
        QueuedRecipient {
            address: address.to_string(),
            notify: Notify::default_policy(),
            orcpt: None,
            state: RecipientState::Pending,
            status: None,
            diagnostic: None,
            remote_mta: None,
        }
    }

    /// Lower-cased domain part, as routing uses it.
    pub fn domain(&self) -> String {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// What submission hands to the queue.
#[derive(Debug, Clone)]
pub struct NewQueueEntry {
    /// Empty for `<>` (bounces): such entries never produce a DSN.
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    /// The message as it will be sent (trace headers and DKIM signatures included).
    pub raw: Bytes,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    /// RFC 8689 REQUIRETLS was requested at submission.
    pub require_tls: bool,
    /// Unix seconds.
    pub created: i64,
    pub next_attempt: i64,
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: QueueId,
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    pub size: u64,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    /// RFC 8689 REQUIRETLS was requested at submission.
    pub require_tls: bool,
    pub created: i64,
    pub next_attempt: i64,
    pub attempts: u32,
    pub expires: i64,
    /// A delay DSN was sent already (only one per entry).
    pub delay_notified: bool,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

/// The result of one attempt, written back in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The full recipient list with updated states (same order and addresses as leased).
    pub recipients: Vec<QueuedRecipient>,
    pub attempts: u32,
    pub next_attempt: i64,
    pub delay_notified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue entry {0} not found")]
    NotFound(QueueId),
    /// The caller's lease expired and another worker took the entry: drop the results.
    #[error("queue entry {0} is leased by another worker")]
    LeaseLost(QueueId),
    #[error("invalid queue entry: {0}")]
    Invalid(String),
    #[error("queue storage: {0}")]
    Backend(String),
}

impl From<crate::StoreError> for QueueError {
    fn from(e: crate::StoreError) -> QueueError {
        QueueError::Backend(e.to_string())
    }
}

/// Storage operations of the outbound queue. Every method is one transaction.
///
/// Times are Unix seconds. A lease is held when `lease_owner = owner` and `lease_until >= now`;
/// an expired lease is free for anyone (a crashed worker's entries are taken up again).
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Stores the blob (content-addressed, shared with local copies) and the entry; returns only
    /// when both are durable, since the submitter's 250 depends on it.
    async fn enqueue(&self, entry: NewQueueEntry) -> Result<QueueId, QueueError>;
    /// Leases up to `limit` entries with `next_attempt <= now` whose lease is free or expired,
    /// oldest `next_attempt` first, setting `lease_owner = owner`, `lease_until = now + lease_secs`.
    /// Concurrent callers never get the same entry (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, QueueError>;
    /// The message of an entry.
    async fn message(&self, id: QueueId) -> Result<Bytes, QueueError>;
    /// Writes the attempt's results and next schedule and releases the lease;
    /// `LeaseLost` when `owner` no longer holds it (nothing is written then).
    async fn record_attempt(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        record: AttemptRecord,
    ) -> Result<(), QueueError>;
    /// Marks recipients delivered the moment the receiving server accepted them, keeping the
    /// lease: a worker that dies before its round ends never sends them again. Committed before
    /// it returns, and so kept through a crash of the process; a power cut may forget it (the
    /// message is then sent again: a duplicate, never a loss). `recipients` are indexes into the
    /// entry's list; `LeaseLost` as above (nothing is written then).
    async fn record_delivered(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        recipients: &[usize],
        remote_mta: Option<&str>,
    ) -> Result<(), QueueError>;
    /// The worker's heartbeat: extends to `now + lease_secs` the leases `owner` still holds
    /// among `ids`; returns how many those are.
    async fn renew_leases(
        &self,
        ids: &[QueueId],
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<usize, QueueError>;
    /// Deletes a finished entry and releases its blob reference; `LeaseLost` as above.
    async fn complete(&self, id: QueueId, owner: &str, now: i64) -> Result<(), QueueError>;
    /// Every entry, by id (operations: `wharf queue list`).
    async fn list(&self) -> Result<Vec<QueueEntry>, QueueError>;
    /// Up to `limit` entries with ids above `after`, by id (the admin API's pages). The default
    /// reads every entry; the SQL backend asks the database for the page only.
    async fn list_page(
        &self,
        after: Option<QueueId>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, QueueError> {
        let mut all = self.list().await?;
        all.retain(|e| after.is_none_or(|a| e.id > a));
        all.sort_by_key(|e| e.id);
        all.truncate(limit);
        Ok(all)
    }
    /// How many entries there are (all nodes), for the `wharf_queue_size` gauge. The default
    /// reads every entry; a backend with a cheaper count overrides it.
    async fn count(&self) -> Result<u64, QueueError> {
        Ok(self.list().await?.len() as u64)
    }
    async fn get(&self, id: QueueId) -> Result<Option<QueueEntry>, QueueError>;
    /// Makes one entry (or all, with `None`) due at `now`; returns how many changed.
    async fn retry_now(&self, id: Option<QueueId>, now: i64) -> Result<u64, QueueError>;
    /// Deletes an entry without any DSN, whatever its lease; false when it did not exist.
    async fn drop_entry(&self, id: QueueId) -> Result<bool, QueueError>;
}

/// In-memory `QueueStore`: same semantics as the SQL backends, nothing survives the process.
#[derive(Default)]
pub struct MemoryQueue {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    next_id: QueueId,
    entries: BTreeMap<QueueId, (QueueEntry, Bytes)>,
}

impl MemoryQueue {
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryInner>, QueueError> {
        self.inner
            .lock()
            .map_err(|_| QueueError::Backend("memory queue lock poisoned".into()))
    }
}

fn holds(e: &QueueEntry, owner: &str, now: i64) -> bool {
    e.lease_owner.as_deref() == Some(owner) && e.lease_until.is_some_and(|u| u >= now)
}

#[async_trait]
impl QueueStore for MemoryQueue {
    async fn enqueue(&self, entry: NewQueueEntry) -> Result<QueueId, QueueError> {
        if entry.recipients.is_empty() {
            return Err(QueueError::Invalid("no recipients".into()));
        }
        let mut g = self.lock()?;
        g.next_id += 1;
        let id = g.next_id;
        let e = QueueEntry {
            id,
            sender: entry.sender,
            recipients: entry.recipients,
            size: entry.raw.len() as u64,
            envid: entry.envid,
            ret: entry.ret,
            require_tls: entry.require_tls,
            created: entry.created,
            next_attempt: entry.next_attempt,
            attempts: 0,
            expires: entry.expires,
            delay_notified: false,
            lease_owner: None,
            lease_until: None,
        };
        g.entries.insert(id, (e, entry.raw));
        Ok(id)
    }

    async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, QueueError> {
        let mut g = self.lock()?;
        let mut due: Vec<(i64, QueueId)> = g
            .entries
            .values()
            .filter(|(e, _)| e.next_attempt <= now && e.lease_until.is_none_or(|u| u < now))
            .map(|(e, _)| (e.next_attempt, e.id))
            .collect();
        due.sort_unstable();
        due.truncate(limit);
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some((e, _)) = g.entries.get_mut(&id) {
                e.lease_owner = Some(owner.to_string());
                e.lease_until = Some(now + lease_secs);
                out.push(e.clone());
            }
        }
        Ok(out)
    }

    async fn message(&self, id: QueueId) -> Result<Bytes, QueueError> {
        let g = self.lock()?;
        g.entries
            .get(&id)
            .map(|(_, raw)| raw.clone())
            .ok_or(QueueError::NotFound(id))
    }

    async fn record_attempt(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        record: AttemptRecord,
    ) -> Result<(), QueueError> {
        let mut g = self.lock()?;
        let (e, _) = g.entries.get_mut(&id).ok_or(QueueError::NotFound(id))?;
        if !holds(e, owner, now) {
            return Err(QueueError::LeaseLost(id));
        }
        if record.recipients.len() != e.recipients.len() {
            return Err(QueueError::Invalid("recipient list changed".into()));
        }
        e.recipients = record.recipients;
        e.attempts = record.attempts;
        e.next_attempt = record.next_attempt;
        e.delay_notified = record.delay_notified;
        e.lease_owner = None;
        e.lease_until = None;
        Ok(())
    }

    async fn record_delivered(
        &self,
        id: QueueId,
        owner: &str,
        now: i64,
        recipients: &[usize],
        remote_mta: Option<&str>,
    ) -> Result<(), QueueError> {
        let mut g = self.lock()?;
        let (e, _) = g.entries.get_mut(&id).ok_or(QueueError::NotFound(id))?;
        if !holds(e, owner, now) {
            return Err(QueueError::LeaseLost(id));
        }
        mark_delivered(&mut e.recipients, recipients, remote_mta);
        Ok(())
    }

    async fn renew_leases(
        &self,
        ids: &[QueueId],
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<usize, QueueError> {
        let mut g = self.lock()?;
        let mut held = 0;
        for id in ids {
            if let Some((e, _)) = g.entries.get_mut(id)
                && holds(e, owner, now)
            {
                e.lease_until = Some(now + lease_secs);
                held += 1;
            }
        }
        Ok(held)
    }

    async fn complete(&self, id: QueueId, owner: &str, now: i64) -> Result<(), QueueError> {
        let mut g = self.lock()?;
        let (e, _) = g.entries.get(&id).ok_or(QueueError::NotFound(id))?;
        if !holds(e, owner, now) {
            return Err(QueueError::LeaseLost(id));
        }
        g.entries.remove(&id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<QueueEntry>, QueueError> {
        Ok(self
            .lock()?
            .entries
            .values()
            .map(|(e, _)| e.clone())
            .collect())
    }

    async fn get(&self, id: QueueId) -> Result<Option<QueueEntry>, QueueError> {
        Ok(self.lock()?.entries.get(&id).map(|(e, _)| e.clone()))
    }

    async fn retry_now(&self, id: Option<QueueId>, now: i64) -> Result<u64, QueueError> {
        let mut g = self.lock()?;
        let mut n = 0;
        for (e, _) in g.entries.values_mut() {
            if id.is_none_or(|i| i == e.id) && e.next_attempt > now {
                e.next_attempt = now;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn drop_entry(&self, id: QueueId) -> Result<bool, QueueError> {
        Ok(self.lock()?.entries.remove(&id).is_some())
    }
}

/// The `QueueStore` contract as an executable check, for every backend's own tests
/// (`wharf_store::queue::check_queue_store(&store).await`). Uses ids it creates and
/// times far in the future, so it can run against a store holding other entries.
pub async fn check_queue_store(q: &dyn QueueStore) -> Result<(), String> {
    fn ensure(cond: bool, what: &str) -> Result<(), String> {
        if cond {
            Ok(())
        } else {
            Err(format!("QueueStore contract: {what}"))
        }
    }
    let e = |s: QueueError| s.to_string();
    // Far-future clock so entries of a shared database are not due.
    let base: i64 = 4_000_000_000;
    let mut rcpt = QueuedRecipient::new("b@y.example");
    rcpt.orcpt = Some("rfc822;b@y.example".into());
    rcpt.notify = Notify {
        success: true,
        failure: true,
        explicit: true,
        ..Notify::default()
    };
    let raw = Bytes::from_static(b"Subject: conformance\r\n\r\nbody\r\n");
    let empty = NewQueueEntry {
        sender: "a@x.example".into(),
        recipients: vec![],
        raw: raw.clone(),
        envid: None,
        ret: None,
        require_tls: false,
        created: base,
        next_attempt: base,
        expires: base + 100,
    };
    ensure(
        q.enqueue(empty.clone()).await.is_err(),
        "enqueue refuses an empty recipient list",
    )?;
    let id = q
        .enqueue(NewQueueEntry {
            recipients: vec![rcpt.clone(), QueuedRecipient::new("c@z.example")],
            envid: Some("ENV".into()),
            ret: Some(Ret::Full),
            require_tls: true,
            ..empty
        })
        .await
        .map_err(e)?;
    let got = q.get(id).await.map_err(e)?.ok_or("get after enqueue")?;
    let page = q.list_page(Some(id - 1), 1).await.map_err(e)?;
    ensure(
        page.len() == 1 && page[0].id == id,
        "list_page gives the entry after the cursor, within the limit",
    )?;
    ensure(
        q.list_page(Some(id), 10)
            .await
            .map_err(e)?
            .iter()
            .all(|x| x.id > id),
        "list_page gives only entries after the cursor",
    )?;
    let all = q.list_page(None, usize::MAX).await.map_err(e)?;
    ensure(
        all.windows(2).all(|w| w[0].id < w[1].id) && all.iter().any(|x| x.id == id),
        "list_page orders by id",
    )?;
    ensure(
        got.recipients.len() == 2 && got.recipients[0] == rcpt,
        "recipients round-trip",
    )?;
    ensure(
        got.envid.as_deref() == Some("ENV") && got.ret == Some(Ret::Full) && got.require_tls,
        "DSN fields round-trip",
    )?;
    ensure(
        got.size == raw.len() as u64 && got.attempts == 0 && got.lease_owner.is_none(),
        "fresh entry",
    )?;
    ensure(
        q.message(id).await.map_err(e)? == raw,
        "message bytes round-trip",
    )?;
    ensure(
        q.list().await.map_err(e)?.iter().any(|x| x.id == id),
        "list shows the entry",
    )?;
    // Other entries may come and go in a shared database: only a lower bound is certain.
    ensure(q.count().await.map_err(e)? >= 1, "count includes the entry")?;

    let a = q.lease_due("node-a", base, 10, 1000).await.map_err(e)?;
    ensure(
        a.iter()
            .any(|x| x.id == id && x.lease_owner.as_deref() == Some("node-a")),
        "lease_due takes a due entry",
    )?;
    let b = q.lease_due("node-b", base + 5, 10, 1000).await.map_err(e)?;
    ensure(
        !b.iter().any(|x| x.id == id),
        "a live lease excludes other workers",
    )?;
    // node-a dies; its lease runs out; node-b takes over and node-a's late write is refused.
    let b = q
        .lease_due("node-b", base + 11, 10, 1000)
        .await
        .map_err(e)?;
    let mine = b
        .iter()
        .find(|x| x.id == id)
        .ok_or("expired lease is taken over")?;
    let mut rec = AttemptRecord {
        recipients: mine.recipients.clone(),
        attempts: 1,
        next_attempt: base + 500,
        delay_notified: true,
    };
    rec.recipients[0].state = RecipientState::Delivered;
    rec.recipients[0].status = Some("2.0.0".into());
    ensure(
        matches!(
            q.record_attempt(id, "node-a", base + 12, rec.clone()).await,
            Err(QueueError::LeaseLost(_))
        ),
        "record_attempt by a former owner is LeaseLost",
    )?;
    q.record_attempt(id, "node-b", base + 12, rec.clone())
        .await
        .map_err(e)?;
    let got = q.get(id).await.map_err(e)?.ok_or("get after record")?;
    ensure(
        got.recipients == rec.recipients
            && got.attempts == 1
            && got.next_attempt == base + 500
            && got.delay_notified,
        "record_attempt writes results",
    )?;
    ensure(
        got.lease_owner.is_none() && got.lease_until.is_none(),
        "record_attempt releases the lease",
    )?;
    ensure(
        !q.lease_due("node-c", base + 100, 10, 1000)
            .await
            .map_err(e)?
            .iter()
            .any(|x| x.id == id),
        "not due before next_attempt",
    )?;
    ensure(
        q.retry_now(Some(id), base + 100).await.map_err(e)? == 1,
        "retry_now counts the entry",
    )?;
    let c = q
        .lease_due("node-c", base + 100, 10, 1000)
        .await
        .map_err(e)?;
    ensure(c.iter().any(|x| x.id == id), "due after retry_now")?;
    // Per-recipient results as they happen, under the lease, which stays.
    ensure(
        matches!(
            q.record_delivered(id, "node-b", base + 100, &[1], Some("mx.z"))
                .await,
            Err(QueueError::LeaseLost(_))
        ),
        "record_delivered needs the lease",
    )?;
    q.record_delivered(id, "node-c", base + 100, &[1, 7], Some("mx.z"))
        .await
        .map_err(e)?;
    let got = q
        .get(id)
        .await
        .map_err(e)?
        .ok_or("get after record_delivered")?;
    ensure(
        got.recipients[1].state == RecipientState::Delivered
            && got.recipients[1].remote_mta.as_deref() == Some("mx.z")
            && got.lease_owner.as_deref() == Some("node-c"),
        "record_delivered marks the recipient and keeps the lease",
    )?;
    // The heartbeat: the holder's lease is extended, nobody else's.
    ensure(
        q.renew_leases(&[id], "node-b", base + 105, 10)
            .await
            .map_err(e)?
            == 0,
        "renew_leases skips leases of others",
    )?;
    ensure(
        q.renew_leases(&[id], "node-c", base + 105, 10)
            .await
            .map_err(e)?
            == 1,
        "renew_leases extends the holder's",
    )?;
    ensure(
        !q.lease_due("node-d", base + 112, 10, 1000)
            .await
            .map_err(e)?
            .iter()
            .any(|x| x.id == id),
        "a renewed lease outlasts the first one",
    )?;
    ensure(
        matches!(
            q.complete(id, "node-b", base + 101).await,
            Err(QueueError::LeaseLost(_))
        ),
        "complete needs the lease",
    )?;
    q.complete(id, "node-c", base + 101).await.map_err(e)?;
    ensure(
        q.get(id).await.map_err(e)?.is_none(),
        "complete removes the entry",
    )?;

    let id2 = q
        .enqueue(NewQueueEntry {
            sender: String::new(),
            recipients: vec![QueuedRecipient::new("d@w.example")],
            raw,
            envid: None,
            ret: None,
            require_tls: false,
            created: base,
            next_attempt: base + 1_000_000,
            expires: base + 2_000_000,
        })
        .await
        .map_err(e)?;
    ensure(
        q.get(id2)
            .await
            .map_err(e)?
            .is_some_and(|x| x.sender.is_empty()),
        "null sender stored as empty",
    )?;
    ensure(q.drop_entry(id2).await.map_err(e)?, "drop_entry removes")?;
    ensure(
        !q.drop_entry(id2).await.map_err(e)?,
        "drop_entry of a missing entry is false",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(now: i64) -> NewQueueEntry {
        NewQueueEntry {
            sender: "a@x.example".into(),
            recipients: vec![QueuedRecipient::new("b@y.example")],
            raw: Bytes::from_static(b"Subject: t\r\n\r\nhi\r\n"),
            envid: None,
            ret: None,
            require_tls: false,
            created: now,
            next_attempt: now,
            expires: now + 100,
        }
    }

    #[tokio::test]
    async fn leases_exclude_and_expire() {
        let q = MemoryQueue::new();
        let id = q.enqueue(entry(100)).await.unwrap();
        let a = q.lease_due("a", 100, 10, 10).await.unwrap();
        assert_eq!(a.len(), 1);
        assert!(q.lease_due("b", 105, 10, 10).await.unwrap().is_empty());
        // a crashed: its lease runs out and b takes the entry over; a's late results are refused.
        let b = q.lease_due("b", 111, 10, 10).await.unwrap();
        assert_eq!(b[0].id, id);
        let rec = AttemptRecord {
            recipients: b[0].recipients.clone(),
            attempts: 1,
            next_attempt: 200,
            delay_notified: false,
        };
        assert_eq!(
            q.record_attempt(id, "a", 112, rec.clone()).await,
            Err(QueueError::LeaseLost(id))
        );
        q.record_attempt(id, "b", 112, rec).await.unwrap();
        assert!(q.lease_due("b", 150, 10, 10).await.unwrap().is_empty());
        assert_eq!(q.retry_now(None, 150).await.unwrap(), 1);
        let c = q.lease_due("c", 150, 10, 10).await.unwrap();
        assert_eq!(c[0].attempts, 1);
        q.complete(id, "c", 151).await.unwrap();
        assert!(q.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn memory_queue_meets_the_contract() {
        check_queue_store(&MemoryQueue::new()).await.unwrap();
    }

    #[tokio::test]
    async fn drop_and_empty_refused() {
        let q = MemoryQueue::new();
        let mut e = entry(1);
        e.recipients.clear();
        assert!(matches!(q.enqueue(e).await, Err(QueueError::Invalid(_))));
        let id = q.enqueue(entry(1)).await.unwrap();
        assert!(q.drop_entry(id).await.unwrap());
        assert!(!q.drop_entry(id).await.unwrap());
    }
}
