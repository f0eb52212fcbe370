//! Group commit for new messages (SMTP delivery and IMAP APPEND). Callers parse their message on a
//! blocking thread, then queue it; one writer task takes everything queued, writes all the new
//! blobs and makes them durable together, commits all the rows in one transaction, and only then
//! answers every waiter. Under load, N deliveries cost one blob flush and one database commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::blob_life::Pins;
use super::{AccountState, Dialect, Shared, Tx, db, encode_keywords, now_secs, to_u32, to_u64};
use crate::model::*;
use crate::text::{FOLD_VERSION, fold};
use crate::{Result, StoreError};

/// Most messages one batch takes; bounds the transaction and the waiters' latency.
const MAX_BATCH_JOBS: usize = 256;
/// Most message bytes one batch takes (a batch always takes at least one message).
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Queued messages before `submit` waits (back-pressure on senders).
const QUEUE_DEPTH: usize = 1024;
/// SQLite: messages added to the trigram index per transaction (`Shared::index_pending`). Each
/// holds the one writer connection for a few milliseconds (about 2 ms a 4 KiB message on two
/// busy cores), the longest a STORE or delivery arriving meanwhile waits for it: 32 at a time held
/// it for up to 60 ms and made STORE's p99 under 50 logged-in IMAP sessions worse than Dovecot's.
const INDEX_BATCH: usize = 4;
/// Messages added to the stem index (FUZZY) per transaction (`Shared::index_stems`); stemming a
/// 4 KiB message costs about a fifth of indexing its trigrams.
const STEM_BATCH: usize = 8;
/// SQLite: most transactions of `INDEX_BATCH` per idle step, each only while no write waits.
const INDEX_SLICES: usize = 8;
/// SQLite: leaf pages of work per step of merging the trigram index's segments (about 40 µs a
/// page: a step holds the writer connection no longer than an `INDEX_BATCH` transaction).
const MERGE_PAGES: usize = 64;
/// How long the queue stays empty before the writer spends time on the search indexes.
const INDEX_IDLE: std::time::Duration = std::time::Duration::from_millis(20);
/// How often an idle writer with nothing known to index looks for rows to index.
const INDEX_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Where one copy of a message goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// SMTP delivery: the account's INBOX; missing or disabled accounts yield `NoSuchAccount`.
    Inbox(AccountId),
    /// SMTP delivery of quarantined mail: the account's Junk mailbox (INBOX when it has none).
    Junk(AccountId),
    /// APPEND into a given mailbox with the client's flags (\Recent is added).
    Mailbox {
        id: MailboxId,
        flags: Flags,
        keywords: Vec<String>,
    },
}

pub(crate) type TargetResult = Result<DeliveryResult>;

/// A message analysed once, ready to be stored.
pub(crate) struct Prepared {
    pub(crate) raw: Bytes,
    pub(crate) hash: String,
    pub(crate) size: i64,
    pub(crate) internal_date: i64,
    summary: Vec<u8>,
    preview: String,
    sent_date: Option<i64>,
    pub(crate) text: TextColumns,
}

/// A message's `message_text` row.
pub(crate) struct TextColumns {
    /// Folded subject, from, to, cc, bcc, headers, body (the `message_text` columns, in order).
    text: [String; 7],
    /// The message has no document attachment: the row is written as extracted already
    /// (`attachments_version` 1), and the extractor never reads the message again.
    no_documents: bool,
}

impl TextColumns {
    /// `raw`: the message `s` was taken from.
    pub(crate) fn new(s: &wharf_mime::SearchText, raw: &[u8]) -> TextColumns {
        let text = [
            fold(&s.subject),
            fold(&s.from),
            fold(&s.to),
            fold(&s.cc),
            fold(&s.bcc),
            fold(&s.headers),
            fold(&s.body),
        ];
        TextColumns {
            text,
            no_documents: !wharf_mime::attachments::has_documents(raw),
        }
    }

