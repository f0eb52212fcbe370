//! The reports Wharf sends (`[reports]`): DMARC aggregate reports about the mail the inbound
//! checks saw, TLS-RPT reports about the TLS sessions the delivery worker opened. Counts are
//! kept in memory (bounded), added to the store's tallies every minute and at shutdown, and
//! each finished UTC day's reports are made and queued once across every node (the store's
//! claim), then leave like any outbound mail: DKIM-signed, retried, bounced to `from`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;
use tokio::sync::watch;
use tracing::{info, warn};
use wharf_inbound::aggregate::{self, Observation};
use wharf_inbound::report_dns::{ReportDns, TlsRptDestination};
use wharf_inbound::tlsrpt::{self, SessionFailure, SessionItem};
use wharf_outbound::queue::QueuedRecipient;
use wharf_outbound::report_post::{HttpsTarget, PostError, post_report};
use wharf_outbound::tls_report::{ReportPolicy, TlsResultSink, TlsSession};
use wharf_outbound::{Outbound, TrustAnchors};
use wharf_store::tally::{Tally, TallyStore, utc_day};

use crate::config::Loaded;

pub const DMARC: &str = "dmarc";
pub const TLSRPT: &str = "tlsrpt";

/// Distinct counters held between flushes; beyond it new kinds of events are dropped (and
/// counted in `wharf_report_counts_dropped_total`) rather than growing memory under a flood.
const MAX_PENDING: usize = 50_000;
const FLUSH_EVERY: Duration = Duration::from_secs(60);
const SEND_CHECK_EVERY: Duration = Duration::from_secs(600);
/// One try of posting a TLS-RPT report to one address.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

