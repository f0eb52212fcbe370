//! The delivery worker: takes queued messages in (DKIM-signed at submission), leases due entries,
//! groups recipients by destination domain, delivers over as few connections as possible within
//! the concurrency limits, writes per-recipient results back, reschedules on the backoff
//! schedule, and sends failure and delay DSNs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::TlsPolicy;
use crate::client::{ClientConfig, ClientError, SmtpClient};
use crate::dane::{DanePolicy, HostDane};
use crate::dkim::DkimSigners;
use crate::dsn::{self, Action, DsnRecipient, DsnReport};
use crate::mta_sts::Mode;
use crate::queue::{
    AttemptRecord, NewQueueEntry, QueueEntry, QueueError, QueueId, QueueStore, QueuedRecipient,
    RecipientState,
};
use crate::route::{Hop, RouteError, Router};
use crate::transaction::{Envelope, EnvelopeRecipient, Outcome, Ret};

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Delay before attempt n+1 after attempt n; the last value repeats.
    pub retry_schedule: Vec<Duration>,
    /// After this, pending recipients fail with a DSN.
    pub max_age: Duration,
    /// A delay DSN after this long undelivered (`None`: never).
    pub delay_warning: Option<Duration>,
    /// How long a worker owns entries it leased; must exceed one delivery round.
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
            lease: Duration::from_secs(15 * 60),
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

/// What submission hands over: recipients that are not local.
#[derive(Debug, Clone)]
pub struct Submission {
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    pub raw: Bytes,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    /// RFC 8689 REQUIRETLS from the submitter's MAIL FROM.
    pub require_tls: bool,
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
    dkim: Arc<DkimSigners>,
    bounces: Option<Arc<dyn BounceSink>>,
    wake: tokio::sync::Notify,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

struct Job {
    entry: usize,
    queue_id: QueueId,
    envelope: Envelope,
    /// Index in the entry's recipient list of each envelope recipient.
    rcpts: Vec<usize>,
}

struct Result1 {
    entry: usize,
    rcpt: usize,
    outcome: Outcome,
    mx: Option<String>,
    /// The accepting server advertised DSN, so it took over NOTIFY=SUCCESS reporting.
    dsn_aware: bool,
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
            dkim: Arc::new(dkim),
            bounces,
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn queue(&self) -> &Arc<dyn QueueStore> {
        &self.queue
    }

    /// Signs (DKIM, when the From: domain has keys) and queues a message; returns once the entry
    /// is durable, so the submitter's 250 may follow.
    pub async fn submit(&self, s: Submission) -> Result<QueueId, QueueError> {
        self.submit_held(s, Duration::ZERO).await
    }