    /// Writes the row for `message_id`: inserted, or (`replace`) overwriting the one there; either
    /// way marked as folded by today's `fold` (`FOLD_VERSION`). SQLite's triggers keep the
    /// trigram index in step; PostgreSQL's index is on the columns.
    pub(crate) async fn write(
        &self,
        tx: &mut Tx,
        message_id: MessageId,
        replace: bool,
    ) -> Result<()> {
        let sql = if !replace {
            "INSERT INTO message_text (message_id, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body, text_version, attachments_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        } else {
            "UPDATE message_text SET subject = $2, from_addr = $3, to_addr = $4, cc_addr = $5, bcc_addr = $6, \
                 headers = $7, body = $8, text_version = $9, attachments_version = $10 WHERE message_id = $1"
        };
        self.bind(db::query(sql).bind(message_id))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Binds the row's columns after `message_id`, in table order: the seven texts,
    /// `text_version`, `attachments_version`.
    fn bind(&self, mut q: db::Query) -> db::Query {
        for column in &self.text {
            q = q.bind(column);
        }
        q.bind(FOLD_VERSION).bind(if self.no_documents {
            super::attachments::ATTACHMENTS_VERSION
        } else {
            0
        })
    }
}

impl Prepared {
    /// Binds the `messages` row's columns, in table order: account, blob hash, size, internal
    /// date, `received_at`, sent date, summary, preview.
    pub(crate) fn bind_message_row(
        &self,
        q: db::Query,
        account: AccountId,
        received_at: i64,
    ) -> db::Query {
        q.bind(account)
            .bind(&self.hash)
            .bind(self.size)
            .bind(self.internal_date)
            .bind(received_at)
            .bind(self.sent_date)
            .bind(self.summary.clone())
            .bind(&self.preview)
    }
}

pub(crate) struct WriteJob {
    msg: Prepared,
    targets: Vec<Target>,
    reply: oneshot::Sender<Result<Vec<TargetResult>>>,
}

/// Analyses a message for storing: blob hash, size, summary, preview, sent date, search text.
/// CPU work: callers run it on a blocking thread.
pub(crate) fn prepare(raw: Bytes, internal_date: i64) -> Result<Prepared> {
    let size =
        i64::try_from(raw.len()).map_err(|_| StoreError::Invalid("message too large".into()))?;
    let a = wharf_mime::analyze(&raw);
    let text = TextColumns::new(&a.search, &raw);
    Ok(Prepared {
        hash: crate::blob::blob_hash(&raw),
        raw,
        size,
        internal_date,
        summary: a.summary,
        preview: a.preview.chars().filter(|c| *c != '\0').collect(),
        sent_date: a.sent_date,
        text,
    })
}

pub(crate) fn spawn(shared: Arc<Shared>) -> mpsc::Sender<WriteJob> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(run(shared, rx));
    tx
}

/// Up to `INDEX_SLICES` small trigram- and stem-index transactions, each started only while no delivery is
/// queued and no other write waits for the connection (STOREs and expunges do not go through the
/// queue): rows to index first, then, once none is left, steps of merging the index's segments
/// (`Shared::merge_index_step`) until it reports none to merge (`merged`, cleared whenever rows
/// were indexed, so an idle writer does not open a write transaction every `INDEX_RECHECK` to
/// learn that again). Returns whether work may be left.
async fn index_while_idle(
    shared: &Shared,
    rx: &mpsc::Receiver<WriteJob>,
    merged: &mut bool,
) -> bool {
    for _ in 0..INDEX_SLICES {
        if !rx.is_empty() || shared.writer.writers_waiting() > 0 {
            return true;
        }
        match shared.index_pending(INDEX_BATCH).await {
            Ok(n) if n == INDEX_BATCH => {
                *merged = false;
                continue;
            }
            Ok(n) => *merged &= n == 0,
            // Tried again later; SEARCH stays exact meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "store: search indexing failed");
                return false;
            }
        }
        // The stem index (FUZZY) once the trigram index has caught up, under the same rule.
        if !rx.is_empty() || shared.writer.writers_waiting() > 0 {
            return true;
        }
        match shared.index_stems(STEM_BATCH).await {
            Ok(n) if n == STEM_BATCH => {
                *merged = false;
                continue;
            }
            Ok(n) => *merged &= n == 0,
            // Tried again at the next idle step; FUZZY reads the rows not indexed meanwhile. The
            // merges below go on.
            Err(e) => tracing::warn!(error = %e, "store: stem indexing failed"),
        }
        if *merged {
            return false;
        }
        match shared.merge_index_step(MERGE_PAGES).await {
            Ok(true) => {}
            Ok(false) => {
                *merged = true;
                return false;
            }
            // Tried again once more rows are indexed; queries only read more segments meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "store: search index merge failed");
                *merged = true;
                return false;
            }
        }
    }
    true
}

