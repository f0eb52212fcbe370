//! The delivery worker's scheduling: takes messages in (DKIM-signed at submission), leases due
//! entries, groups their pending recipients by destination domain into lanes within the
//! connection limits (one delivery per lane: `delivery`), writes per-recipient results back,
//! reschedules on the backoff schedule, and sends failure, relay and delay DSNs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::ClientConfig;
use crate::delivery::{Job, RecipientResult, deliver_domain};
use crate::dkim::DkimSigners;
use crate::dsn::{self, Action, DsnRecipient, DsnReport};
use crate::queue::{
    AttemptRecord, NewQueueEntry, QueueEntry, QueueError, QueueId, QueueStore, QueuedRecipient,
    RecipientState,
};
use crate::route::Router;
use crate::transaction::{Envelope, EnvelopeRecipient, Outcome};

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Delay before attempt n+1 after attempt n; the last value repeats.
    pub retry_schedule: Vec<Duration>,
    /// After this, pending recipients fail with a DSN.
    pub max_age: Duration,
    /// A delay DSN after this long undelivered (`None`: never).
    pub delay_warning: Option<Duration>,
    /// How long a worker owns entries it leased without renewing: it renews them every third
    /// of this while it works on them, so a dead node's mail is taken up again this soon.
    pub lease: Duration,
    /// Idle wait between scans when nothing woke the worker.
    pub poll_interval: Duration,
    /// Entries leased per round.
    pub batch: usize,
    /// Concurrent SMTP connections of this node.
    pub max_connections: usize,
    /// Concurrent SMTP connections of this node to one recipient domain.
    pub max_connections_per_domain: usize,
    /// Messages sent over one connection before it is closed.
    pub max_messages_per_connection: usize,
    /// Lease owner name; unique per node (host name plus process id is a good choice).
    pub node_id: String,
    /// This server's host name: Reporting-MTA and MAILER-DAEMON of DSNs.
    pub hostname: String,
}

impl QueueConfig {
    pub fn new(hostname: &str) -> QueueConfig {
        let m = |n: u64| Duration::from_secs(60 * n);
        QueueConfig {
            retry_schedule: vec![m(1), m(5), m(15), m(60), m(240)],
            max_age: Duration::from_secs(5 * 24 * 3600),
            delay_warning: Some(Duration::from_secs(4 * 3600)),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(15),
            batch: 100,
            max_connections: 64,
            max_connections_per_domain: 4,
            max_messages_per_connection: 100,
            node_id: format!("{hostname}:{}", std::process::id()),
            hostname: hostname.to_string(),
        }
    }

    fn delay_after(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.retry_schedule.len().saturating_sub(1));
        self.retry_schedule
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }
}

/// Where DSNs go. The binary wires local delivery for local senders; by default they are queued
/// like any message, with the null reverse path.
#[async_trait]
pub trait BounceSink: Send + Sync + 'static {
    async fn send_dsn(&self, to: &str, raw: Vec<u8>) -> Result<(), String>;
}

/// Counters since start, for `/metrics` (queue depth comes from `QueueStore::list`).
#[derive(Debug, Default)]
pub struct Metrics {
    pub delivered: AtomicU64,
    pub deferred: AtomicU64,
    pub failed: AtomicU64,
    pub dsns_sent: AtomicU64,
    pub queued: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub delivered: u64,
    pub deferred: u64,
    pub failed: u64,
    pub dsns_sent: u64,
    pub queued: u64,
}