type Key = (&'static str, i64, String, String);

/// The in-memory counts, shared by the inbound checks and the delivery worker.
#[derive(Default)]
pub struct Counter {
    pending: std::sync::Mutex<HashMap<Key, u64>>,
    dropped: AtomicU64,
}

impl Counter {
    pub fn add(&self, kind: &'static str, domain: &str, item: String) {
        let day = utc_day(chrono::Utc::now().timestamp());
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let key = (kind, day, domain.to_ascii_lowercase(), item);
        if let Some(n) = pending.get_mut(&key) {
            *n = n.saturating_add(1);
        } else if pending.len() < MAX_PENDING {
            pending.insert(key, 1);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("wharf_report_counts_dropped_total").increment(1);
        }
    }

    /// One DMARC verdict of the inbound checks.
    pub fn dmarc(&self, observation: &Observation) {
        match serde_json::to_string(observation) {
            Ok(item) => self.add(DMARC, &observation.policy.domain, item),
            Err(e) => warn!(error = %e, "DMARC report line not recorded"),
        }
    }

    /// Adds the counts to the store; kept for the next flush if the store refuses them.
    pub async fn flush(&self, store: &dyn TallyStore) {
        let taken: HashMap<Key, u64> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if taken.is_empty() {
            return;
        }
        let mut batches: HashMap<(&'static str, i64), Vec<Tally>> = HashMap::new();
        for ((kind, day, domain, item), count) in &taken {
            batches.entry((kind, *day)).or_default().push(Tally {
                domain: domain.clone(),
                item: item.clone(),
                count: *count,
            });
        }
        for ((kind, day), tallies) in batches {
            if let Err(e) = store.add_tallies(kind, day, &tallies).await {
                warn!(error = %e, kind, "report counts not saved; kept for the next try");
                if let Ok(mut p) = self.pending.lock() {
                    for t in tallies {
                        let n = p.entry((kind, day, t.domain, t.item)).or_insert(0);
                        *n = n.saturating_add(t.count);
                    }
                }
            }
        }
    }
}

/// The delivery worker's TLS outcomes into the counter.
pub struct TlsCounter(pub Arc<Counter>);

impl TlsResultSink for TlsCounter {
    fn record(&self, s: TlsSession) {
        let (policy_type, policy_string, mx_patterns) = match s.policy {
            ReportPolicy::Tlsa { records } => ("tlsa", records, Vec::new()),
            ReportPolicy::Sts { lines, mx } => ("sts", lines, mx),
            ReportPolicy::NoPolicyFound => ("no-policy-found", Vec::new(), Vec::new()),
        };
        let item = SessionItem {
            policy_type: policy_type.to_string(),
            policy_string,
            mx_patterns,
            failure: s.failure.map(|(kind, info)| SessionFailure {
                result_type: kind.as_str().to_string(),
                receiving_mx_hostname: s.mx_host.clone(),
                receiving_ip: s.receiving_ip,
                additional_information: info,
            }),
        };
        match serde_json::to_string(&item) {
            Ok(item) => self.0.add(TLSRPT, &s.policy_domain, item),
            Err(e) => warn!(error = %e, "TLS report line not recorded"),
        }
    }
}

/// Makes and queues the reports of finished days.
pub struct Reporter {
    tallies: Arc<dyn TallyStore>,
    outbound: Arc<Outbound>,
    dns: ReportDns,
    hostname: String,
    org_name: String,
    from: String,
    owner: String,
    kinds: Vec<&'static str>,
    keep_days: i64,
    /// What an `https:` TLS-RPT destination's certificate must chain to.
    anchors: TrustAnchors,
    /// Pauses between the tries of a POST that failed (RFC 8460 §5.4 leaves retries to us).
    post_retry: Vec<Duration>,
}

impl Reporter {
    /// `kinds`: which reports this node makes (`DMARC`, `TLSRPT`).
    pub fn new(
        cfg: &Loaded,
        hostname: &str,
        tallies: Arc<dyn TallyStore>,
        outbound: Arc<Outbound>,
        kinds: Vec<&'static str>,
    ) -> Result<Reporter> {
        let mut opts = hickory_resolver::config::ResolverOpts::default();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        let resolver = wharf_outbound::route::resolver(&cfg.config.outbound.dns_server.0, opts)
            .map_err(|e| anyhow!("reports: {e}"))?;
        let r = &cfg.config.reports;
        let domain = cfg.primary_domain();
        Ok(Reporter {
            tallies,
            outbound,
            dns: ReportDns::new(resolver),
            hostname: hostname.to_string(),
            org_name: r.org_name.clone().unwrap_or_else(|| domain.clone()),
            from: r
                .from
                .clone()
                .unwrap_or_else(|| format!("postmaster@{domain}")),
            owner: format!("{hostname}:{}", std::process::id()),
            kinds,
            keep_days: i64::from(r.keep_days.max(1)),
            anchors: crate::wiring::outbound_anchors(cfg)?,
            post_retry: vec![Duration::from_secs(10), Duration::from_secs(60)],
        })
    }

    /// Sends every report of a finished day not sent yet (by any node), then forgets counts
    /// older than `keep_days`.
    pub async fn send_due(&self) {
        let today = utc_day(chrono::Utc::now().timestamp());
        for &kind in &self.kinds {
            let due = match self.tallies.unreported(kind, today).await {
                Ok(d) => d,
                Err(e) => {
                    warn!(error = %e, kind, "reports: cannot list the days to report");
                    continue;
                }
            };
            for (day, domain) in due {
                if day < today - self.keep_days {
                    continue;
                }
                match self.send_one(kind, day, &domain, None).await {
                    Ok(line) => info!(kind, day, %domain, "{line}"),
                    Err(e) => warn!(kind, day, %domain, error = %e, "report not sent"),
                }
            }
        }
        if let Err(e) = self.tallies.prune_tallies(today - self.keep_days).await {
            warn!(error = %e, "reports: old counts not pruned");
        }
    }

    /// Every report of `day` (one line each saying what became of it); `save` also writes each
    /// document to that folder.
    pub async fn send_day(&self, day: i64, save: Option<&Path>) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for &kind in &self.kinds {
            let mut domains: Vec<String> = self
                .tallies
                .tallies(kind, day, None)
                .await
                .map_err(|e| anyhow!("store: {e}"))?
                .into_iter()
                .map(|t| t.domain)
                .collect();
            domains.sort();
            domains.dedup();
            for domain in domains {
                lines.push(match self.send_one(kind, day, &domain, save).await {
                    Ok(line) => line,
                    Err(e) => format!("{kind} {domain}: not sent: {e:#}"),
                });
            }
        }
        Ok(lines)
    }

    async fn send_one(
        &self,
        kind: &'static str,
        day: i64,
        domain: &str,
        save: Option<&Path>,
    ) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claimed = self
            .tallies
            .claim_report(kind, day, domain, &self.owner, now)
            .await
            .map_err(|e| anyhow!("store: {e}"))?;
        if !claimed {
            return Ok(format!("{kind} {domain}: already sent"));
        }
        let tallies = self
            .tallies
            .tallies(kind, day, Some(domain))
            .await
            .map_err(|e| anyhow!("store: {e}"))?;
        match kind {
            DMARC => self.dmarc(day, domain, tallies, save).await,
            _ => self.tls(day, domain, tallies, save).await,
        }
    }

    fn period(day: i64) -> (i64, i64) {
        let begin = day.saturating_mul(86_400);
        (begin, begin + 86_399)
    }

    async fn dmarc(
        &self,
        day: i64,
        domain: &str,
        tallies: Vec<Tally>,
        save: Option<&Path>,
    ) -> Result<String> {
        let observations = tallies.into_iter().filter_map(|t| {
            match serde_json::from_str::<Observation>(&t.item) {
                Ok(o) => Some((o, t.count)),
                Err(e) => {
                    warn!(error = %e, domain, "an unreadable DMARC report line is left out");
                    None
                }
            }
        });
        let Some((policy, rows)) = aggregate::assemble(observations) else {
            return Ok(format!("dmarc {domain}: nothing to report"));
        };
        let (begin, end) = Self::period(day);
        let meta = aggregate::ReportMeta {
            org_name: self.org_name.clone(),
            email: self.from.clone(),
            report_id: format!("{domain}.{day}@{}", self.hostname),
            begin,
            end,
        };
        let xml = aggregate::render_xml(&meta, &policy, &rows);
        if let Some(dir) = save {
            let name = aggregate::file_name(&self.hostname, &meta, domain);
            let path = dir.join(name.trim_end_matches(".gz"));
            std::fs::write(&path, &xml).with_context(|| format!("writing {}", path.display()))?;
        }
        let wanted: Vec<String> = policy.rua.iter().map(|(a, _)| a.clone()).collect();
        let authorized = self.dns.authorized(domain, &wanted).await;
        let message_id = format!("dmarc.{day}.{domain}@{}", self.hostname);
        let build = |to: &[String]| {
            aggregate::report_message(
                &aggregate::Sending {
                    submitter: &self.hostname,
                    from: &self.from,
                    to,
                    message_id: &message_id,
                    date: chrono::Utc::now().timestamp(),
                },
                &meta,
                domain,
                &xml,
            )
        };
        // The size limit (`!10m`) is per address: measure once with every authorised address.
        let size = build(&authorized)?.len() as u64;
        let to: Vec<String> = policy
            .rua
            .iter()
            .filter(|(a, limit)| authorized.contains(a) && (*limit == 0 || size <= *limit))
            .map(|(a, _)| a.clone())
            .collect();
        let refused: Vec<&String> = wanted.iter().filter(|a| !to.contains(a)).collect();
        if to.is_empty() {
            return Ok(format!(
                "dmarc {domain}: {} rows, no address may receive it (unauthorised or too small: {refused:?})",
                rows.len()
            ));
        }
        let raw = build(&to)?;
        let id = self.queue(&to, raw).await?;
        Ok(format!(
            "dmarc {domain}: {} rows queued as {id} to {}{}",
            rows.len(),
            to.join(", "),
            if refused.is_empty() {
                String::new()
            } else {
                format!(" (not to {refused:?})")
            }
        ))
    }

    async fn tls(
        &self,
        day: i64,
        domain: &str,
        tallies: Vec<Tally>,
        save: Option<&Path>,
    ) -> Result<String> {
        let items = tallies.into_iter().filter_map(|t| {
            match serde_json::from_str::<SessionItem>(&t.item) {
                Ok(i) => Some((i, t.count)),
                Err(e) => {
                    warn!(error = %e, domain, "an unreadable TLS report line is left out");
                    None
                }
            }
        });
        let (begin, end) = Self::period(day);
        let meta = tlsrpt::ReportMeta {
            organization_name: self.org_name.clone(),
            contact_info: self.from.clone(),
            report_id: format!("{domain}.{day}@{}", self.hostname),
            begin,
            end,
        };
        let report = tlsrpt::build(&meta, domain, items);
        if let Some(dir) = save {
            let path = dir.join(format!("{}!{domain}!{begin}!{end}.json", self.hostname));
            std::fs::write(&path, report.to_json())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let destinations = self
            .dns
            .tls_rpt(domain)
            .await
            .map_err(|e| anyhow!("TLS-RPT record of {domain}: {e}"))?;
        let mut to = Vec::new();
        let mut urls = Vec::new();
        for d in destinations {
            match d {
                TlsRptDestination::Mail(a) => to.push(a),
                TlsRptDestination::Https(url) => urls.push(url),
            }
        }
        if to.is_empty() && urls.is_empty() {
            return Ok(format!(
                "tlsrpt {domain}: no destination in _smtp._tls.{domain}"
            ));
        }
        let mut lines = Vec::new();
        if !to.is_empty() {
            let raw = tlsrpt::report_message(
                &report,
                domain,
                &self.hostname,
                &self.org_name,
                &self.from,
                &to,
            )?;
            let id = self.queue(&to, raw).await?;
            lines.push(format!(
                "tlsrpt {domain}: {} policies queued as {id} to {}",
                report.policies.len(),
                to.join(", ")
            ));
        }
        if !urls.is_empty() {
            let gzipped = tlsrpt::gzipped_json(&report)?;
            for url in urls {
                lines.push(match self.post(&url, &gzipped).await {
                    Ok(status) => {
                        info!(domain, url, status, "TLS-RPT report posted");
                        format!(
                            "tlsrpt {domain}: {} policies posted to {url} (HTTP {status})",
                            report.policies.len()
                        )
                    }
                    Err(e) => {
                        warn!(domain, url, error = %e, "TLS-RPT report could not be posted");
                        format!("tlsrpt {domain}: posting to {url} failed: {e}")
                    }
                });
            }
        }
        Ok(lines.join("\n"))
    }

    /// Posts a gzipped TLS-RPT report to an `https:` destination, trying again after each
    /// pause of `post_retry` while it fails.
    async fn post(&self, url: &str, gzipped: &[u8]) -> std::result::Result<u16, String> {
        let target = HttpsTarget::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let mut pauses = self.post_retry.iter();
        loop {
            let addrs = match target.literal_ip() {
                Some(ip) => Ok(vec![ip]),
                None => self.dns.addresses(&target.host).await,
            };
            let tried = match addrs {
                Ok(addrs) => {
                    post_report(&target, &addrs, &self.anchors, gzipped, POST_TIMEOUT).await
                }
                Err(e) => Err(PostError::Unreached(format!("{}: {e}", target.host))),
            };
            match tried {
                Ok(status) => return Ok(status),
                Err(e) if !e.is_temporary() => return Err(e.to_string()),
                Err(e) => {
                    let Some(pause) = pauses.next() else {
                        return Err(e.to_string());
                    };
                    info!(url, error = %e, retry_in = ?pause, "TLS-RPT report post failed; trying again");
                    tokio::time::sleep(*pause).await;
                }
            }
        }
    }

    async fn queue(&self, to: &[String], raw: Vec<u8>) -> Result<String> {
        let recipients = to.iter().map(|a| QueuedRecipient::new(a)).collect();
        let entry = self
            .outbound
            .new_entry(self.from.clone(), recipients, Bytes::from(raw));
        let id = self
            .outbound
            .submit(entry)
            .await
            .map_err(|e| anyhow!("queue: {e}"))?;
        Ok(id.to_string())
    }
}

/// `serve`'s background side: flushes the counts every minute and sends finished days'
/// reports; on stop, flushes once more.
pub fn spawn(
    counter: Arc<Counter>,
    tallies: Arc<dyn TallyStore>,
    reporter: Option<Reporter>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut send = tokio::time::interval(SEND_CHECK_EVERY);
        loop {
            tokio::select! {
                _ = flush.tick() => counter.flush(tallies.as_ref()).await,
                _ = send.tick() => {
                    if let Some(r) = &reporter {
                        r.send_due().await;
                    }
                }
                _ = stop.changed() => break,
            }
        }
        counter.flush(tallies.as_ref()).await;
    })
}