/// Analyses `raw`, queues it for `targets`, and waits until it is durable (or refused).
pub(crate) async fn submit(
    jobs: &mpsc::Sender<WriteJob>,
    raw: Bytes,
    internal_date: i64,
    targets: Vec<Target>,
) -> Result<Vec<TargetResult>> {
    let msg = tokio::task::spawn_blocking(move || prepare(raw, internal_date))
        .await
        .map_err(|e| StoreError::Backend(format!("message analysis task: {e}")))??;
    let (reply, answer) = oneshot::channel();
    jobs.send(WriteJob {
        msg,
        targets,
        reply,
    })
    .await
    .map_err(|_| StoreError::Backend("store writer has stopped".into()))?;
    answer
        .await
        .map_err(|_| StoreError::Backend("store writer has stopped".into()))?
}

/// Two stages, one batch apart: while one batch's rows are committed and the WAL synced, the next
/// batch's blob files are written and synced. A blob is durable before any row names it either
/// way; the overlap only keeps the disk busy while the other stage waits for its flush.
async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<WriteJob>) {
    let (to_commit, mut blobs_written) = mpsc::channel::<BlobsWritten>(1);
    let activity = Arc::new(std::sync::Mutex::new(Activity {
        in_flight: 0,
        last_done: std::time::Instant::now(),
    }));
    let committer = {
        let shared = shared.clone();
        let activity = activity.clone();
        tokio::spawn(async move {
            while let Some(b) = blobs_written.recv().await {
                commit_and_answer(&shared, b).await;
                let mut a = activity.lock().unwrap_or_else(|e| e.into_inner());
                a.in_flight = a.in_flight.saturating_sub(1);
                a.last_done = std::time::Instant::now();
            }
        })
    };
    // The search indexes are written here, off the delivery path (SQLite: the trigram and the
    // stem index; PostgreSQL: the stem index, each node taking rows `SKIP LOCKED`): only once no
    // batch has been queued or committed for `INDEX_IDLE` (while a batch commits the queue is
    // often empty, its senders waiting for it), a batch at a time, until nothing is left. Rows can
    // also come from elsewhere (the text backfill rewrites rows, an upgraded store has its older
    // messages to index, another node delivered them), so an idle writer looks again every
    // `INDEX_RECHECK`.
    let mut backlog = true;
    // Not known at start (an upgraded store, or segments left by the last run): one step finds out.
    let mut merged = false;
    loop {
        let wait = if backlog { INDEX_IDLE } else { INDEX_RECHECK };
        let first = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(_) => {
                let quiet = {
                    let a = activity.lock().unwrap_or_else(|e| e.into_inner());
                    a.in_flight == 0 && a.last_done.elapsed() >= INDEX_IDLE
                };
                if !quiet {
                    backlog = true;
                    continue;
                }
                backlog = index_while_idle(&shared, &rx, &mut merged).await;
                continue;
            }
        };
        backlog = true;
        let mut bytes = first.msg.raw.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_JOBS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.msg.raw.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        if let Some(b) = write_blobs(&shared, batch).await {
            activity.lock().unwrap_or_else(|e| e.into_inner()).in_flight += 1;
            if to_commit.send(b).await.is_err() {
                break;
            }
        }
    }
    drop(to_commit);
    let _ = committer.await;
}

/// What the group commit is doing, for the writer's idle-time indexing.
struct Activity {
    /// Batches handed to the committer and not answered yet.
    in_flight: usize,
    /// When the committer last answered a batch.
    last_done: std::time::Instant,
}

/// A copy of an error for each waiter of a failed batch.
fn dup_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::AlreadyExists(m) => StoreError::AlreadyExists(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::OverQuota => StoreError::OverQuota,
        StoreError::Limit(m) => StoreError::Limit(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Io(io) => StoreError::Io(std::io::Error::new(io.kind(), io.to_string())),
    }
}

struct Committed {
    results: Vec<Vec<TargetResult>>,
    /// (account, mailbox, highest_modseq) to announce.
    changed: Vec<(AccountId, MailboxId, i64)>,
    /// Accounts whose mailbox list changed (INBOX re-created).
    lists_changed: Vec<AccountId>,
    /// Blobs written for messages that ended up stored nowhere.
    unused: Vec<String>,
}