    /// `submit`, with the first attempt `hold` from now unless `retry(Some(id))` makes it due
    /// earlier: the SMTP session holds its entry until its own reply is settled.
    pub async fn submit_held(&self, s: Submission, hold: Duration) -> Result<QueueId, QueueError> {
        let raw = match self.dkim.sign(&s.raw) {
            Ok(signed) => Bytes::from(signed),
            Err(e) => {
                // An unsigned message still goes out; the admin sees why.
                tracing::warn!(error = %e, "DKIM signing failed; sending unsigned");
                s.raw
            }
        };
        let t = now();
        let id = self
            .queue
            .enqueue(NewQueueEntry {
                sender: s.sender,
                recipients: s.recipients,
                raw,
                envid: s.envid,
                ret: s.ret,
                require_tls: s.require_tls,
                created: t,
                next_attempt: t + secs(hold),
                expires: t + secs(self.cfg.max_age),
            })
            .await?;
        tracing::info!(queue_id = id, "queued");
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("wharf_messages_queued_total").increment(1);
        // Exact again at the worker's next refresh; until then the new entry shows at once.
        metrics::gauge!("wharf_queue_size").increment(1.0);
        self.wake.notify_one();
        Ok(id)
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

        let mut tasks: JoinSet<Vec<Result1>> = JoinSet::new();
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
                tasks.spawn(async move {
                    let _domain_permit = per_domain.acquire_owned().await;
                    let _permit = global.acquire_owned().await;
                    let started = std::time::Instant::now();
                    let r = deliver_domain(&router, &queue, &client, &domain, lane, per_conn).await;
                    metrics::histogram!("wharf_delivery_seconds", "kind" => "remote")
                        .record(started.elapsed().as_secs_f64());
                    r
                });
            }
        }
        let mut results: Vec<Vec<Result1>> = entries.iter().map(|_| Vec::new()).collect();
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
            if let Err(e) = self.finish(entry, res, &owner).await {
                tracing::error!(error = %e, "writing delivery results");
            }
        }
    }

    async fn finish(
        &self,
        entry: QueueEntry,
        results: Vec<Result1>,
        owner: &str,
    ) -> Result<(), QueueError> {
        let t = now();
        let mut rcpts = entry.recipients.clone();
        let mut failed_now = Vec::new();
        let mut relayed = Vec::new();
        for Result1 {
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

fn all(jobs: &[Job], outcome: &Outcome, mx: Option<&str>) -> Vec<Result1> {
    jobs.iter()
        .flat_map(|j| {
            j.rcpts.iter().map(|&ri| Result1 {
                entry: j.entry,
                rcpt: ri,
                outcome: outcome.clone(),
                mx: mx.map(str::to_string),
                dsn_aware: false,
            })
        })
        .collect()
}

/// DANE (RFC 7672) for an MX-routed domain whose MX RRset is DNSSEC-secure: each host with a
/// secure TLSA RRset gets mandatory TLS (authenticated by the records when any is usable);
/// a host whose TLSA lookup failed is not used; no host left is a deferral. Returns whether DANE
/// applies to the domain (some host has secure TLSA records), in which case MTA-STS is skipped.
async fn apply_dane(
    router: &Router,
    domain: &str,
    hops: Vec<Hop>,
    base_tls: TlsPolicy,
) -> Result<(Vec<Hop>, bool), Outcome> {
    if !router.dane_enabled() || router.is_relayed(domain) {
        return Ok((hops, false));
    }
    match router.mx_secure(domain).await {
        Ok(true) => {}
        Ok(false) => {
            // RFC 7672 §2.2.1: TLSA records of hosts named by an insecure MX RRset mean nothing.
            tracing::debug!(%domain, "DANE: MX RRset not DNSSEC-secure; DANE does not apply");
            return Ok((hops, false));
        }
        Err(e) => {
            let text = format!("DANE: {domain}: MX lookup failed: {e}");
            tracing::warn!(%domain, "{text}; deferred");
            return Err(Outcome::deferred("4.7.5", text));
        }
    }
    let mut kept = Vec::with_capacity(hops.len());
    let mut applies = false;
    let mut failures = Vec::new();
    for mut h in hops {
        match router.tlsa(&h.host).await {
            HostDane::None => {
                tracing::debug!(%domain, mx = %h.host, "DANE: no secure TLSA records");
                kept.push(h);
            }
            HostDane::Authenticate(records) => {
                applies = true;
                let policy = DanePolicy {
                    host: h.host.clone(),
                    names: vec![h.host.clone(), domain.to_string()],
                    records,
                };
                tracing::info!(%domain, mx = %h.host, tlsa = %policy.summary(), "DANE: TLS and TLSA match required");
                h.dane = Some(Arc::new(policy));
                kept.push(h);
            }
            HostDane::EncryptOnly(records) => {
                applies = true;
                let list: Vec<String> = records.iter().map(|t| t.to_string()).collect();
                tracing::info!(%domain, mx = %h.host, tlsa = %list.join(", "), "DANE: only unusable TLSA records; TLS required without authentication");
                // Never weaken a stricter configured policy (`required-verified`).
                if matches!(
                    h.tls.unwrap_or(base_tls),
                    TlsPolicy::Disabled | TlsPolicy::Opportunistic
                ) {
                    h.tls = Some(TlsPolicy::Required);
                }
                kept.push(h);
            }
            HostDane::Indeterminate(e) => {
                tracing::warn!(%domain, mx = %h.host, "DANE: {}: {e}; host not used", h.host);
                failures.push(format!("{}: {e}", h.host));
            }
        }
    }
    if kept.is_empty() {
        let text = format!(
            "DANE: TLSA lookups for the mail exchangers of {domain} failed ({})",
            failures.join("; ")
        );
        return Err(Outcome::deferred("4.7.5", text));
    }
    Ok((kept, applies))
}

/// MTA-STS for an MX-routed domain: in enforce mode only MX hosts the policy names are used,
/// each with verified TLS; none left is a deferral, never a fallback. Testing mode only logs.
async fn apply_mta_sts(
    router: &Router,
    domain: &str,
    hops: Vec<Hop>,
) -> Result<(Vec<Hop>, bool), Outcome> {
    if router.is_relayed(domain) {
        return Ok((hops, false));
    }
    let Some(policy) = router.mta_sts_policy(domain).await else {
        return Ok((hops, false));
    };
    match policy.mode {
        Mode::None => Ok((hops, false)),
        Mode::Testing => {
            for h in hops.iter().filter(|h| !policy.matches(&h.host)) {
                tracing::warn!(%domain, mx = %h.host, policy_mx = ?policy.mx, "MTA-STS (testing): MX not in policy");
            }
            Ok((hops, false))
        }
        Mode::Enforce => {
            let before: Vec<String> = hops.iter().map(|h| h.host.clone()).collect();
            let kept: Vec<Hop> = hops
                .into_iter()
                .filter(|h| policy.matches(&h.host))
                .map(|mut h| {
                    h.tls = Some(TlsPolicy::RequiredVerified);
                    h
                })
                .collect();
            if kept.is_empty() {
                let text = format!(
                    "MTA-STS policy of {domain} (enforce) matches none of its MX hosts {before:?} (policy mx: {:?})",
                    policy.mx
                );
                tracing::warn!(%domain, "{text}; deferred");
                return Err(Outcome::deferred("4.7.5", text));
            }
            Ok((kept, true))
        }
    }
}

/// Delivers a lane of jobs for one domain: hops in order, addresses in order; a connection is
/// reused for the next message while the server leaves the session usable.
async fn deliver_domain(
    router: &Router,
    queue: &Arc<dyn QueueStore>,
    base: &ClientConfig,
    domain: &str,
    jobs: Vec<Job>,
    per_connection: usize,
) -> Vec<Result1> {
    let hops: Vec<Hop> = match router.route(domain).await {
        Ok(h) => h,
        Err(RouteError::Permanent { status, text }) => {
            tracing::info!(%domain, error = %text, "routing failed permanently");
            return all(&jobs, &Outcome::failed(status, text), None);
        }
        Err(RouteError::Temporary(text)) => {
            tracing::info!(%domain, error = %text, "routing deferred");
            return all(&jobs, &Outcome::deferred("4.4.3", text), None);
        }
    };
    let (hops, dane_applies) = match apply_dane(router, domain, hops, base.tls).await {
        Ok(h) => h,
        Err(outcome) => return all(&jobs, &outcome, None),
    };
    // RFC 8461 §2: where DANE applies, MTA-STS is not consulted.
    let (hops, sts_enforced) = if dane_applies {
        (hops, false)
    } else {
        match apply_mta_sts(router, domain, hops).await {
            Ok(h) => h,
            Err(outcome) => return all(&jobs, &outcome, None),
        }
    };
    let (strict, normal): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.envelope.require_tls);
    let mut out = send_over(&hops, queue, normal, base, domain, per_connection).await;
    if !strict.is_empty() {
        // RFC 8689 §4.2.1: the next hop must be authenticated (DANE, an enforced MTA-STS
        // policy, or a configured relay) and its certificate verified. Hosts DANE authenticates
        // keep their TLSA records; any other host must verify against the trust anchors.
        let dane_authenticated = hops.iter().any(|h| h.dane.is_some());
        if sts_enforced || dane_authenticated || router.is_relayed(domain) {
            let verified: Vec<Hop> = hops
                .iter()
                .cloned()
                .map(|mut h| {
                    if h.dane.is_none() {
                        h.tls = Some(TlsPolicy::RequiredVerified);
                    }
                    h
                })
                .collect();
            out.extend(send_over(&verified, queue, strict, base, domain, per_connection).await);
        } else {
            let text = format!(
                "REQUIRETLS: the mail exchangers of {domain} cannot be authenticated (no DANE TLSA records, no MTA-STS policy in enforce mode)"
            );
            tracing::info!(%domain, "{text}");
            out.extend(all(&strict, &Outcome::failed("5.7.30", text), None));
        }
    }
    out
}

/// Sends jobs over the hops in order (see `deliver_domain`).
async fn send_over(
    hops: &[Hop],
    queue: &Arc<dyn QueueStore>,
    jobs: Vec<Job>,
    base: &ClientConfig,
    domain: &str,
    per_connection: usize,
) -> Vec<Result1> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut remaining: VecDeque<Job> = jobs.into();
    let mut last_error: Option<ClientError> = None;
    'hops: for hop in hops {
        let mut cfg = base.clone();
        if let Some(tls) = hop.tls {
            cfg.tls = tls;
        }
        if hop.credentials.is_some() {
            cfg.auth = hop.credentials.clone();
        }
        cfg.dane = hop.dane.clone();
        for addr in &hop.addrs {
            let mut current: Option<SmtpClient> = None;
            let mut sent_here = 0usize;
            while let Some(job) = remaining.pop_front() {
                let mut client = match current.take() {
                    Some(c) if c.reusable() && sent_here < per_connection => c,
                    stale => {
                        if let Some(c) = stale {
                            let _ = c.quit().await;
                        }
                        sent_here = 0;
                        match SmtpClient::connect(*addr, &hop.host, &cfg).await {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::info!(%domain, mx = %hop.host, %addr, error = %e, "connection failed");
                                last_error = Some(e);
                                remaining.push_front(job);
                                break;
                            }
                        }
                    }
                };
                let tls = client
                    .tls()
                    .map(|t| {
                        format!(
                            "{} {}{}",
                            t.version,
                            t.cipher,
                            match (&t.dane, t.verified) {
                                (Some(how), _) => format!(" dane-verified ({how})"),
                                (None, true) => " verified".into(),
                                (None, false) => " unverified".into(),
                            }
                        )
                    })
                    .unwrap_or_else(|| "none".into());
                let raw = match queue.message(job.queue_id).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(queue_id = job.queue_id, error = %e, "queued message unreadable");
                        out.extend(all(
                            std::slice::from_ref(&job),
                            &Outcome::deferred("4.3.0", format!("queued message unreadable: {e}")),
                            None,
                        ));
                        current = Some(client);
                        continue;
                    }
                };
                let dsn_aware = client.capabilities().dsn;
                match client.send(&job.envelope, &raw).await {
                    Ok(outcomes) => {
                        for (k, outcome) in outcomes.into_iter().enumerate() {
                            let Some(&ri) = job.rcpts.get(k) else {
                                continue;
                            };
                            tracing::info!(
                                queue_id = job.queue_id,
                                rcpt = %job.envelope.recipients[k].address,
                                mx = %hop.host,
                                %addr,
                                tls = %tls,
                                result = ?outcome,
                                "delivery attempt"
                            );
                            out.push(Result1 {
                                entry: job.entry,
                                rcpt: ri,
                                outcome,
                                mx: Some(hop.host.clone()),
                                dsn_aware,
                            });
                        }
                        sent_here += 1;
                        current = Some(client);
                    }
                    Err(e) => {
                        // The transaction broke mid-way: the server may hold part of it, so this
                        // message waits for the next round rather than trying another host now.
                        tracing::info!(queue_id = job.queue_id, mx = %hop.host, %addr, tls = %tls, error = %e, "delivery attempt failed");
                        out.extend(all(
                            std::slice::from_ref(&job),
                            &e.outcome(),
                            Some(&hop.host),
                        ));
                    }
                }
            }
            if let Some(c) = current.take() {
                let _ = c.quit().await;
            }
            if remaining.is_empty() {
                break 'hops;
            }
        }
    }
    if !remaining.is_empty() {
        let outcome = match &last_error {
            Some(e) => e.outcome(),
            None => Outcome::deferred("4.4.1", format!("no mail exchanger of {domain} reachable")),
        };
        let jobs: Vec<Job> = remaining.into();
        out.extend(all(&jobs, &outcome, None));
    }
    out
}