pub struct Outbound {
    metrics: Metrics,
    /// Connections of this node, across concurrent rounds.
    conn_limit: Arc<Semaphore>,
    domain_limits: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
    queue: Arc<dyn QueueStore>,
    router: Arc<Router>,
    client: ClientConfig,
    cfg: QueueConfig,
    /// Swapped whole by `set_dkim_signers` (a reload); each message signs with the set current
    /// when it is submitted.
    dkim: std::sync::RwLock<Arc<DkimSigners>>,
    bounces: Option<Arc<dyn BounceSink>>,
    wake: tokio::sync::Notify,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl Outbound {
    pub fn new(
        queue: Arc<dyn QueueStore>,
        router: Router,
        client: ClientConfig,
        cfg: QueueConfig,
        dkim: DkimSigners,
        bounces: Option<Arc<dyn BounceSink>>,
    ) -> Arc<Outbound> {
        Arc::new(Outbound {
            metrics: Metrics::default(),
            conn_limit: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
            domain_limits: std::sync::Mutex::new(std::collections::HashMap::new()),
            queue,
            router: Arc::new(router),
            client,
            cfg,
            dkim: std::sync::RwLock::new(Arc::new(dkim)),
            bounces,
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn queue(&self) -> &Arc<dyn QueueStore> {
        &self.queue
    }

    /// A queue entry for `recipients`, due now and retried until `max_age`: the caller sets
    /// `envid`, `ret`, `require_tls` or a later `next_attempt` (a hold) on it before `submit`.
    pub fn new_entry(
        &self,
        sender: impl Into<String>,
        recipients: Vec<QueuedRecipient>,
        raw: Bytes,
    ) -> NewQueueEntry {
        let t = now();
        NewQueueEntry {
            sender: sender.into(),
            recipients,
            raw,
            envid: None,
            ret: None,
            require_tls: false,
            created: t,
            next_attempt: t,
            expires: t.saturating_add(secs(self.cfg.max_age)),
        }
    }

    /// Signs (DKIM, when the From: domain has keys) and queues a message with the entry's own
    /// schedule; returns once the entry is durable, so the submitter's 250 may follow. An entry
    /// whose `next_attempt` lies ahead is held until then unless `retry(Some(id))` makes it due
    /// earlier: the SMTP session holds its entry until its own reply is settled.
    pub async fn submit(&self, mut entry: NewQueueEntry) -> Result<QueueId, QueueError> {
        let signers = self.dkim_signers();
        match signers.sign(&entry.raw) {
            Ok(signed) => entry.raw = Bytes::from(signed),
            // An unsigned message still goes out; the admin sees why.
            Err(e) => tracing::warn!(error = %e, "DKIM signing failed; sending unsigned"),
        }
        let id = self.queue.enqueue(entry).await?;
        tracing::info!(queue_id = id, "queued");
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("wharf_messages_queued_total").increment(1);
        // Exact again at the worker's next refresh; until then the new entry shows at once.
        metrics::gauge!("wharf_queue_size").increment(1.0);
        self.wake.notify_one();
        Ok(id)
    }

    /// Replaces the signing keys: messages submitted from now on are signed with these (a key
    /// added or rotated on disk signs without a restart).
    pub fn set_dkim_signers(&self, signers: DkimSigners) {
        *self.dkim.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(signers);
    }

    /// The keys messages are signed with now.
    pub fn dkim_signers(&self) -> Arc<DkimSigners> {
        // The lock only guards swapping an Arc: a poisoned one still holds a whole value.
        self.dkim.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        MetricsSnapshot {
            delivered: m.delivered.load(Ordering::Relaxed),
            deferred: m.deferred.load(Ordering::Relaxed),
            failed: m.failed.load(Ordering::Relaxed),
            dsns_sent: m.dsns_sent.load(Ordering::Relaxed),
            queued: m.queued.load(Ordering::Relaxed),
        }
    }

    /// `wharf queue retry [id]`: makes entries due now and wakes the worker.
    pub async fn retry(&self, id: Option<QueueId>) -> Result<u64, QueueError> {
        let n = self.queue.retry_now(id, now()).await?;
        self.wake.notify_one();
        Ok(n)
    }

    /// Wakes the worker (new entry, `queue retry`).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` turns true.
    /// Rounds overlap (up to `MAX_ROUNDS`), so one slow destination never holds back the rest
    /// of the queue; the connection limits are shared by all rounds. On shutdown, rounds in
    /// flight get `SHUTDOWN_GRACE` to write their results; the rest is retried after their
    /// leases expire.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        const MAX_ROUNDS: usize = 4;
        const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
        // Often enough for a dashboard; `count` is one COUNT(*) on the SQL store.
        const QUEUE_SIZE_EVERY: Duration = Duration::from_secs(5);
        let mut rounds: JoinSet<()> = JoinSet::new();
        let mut sized: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if sized.is_none_or(|at| at.elapsed() >= QUEUE_SIZE_EVERY) {
                self.publish_queue_size().await;
                sized = Some(std::time::Instant::now());
            }
            while rounds.len() < MAX_ROUNDS {
                match self.lease().await {
                    Ok(entries) if entries.is_empty() => break,
                    Ok(entries) => {
                        let me = self.clone();
                        rounds.spawn(async move { me.process(entries).await });
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "leasing queue entries failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                _ = shutdown.changed() => {}
                Some(_) = rounds.join_next(), if !rounds.is_empty() => {}
            }
        }
        let drain = async { while rounds.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            rounds.shutdown().await;
        }
    }

    /// Sets `wharf_queue_size` to the number of entries in the queue (all nodes).
    pub async fn publish_queue_size(&self) {
        match self.queue.count().await {
            Ok(n) => metrics::gauge!("wharf_queue_size").set(n as f64),
            Err(e) => tracing::warn!(error = %e, "counting queue entries failed"),
        }
    }

    /// One round: lease due entries, attempt them, write results. Returns how many were leased.
    pub async fn run_once(&self) -> Result<usize, QueueError> {
        let entries = self.lease().await?;
        let count = entries.len();
        if count > 0 {
            self.process(entries).await;
        }
        Ok(count)
    }

    async fn lease(&self) -> Result<Vec<QueueEntry>, QueueError> {
        self.queue
            .lease_due(
                &self.cfg.node_id,
                now(),
                secs(self.cfg.lease),
                self.cfg.batch,
            )
            .await
    }

    /// The shared per-domain connection limit.
    fn domain_limit(&self, domain: &str) -> Arc<Semaphore> {
        let per = self.cfg.max_connections_per_domain.max(1);
        let Ok(mut map) = self.domain_limits.lock() else {
            return Arc::new(Semaphore::new(per));
        };
        if map.len() > 10_000 {
            // Forget idle domains so the map stays bounded.
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(per)))
            .clone()
    }

    /// Attempts leased entries and writes their results.
    async fn process(&self, entries: Vec<QueueEntry>) {
        let owner = self.cfg.node_id.clone();
        // The heartbeat keeps the leases while the round runs, however long; a node that dies
        // stops renewing, and its entries are free again within one lease.
        let heartbeat = {
            let queue = self.queue.clone();
            let owner = owner.clone();
            let lease = self.cfg.lease;
            let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
            tokio::spawn(async move {
                let every = (lease / 3).max(Duration::from_secs(1));
                loop {
                    tokio::time::sleep(every).await;
                    match queue.renew_leases(&ids, &owner, now(), secs(lease)).await {
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "queue: renewing leases failed"),
                    }
                }
            })
        };
        self.process_leased(entries, &owner).await;
        heartbeat.abort();
    }

    async fn process_leased(&self, entries: Vec<QueueEntry>, owner: &str) {
        // Messages are read by the lane that sends them, one at a time, so memory is bounded by
        // the number of connections, not by the batch.

        // Group pending recipients: domain → one job per entry.
        let mut by_domain: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let mut per: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (ri, r) in e.recipients.iter().enumerate() {
                if r.state == RecipientState::Pending {
                    per.entry(r.domain()).or_default().push(ri);
                }
            }
            for (domain, rcpts) in per {
                let envelope = Envelope {
                    sender: e.sender.clone(),
                    recipients: rcpts
                        .iter()
                        .map(|&ri| EnvelopeRecipient {
                            address: e.recipients[ri].address.clone(),
                            notify: e.recipients[ri].notify,
                            orcpt: e.recipients[ri].orcpt.clone(),
                        })
                        .collect(),
                    envid: e.envid.clone(),
                    ret: e.ret,
                    require_tls: e.require_tls,
                };
                by_domain.entry(domain).or_default().push(Job {
                    entry: i,
                    queue_id: e.id,
                    envelope,
                    rcpts,
                });
            }
        }

        let mut tasks: JoinSet<Vec<RecipientResult>> = JoinSet::new();
        for (domain, jobs) in by_domain {
            let lanes = self.cfg.max_connections_per_domain.max(1).min(jobs.len());
            let mut split: Vec<Vec<Job>> = (0..lanes).map(|_| Vec::new()).collect();
            for (k, job) in jobs.into_iter().enumerate() {
                split[k % lanes].push(job);
            }
            for lane in split {
                let router = self.router.clone();
                let queue = self.queue.clone();
                let client = self.client.clone();
                let global = self.conn_limit.clone();
                let per_domain = self.domain_limit(&domain);
                let domain = domain.clone();
                let per_conn = self.cfg.max_messages_per_connection.max(1);
                let owner = owner.to_string();
                tasks.spawn(async move {
                    let _domain_permit = per_domain.acquire_owned().await;
                    let _permit = global.acquire_owned().await;
                    let started = std::time::Instant::now();
                    let r =
                        deliver_domain(&router, &queue, &owner, &client, &domain, lane, per_conn)
                            .await;
                    metrics::histogram!("wharf_delivery_seconds", "kind" => "remote")
                        .record(started.elapsed().as_secs_f64());
                    r
                });
            }
        }
        let mut results: Vec<Vec<RecipientResult>> = entries.iter().map(|_| Vec::new()).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(rs) => {
                    for r in rs {
                        let i = r.entry;
                        results[i].push(r);
                    }
                }
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
        for (entry, res) in entries.into_iter().zip(results) {
            if let Err(e) = self.finish(entry, res, owner).await {
                tracing::error!(error = %e, "writing delivery results");
            }
        }
    }

    async fn finish(
        &self,
        entry: QueueEntry,
        results: Vec<RecipientResult>,
        owner: &str,
    ) -> Result<(), QueueError> {
        let t = now();
        let mut rcpts = entry.recipients.clone();
        let mut failed_now = Vec::new();
        let mut relayed = Vec::new();
        for RecipientResult {
            rcpt: ri,
            outcome,
            mx,
            dsn_aware,
            ..
        } in results
        {
            let Some(r) = rcpts.get_mut(ri) else { continue };
            r.remote_mta = mx;
            let counter = match &outcome {
                Outcome::Delivered { .. } => &self.metrics.delivered,
                Outcome::Failed { .. } => &self.metrics.failed,
                Outcome::Deferred { .. } => &self.metrics.deferred,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            match &outcome {
                Outcome::Delivered { .. } => {
                    metrics::counter!("wharf_messages_delivered_total", "kind" => "remote")
                        .increment(1)
                }
                Outcome::Deferred { .. } => {
                    metrics::counter!("wharf_messages_deferred_total").increment(1)
                }
                // Counted with expiries below, once the recipient is final.
                Outcome::Failed { .. } => {}
            }
            match outcome {
                Outcome::Delivered { reply } => {
                    r.state = RecipientState::Delivered;
                    r.status = Some("2.0.0".into());
                    r.diagnostic = Some(format!("smtp; {reply}"));
                    if r.notify.success && !r.notify.never && !dsn_aware {
                        relayed.push(ri);
                    }
                }
                Outcome::Failed { status, diagnostic } => {
                    r.state = RecipientState::Failed;
                    r.status = Some(status);
                    r.diagnostic = Some(diagnostic);
                    failed_now.push(ri);
                }
                Outcome::Deferred { status, diagnostic } => {
                    r.status = Some(status);
                    r.diagnostic = Some(diagnostic);
                }
            }
        }
        let attempts = entry.attempts + 1;
        let expired = t >= entry.expires;
        if expired {
            for (ri, r) in rcpts.iter_mut().enumerate() {
                if r.state == RecipientState::Pending {
                    r.state = RecipientState::Failed;
                    let last = r.diagnostic.clone().unwrap_or_default();
                    r.status = Some("4.4.7".into());
                    r.diagnostic = Some(format!(
                        "x-wharf; delivery time expired; last error: {last}"
                    ));
                    failed_now.push(ri);
                }
            }
        }
        metrics::counter!("wharf_messages_bounced_total").increment(failed_now.len() as u64);
        if !failed_now.is_empty() {
            let list: Vec<&QueuedRecipient> = failed_now
                .iter()
                .filter_map(|&i| rcpts.get(i))
                .filter(|r| r.notify.failure && !r.notify.never)
                .collect();
            self.notify(&entry, &list, Action::Failed, t).await;
        }
        if !relayed.is_empty() {
            // RFC 3461 §5.2.2: success was asked for but the next hop cannot report it.
            let list: Vec<&QueuedRecipient> =
                relayed.iter().filter_map(|&i| rcpts.get(i)).collect();
            self.notify(&entry, &list, Action::Relayed, t).await;
        }
        let pending = rcpts.iter().any(|r| r.state == RecipientState::Pending);
        let mut delay_notified = entry.delay_notified;
        if pending
            && !delay_notified
            && let Some(after) = self.cfg.delay_warning
            && t - entry.created >= secs(after)
        {
            let list: Vec<&QueuedRecipient> = rcpts
                .iter()
                .filter(|r| r.state == RecipientState::Pending && r.notify.delay && !r.notify.never)
                .collect();
            self.notify(&entry, &list, Action::Delayed, t).await;
            delay_notified = true;
        }
        if pending {
            let next = t + secs(self.cfg.delay_after(attempts));
            self.queue
                .record_attempt(
                    entry.id,
                    owner,
                    t,
                    AttemptRecord {
                        recipients: rcpts,
                        attempts,
                        next_attempt: next.min(entry.expires.max(t + 1)),
                        delay_notified,
                    },
                )
                .await
        } else {
            let done = self.queue.complete(entry.id, owner, t).await;
            if done.is_ok() {
                metrics::gauge!("wharf_queue_size").decrement(1.0);
            }
            done
        }
    }

    /// Sends one DSN for `rcpts` unless the message itself came from `<>` (no bounce of a bounce).
    async fn notify(&self, entry: &QueueEntry, rcpts: &[&QueuedRecipient], action: Action, t: i64) {
        if entry.sender.is_empty() || rcpts.is_empty() {
            return;
        }
        // Without the original the report still names recipients and statuses.
        let raw = match self.queue.message(entry.id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(queue_id = entry.id, error = %e, "original unreadable for DSN");
                Bytes::new()
            }
        };
        let list: Vec<DsnRecipient> = rcpts
            .iter()
            .map(|r| DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action,
                status: r.status.clone().unwrap_or_else(|| "4.0.0".into()),
                diagnostic: r.diagnostic.clone(),
                remote_mta: r.remote_mta.clone(),
                last_attempt: t,
                will_retry_until: (action == Action::Delayed).then_some(entry.expires),
            })
            .collect();
        let report = dsn::build(&DsnReport {
            reporting_mta: &self.cfg.hostname,
            to: &entry.sender,
            envid: entry.envid.as_deref(),
            arrival: entry.created,
            recipients: &list,
            original: &raw,
            ret: entry.ret.unwrap_or_default(),
        });
        let sent = match &self.bounces {
            Some(sink) => sink.send_dsn(&entry.sender, report).await,
            None => self
                .queue
                .enqueue(NewQueueEntry {
                    sender: String::new(),
                    recipients: vec![QueuedRecipient::new(&entry.sender)],
                    raw: Bytes::from(report),
                    envid: None,
                    ret: None,
                    require_tls: false,
                    created: t,
                    next_attempt: t,
                    expires: t + secs(self.cfg.max_age),
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        match sent {
            Ok(()) => {
                self.metrics.dsns_sent.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("wharf_dsns_sent_total").increment(1);
                tracing::info!(queue_id = entry.id, to = %entry.sender, action = ?action, recipients = list.len(), "DSN sent")
            }
            Err(e) => {
                tracing::error!(queue_id = entry.id, to = %entry.sender, error = %e, "DSN could not be sent")
            }
        }
    }
}