/// A batch whose blobs are pinned and durable, on its way to the committer.
struct BlobsWritten {
    batch: Vec<WriteJob>,
    pins: Pins,
    started: std::time::Instant,
}

/// Pins the batch's blobs (so no process removes them before the commit names them), then
/// writes them durably; on failure answers every job of the batch with the error.
async fn write_blobs(shared: &Shared, batch: Vec<WriteJob>) -> Option<BlobsWritten> {
    let wanted: Vec<(String, i64)> = batch
        .iter()
        .map(|j| (j.msg.hash.clone(), j.msg.size))
        .collect();
    let pins = match shared.pin_blobs(&wanted).await {
        Ok(p) => p,
        Err(e) => {
            answer_failed(batch, &e);
            return None;
        }
    };
    let items: Vec<(String, Bytes)> = batch
        .iter()
        .map(|j| (j.msg.hash.clone(), j.msg.raw.clone()))
        .collect();
    let blobs = shared.blobs.clone();
    let started = std::time::Instant::now();
    let written = tokio::task::spawn_blocking(move || {
        let refs: Vec<(&str, &[u8])> = items
            .iter()
            .map(|(h, b)| (h.as_str(), b.as_ref()))
            .collect();
        blobs.put_durable(&refs)
    })
    .await;
    let error = match written {
        Ok(Ok(())) => {
            tracing::debug!(messages = batch.len(), took = ?started.elapsed(), "store: batch blobs written");
            return Some(BlobsWritten {
                batch,
                pins,
                started,
            });
        }
        Ok(Err(e)) => StoreError::Io(e),
        Err(e) => StoreError::Backend(format!("blob write task: {e}")),
    };
    finish(shared, batch, pins, Err(error)).await;
    None
}

async fn commit_and_answer(shared: &Shared, b: BlobsWritten) {
    let outcome = commit_with_retry(shared, &b.batch, &b.pins).await;
    let total = b.started.elapsed();
    metrics::histogram!("wharf_store_seconds", "op" => "group_commit").record(total.as_secs_f64());
    tracing::debug!(messages = b.batch.len(), total = ?total, "store: group commit");
    finish(shared, b.batch, b.pins, outcome).await;
}

fn answer_failed(batch: Vec<WriteJob>, e: &StoreError) {
    tracing::error!(error = %e, messages = batch.len(), "store: group commit failed");
    for job in batch {
        let _ = job.reply.send(Err(dup_error(e)));
    }
}

/// Removes the files no row kept, publishes the changes and answers every job; after a failure,
/// releases the batch's pins first.
async fn finish(shared: &Shared, batch: Vec<WriteJob>, pins: Pins, outcome: Result<Committed>) {
    match outcome {
        Ok(c) => {
            if let Err(e) = shared.collect_garbage(c.unused).await {
                tracing::warn!(error = %e, "store: could not remove unused blobs (the sweep will)");
            }
            for (account, mailbox, modseq) in c.changed {
                shared.publish_changed(account, mailbox, modseq);
            }
            for account in c.lists_changed {
                shared.announce(account, MailboxEvent::MailboxesChanged);
            }
            for (job, result) in batch.into_iter().zip(c.results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(e) => {
            shared.unpin_blobs(pins).await;
            answer_failed(batch, &e);
        }
    }
}

async fn commit_with_retry(shared: &Shared, batch: &[WriteJob], pins: &Pins) -> Result<Committed> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = shared.begin_write_group().await?;
        match commit_batch(shared, &mut tx, batch, pins).await {
            Ok(c) => {
                tx.commit().await?;
                // Durable before anyone is answered (see `begin_write_group`).
                shared.sync_wal().await?;
                return Ok(c);
            }
            // PostgreSQL deadlock or serialization failure: the whole transaction is void, redo it.
            Err(StoreError::Conflict(m)) if attempt < 3 => {
                tracing::warn!(attempt, error = %m, "store: batch conflicted, retrying");
                drop(tx);
            }
            Err(e) => return Err(e),
        }
    }
}

struct Accepted {
    job: usize,
    target: usize,
    account: AccountId,
    mailbox: MailboxId,
    flags: Flags,
    keywords: String,
    uid: i64,
    modseq: i64,
    uid_validity: u32,
    message_id: MessageId,
}

async fn inbox_of(shared: &Shared, tx: &mut Tx, account: AccountId) -> Result<(MailboxId, bool)> {
    let id: Option<i64> =
        db::query_scalar("SELECT id FROM mailboxes WHERE account_id = $1 AND name = 'INBOX'")
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
    match id {
        Some(id) => Ok((id, false)),
        // Every account has an INBOX; one lost to an old bug or a manual edit comes back here.
        None => Ok((
            shared
                .insert_mailbox(tx, account, "INBOX", None, true)
                .await?,
            true,
        )),
    }
}

/// Locks the account row (as `Shared::lock_account`) and reads its INBOX's id in the same
/// statement; None when the account does not exist.
async fn lock_account_and_inbox(
    shared: &Shared,
    tx: &mut Tx,
    account: AccountId,
) -> Result<Option<(AccountState, Option<MailboxId>)>> {
    let sql = shared.dialect.pick(
        "SELECT a.quota_bytes, a.used_bytes, a.disabled, \
         (SELECT m.id FROM mailboxes m WHERE m.account_id = a.id AND m.name = 'INBOX') AS inbox \
         FROM accounts a WHERE a.id = $1",
        "SELECT a.quota_bytes, a.used_bytes, a.disabled, \
         (SELECT m.id FROM mailboxes m WHERE m.account_id = a.id AND m.name = 'INBOX') AS inbox \
         FROM accounts a WHERE a.id = $1 FOR UPDATE",
    );
    let Some(row) = db::query(sql)
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((super::account_state(&row)?, row.try_get("inbox")?)))
}

/// The account's Junk mailbox (special use `\Junk`), if it has one.
async fn junk_of(tx: &mut Tx, account: AccountId) -> Result<Option<MailboxId>> {
    let rows = db::query(
        "SELECT id, special_use FROM mailboxes WHERE account_id = $1 AND special_use IS NOT NULL ORDER BY id",
    )
    .bind(account)
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let role: Option<String> = r.try_get("special_use")?;
        if role.as_deref().and_then(SpecialUse::from_attribute) == Some(SpecialUse::Junk) {
            return Ok(Some(r.try_get("id")?));
        }
    }
    Ok(None)
}

/// PostgreSQL: the `messages`, `message_text` and `mailbox_messages` rows of a message stored
/// once in `entry`'s account, in one statement (data-modifying CTEs); returns the message id.
async fn insert_all_rows(
    tx: &mut Tx,
    m: &Prepared,
    entry: &Accepted,
    received_at: i64,
) -> Result<MessageId> {
    let q = db::query(
        "WITH m AS (INSERT INTO messages (account_id, blob_hash, size, internal_date, received_at, sent_date, summary, preview) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id), \
              t AS (INSERT INTO message_text (message_id, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body, text_version, attachments_version) \
                    SELECT id, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM m) \
         INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, modseq, size, internal_date, saved_at) \
         SELECT $18, $19, id, $20, $21, $22, $3, $4, $23 FROM m RETURNING message_id",
    );
    m.text
        .bind(m.bind_message_row(q, entry.account, received_at))
        .bind(entry.mailbox)
        .bind(entry.uid)
        .bind(i64::from(entry.flags.0))
        .bind(&entry.keywords)
        .bind(entry.modseq)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0usize)
}

async fn commit_batch(
    shared: &Shared,
    tx: &mut Tx,
    batch: &[WriteJob],
    pins: &Pins,
) -> Result<Committed> {
    // Which account each APPEND target belongs to.
    let mut mailbox_owner: HashMap<MailboxId, Option<AccountId>> = HashMap::new();
    for job in batch {
        for t in &job.targets {
            if let Target::Mailbox { id, .. } = t
                && !mailbox_owner.contains_key(id)
            {
                let owner: Option<i64> =
                    db::query_scalar("SELECT account_id FROM mailboxes WHERE id = $1")
                        .bind(*id)
                        .fetch_optional(&mut *tx)
                        .await?;
                mailbox_owner.insert(*id, owner);
            }
        }
    }
    let mut accounts: BTreeSet<AccountId> = mailbox_owner.values().flatten().copied().collect();
    for job in batch {
        for t in &job.targets {
            if let Target::Inbox(a) | Target::Junk(a) = t {
                accounts.insert(*a);
            }
        }
    }
    // Ascending order: the lock order every PostgreSQL writer follows. The INBOX's id comes
    // with the lock (one statement, not two per account and batch).
    let mut states: HashMap<AccountId, AccountState> = HashMap::new();
    // Delivery mailbox per (account, junk).
    let mut inboxes: HashMap<(AccountId, bool), MailboxId> = HashMap::new();
    for a in &accounts {
        if let Some((s, inbox)) = lock_account_and_inbox(shared, tx, *a).await? {
            states.insert(*a, s);
            if let Some(inbox) = inbox {
                inboxes.insert((*a, false), inbox);
            }
        }
    }
    let start_used: HashMap<AccountId, i64> = states.iter().map(|(a, s)| (*a, s.used)).collect();

    let mut results: Vec<Vec<Option<TargetResult>>> = batch
        .iter()
        .map(|j| j.targets.iter().map(|_| None).collect())
        .collect();
    let mut lists_changed = Vec::new();
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut duplicates: Vec<(usize, usize, usize)> = Vec::new();

    for (ji, job) in batch.iter().enumerate() {
        let size = job.msg.size;
        let mut seen_inbox: HashMap<AccountId, usize> = HashMap::new();
        for (ti, t) in job.targets.iter().enumerate() {
            let (account, mailbox, flags, keywords) = match t {
                Target::Inbox(a) | Target::Junk(a) => {
                    let junk = matches!(t, Target::Junk(_));
                    if let Some(first) = seen_inbox.get(a) {
                        duplicates.push((ji, ti, *first));
                        continue;
                    }
                    seen_inbox.insert(*a, ti);
                    if states.get(a).is_none_or(|s| s.disabled) {
                        results[ji][ti] = Some(Ok(DeliveryResult::NoSuchAccount));
                        continue;
                    }
                    let mailbox = match inboxes.get(&(*a, junk)) {
                        Some(m) => *m,
                        None => {
                            let junk_box = if junk { junk_of(tx, *a).await? } else { None };
                            let m = match junk_box {
                                Some(m) => m,
                                None => {
                                    let (m, created) = inbox_of(shared, tx, *a).await?;
                                    if created {
                                        lists_changed.push(*a);
                                    }
                                    m
                                }
                            };
                            inboxes.insert((*a, junk), m);
                            m
                        }
                    };
                    (*a, mailbox, Flags::RECENT, String::new())
                }
                Target::Mailbox {
                    id,
                    flags,
                    keywords,
                } => {
                    let Some(a) = mailbox_owner
                        .get(id)
                        .copied()
                        .flatten()
                        .filter(|a| states.contains_key(a))
                    else {
                        results[ji][ti] = Some(Err(StoreError::NotFound(format!("mailbox {id}"))));
                        continue;
                    };
                    (
                        a,
                        *id,
                        flags.union(Flags::RECENT),
                        encode_keywords(keywords),
                    )
                }
            };
            let Some(state) = states.get_mut(&account) else {
                results[ji][ti] = Some(Ok(DeliveryResult::NoSuchAccount));
                continue;
            };
            if state.over_quota(size) {
                let message_alone_exceeds = size > state.quota;
                results[ji][ti] = Some(Ok(DeliveryResult::OverQuota {
                    message_alone_exceeds,
                }));
                continue;
            }
            state.used += size;
            accepted.push(Accepted {
                job: ji,
                target: ti,
                account,
                mailbox,
                flags,
                keywords,
                uid: 0,
                modseq: 0,
                uid_validity: 0,
                message_id: 0,
            });
        }
    }

    // UIDs and modseqs, mailbox by mailbox, in arrival order within each.
    let mut per_mailbox: BTreeMap<MailboxId, Vec<usize>> = BTreeMap::new();
    for (i, a) in accepted.iter().enumerate() {
        per_mailbox.entry(a.mailbox).or_default().push(i);
    }
    let mut changed = Vec::new();
    for (mailbox, idxs) in &per_mailbox {
        let n = idxs.len() as i64;
        let (next, highest, validity) = shared.bump_mailbox(tx, *mailbox, n, n).await?;
        for (k, i) in idxs.iter().enumerate() {
            let a = &mut accepted[*i];
            a.uid = next - n + k as i64;
            a.modseq = highest - n + 1 + k as i64;
            a.uid_validity = validity;
        }
        changed.push((accepted[idxs[0]].account, *mailbox, highest));
    }

    // One `messages` row per (message, account), one blob reference per such row. Blob rows are
    // shared between accounts, so they are locked in hash order (as `release_messages` does).
    let mut per_job: Vec<BTreeMap<AccountId, MessageId>> = vec![BTreeMap::new(); batch.len()];
    for a in &accepted {
        per_job[a.job].entry(a.account).or_insert(0);
    }
    let mut refs: BTreeMap<String, i64> = BTreeMap::new();
    for (job, rows) in batch.iter().zip(&per_job) {
        if !rows.is_empty() {
            *refs.entry(job.msg.hash.clone()).or_insert(0) += rows.len() as i64;
        }
    }
    shared.settle_pins(tx, pins, &refs).await?;
    let unused: Vec<String> = pins
        .keys()
        .filter(|h| !refs.contains_key(*h))
        .cloned()
        .collect();
    let received_at = now_secs();
    // PostgreSQL: a message stored once in an account (the usual case) has its three rows
    // written by one statement (`insert_all_rows`), not three round trips.
    let mut entries_of: HashMap<(usize, AccountId), Vec<usize>> = HashMap::new();
    if shared.dialect == Dialect::Postgres {
        for (i, a) in accepted.iter().enumerate() {
            entries_of.entry((a.job, a.account)).or_default().push(i);
        }
    }
    let mut entry_written = vec![false; accepted.len()];
    for (ji, (job, rows)) in batch.iter().zip(per_job.iter_mut()).enumerate() {
        let m = &job.msg;
        for (account, id) in rows.iter_mut() {
            if let Some([only]) = entries_of.get(&(ji, *account)).map(Vec::as_slice) {
                *id = insert_all_rows(tx, m, &accepted[*only], received_at).await?;
                entry_written[*only] = true;
                continue;
            }
            // SQLite would hand a deleted newest message's id to the next one (rowid = max + 1);
            // a counter that only grows makes every id new (PostgreSQL's identity already is).
            let q = match shared.dialect {
                Dialect::Sqlite => {
                    let fresh: i64 = db::query_scalar(
                        "UPDATE counters SET value = value + 1 WHERE name = 'message_id' RETURNING value",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    db::query(
                        "INSERT INTO messages (id, account_id, blob_hash, size, internal_date, received_at, sent_date, summary, preview) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    )
                    .bind(fresh)
                }
                Dialect::Postgres => db::query(
                    "INSERT INTO messages (account_id, blob_hash, size, internal_date, received_at, sent_date, summary, preview) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                ),
            };
            *id = m
                .bind_message_row(q, *account, received_at)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0usize)?;
            m.text.write(tx, *id, false).await?;
        }
    }
    for a in accepted.iter_mut() {
        a.message_id = per_job[a.job][&a.account];
    }

    for (a, _) in accepted
        .iter()
        .zip(&entry_written)
        .filter(|(_, done)| !**done)
    {
        db::query(
            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, modseq, size, internal_date, saved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(a.mailbox)
        .bind(a.uid)
        .bind(a.message_id)
        .bind(i64::from(a.flags.0))
        .bind(&a.keywords)
        .bind(a.modseq)
        .bind(batch[a.job].msg.size)
        .bind(batch[a.job].msg.internal_date)
        .bind(super::now_secs())
        .execute(&mut *tx)
        .await?;
    }
    for (account, state) in &states {
        let before = start_used.get(account).copied().unwrap_or(state.used);
        shared.add_used(tx, *account, state.used - before).await?;
    }

    for a in &accepted {
        results[a.job][a.target] = Some(Ok(DeliveryResult::Stored(AppendOutcome {
            mailbox_id: a.mailbox,
            uid_validity: a.uid_validity,
            uid: to_u32(a.uid, "uid")?,
            modseq: to_u64(a.modseq, "modseq")?,
            message_id: a.message_id,
        })));
    }
    for (ji, ti, first) in duplicates {
        let copy = match &results[ji][first] {
            Some(Ok(r)) => Ok(r.clone()),
            Some(Err(e)) => Err(dup_error(e)),
            None => Err(StoreError::Backend(
                "duplicate recipient without a result".into(),
            )),
        };
        results[ji][ti] = Some(copy);
    }
    let results = results
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|x| {
                    x.unwrap_or_else(|| {
                        Err(StoreError::Backend("target left without a result".into()))
                    })
                })
                .collect()
        })
        .collect();
    Ok(Committed {
        results,
        changed,
        lists_changed,
        unused,
    })
}
