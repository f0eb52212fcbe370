//! One delivery: for one destination domain, the route (MX or relay) narrowed by DANE and MTA-STS,
//! connections to its hosts in order, one SMTP transaction per job (a connection is reused while
//! the server allows), and one result per recipient. No queue bookkeeping happens here: the
//! worker leases, groups and writes results back.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::client::{ClientConfig, ClientError, SmtpClient, TlsPolicy};
use crate::dane::{DanePolicy, HostDane};
use crate::mta_sts::Mode;
use crate::queue::{QueueId, QueueStore};
use crate::route::{Hop, RouteError, Router};
use crate::tls_report::{FailureKind, ReportPolicy, TlsSession, classify};
use crate::transaction::{Envelope, Outcome};

/// One entry's pending recipients at one destination domain: one SMTP transaction.
pub(crate) struct Job {
    pub(crate) entry: usize,
    pub(crate) queue_id: QueueId,
    pub(crate) envelope: Envelope,
    /// Index in the entry's recipient list of each envelope recipient.
    pub(crate) rcpts: Vec<usize>,
}

/// What one attempt did for one recipient of a leased entry.
pub(crate) struct RecipientResult {
    pub(crate) entry: usize,
    pub(crate) rcpt: usize,
    pub(crate) outcome: Outcome,
    pub(crate) mx: Option<String>,
    /// The accepting server advertised DSN, so it took over NOTIFY=SUCCESS reporting.
    pub(crate) dsn_aware: bool,
}

fn all(jobs: &[Job], outcome: &Outcome, mx: Option<&str>) -> Vec<RecipientResult> {
    jobs.iter()
        .flat_map(|j| {
            j.rcpts.iter().map(|&ri| RecipientResult {
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
            let policy = Arc::new(policy);
            let hops = hops
                .into_iter()
                .map(|mut h| {
                    h.sts = Some(policy.clone());
                    h
                })
                .collect();
            Ok((hops, false))
        }
        Mode::Enforce => {
            let before: Vec<String> = hops.iter().map(|h| h.host.clone()).collect();
            let shared = Arc::new(policy.clone());
            let kept: Vec<Hop> = hops
                .into_iter()
                .filter(|h| policy.matches(&h.host))
                .map(|mut h| {
                    h.tls = Some(TlsPolicy::RequiredVerified);
                    h.sts = Some(shared.clone());
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
pub(crate) async fn deliver_domain(
    router: &Router,
    queue: &Arc<dyn QueueStore>,
    owner: &str,
    base: &ClientConfig,
    domain: &str,
    jobs: Vec<Job>,
    per_connection: usize,
) -> Vec<RecipientResult> {
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
    // TLS-RPT is about the domain's own MX hosts, not about a smarthost we relay through.
    let relayed_base;
    let base = if router.is_relayed(domain) && base.tls_results.is_some() {
        relayed_base = ClientConfig {
            tls_results: None,
            ..base.clone()
        };
        &relayed_base
    } else {
        base
    };
    let (strict, normal): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.envelope.require_tls);
    let mut out = send_over(&hops, queue, owner, normal, base, domain, per_connection).await;
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
            out.extend(
                send_over(
                    &verified,
                    queue,
                    owner,
                    strict,
                    base,
                    domain,
                    per_connection,
                )
                .await,
            );
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

/// Hands one connection's TLS outcome to the TLS-RPT sink, if any. A plaintext session counts
/// as `starttls-not-supported` unless TLS was switched off for the hop by configuration.
fn report_tls(
    cfg: &ClientConfig,
    domain: &str,
    hop: &Hop,
    addr: std::net::SocketAddr,
    outcome: Result<&SmtpClient, &ClientError>,
) {
    let Some(sink) = &cfg.tls_results else {
        return;
    };
    let failure = match outcome {
        Ok(c) if c.tls().is_some() => None,
        Ok(_) if cfg.tls == TlsPolicy::Disabled && cfg.dane.is_none() => return,
        Ok(_) => Some((
            FailureKind::StartTlsNotSupported,
            "the session went on without TLS".to_string(),
        )),
        Err(e) => match classify(e) {
            Some(f) => Some(f),
            None => return,
        },
    };
    let policy = if let Some(dane) = &hop.dane {
        ReportPolicy::Tlsa {
            records: dane.records.iter().map(|r| r.to_string()).collect(),
        }
    } else if let Some(sts) = &hop.sts {
        ReportPolicy::Sts {
            lines: sts.report_lines(),
            mx: sts.mx.clone(),
        }
    } else {
        ReportPolicy::NoPolicyFound
    };
    sink.0.record(TlsSession {
        policy_domain: domain.to_ascii_lowercase(),
        policy,
        mx_host: hop.host.trim_end_matches('.').to_ascii_lowercase(),
        receiving_ip: addr.ip(),
        failure,
    });
}

/// Sends jobs over the hops in order (see `deliver_domain`).
async fn send_over(
    hops: &[Hop],
    queue: &Arc<dyn QueueStore>,
    owner: &str,
    jobs: Vec<Job>,
    base: &ClientConfig,
    domain: &str,
    per_connection: usize,
) -> Vec<RecipientResult> {
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
                            Ok(c) => {
                                report_tls(&cfg, domain, hop, *addr, Ok(&c));
                                c
                            }
                            Err(e) => {
                                report_tls(&cfg, domain, hop, *addr, Err(&e));
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
                        // Recorded before the next message goes out: a worker that dies later
                        // in the round must not send these again (exactly once per recipient,
                        // short of the unavoidable window between the server's 250 and this
                        // write, RFC 1047).
                        let delivered: Vec<usize> = outcomes
                            .iter()
                            .enumerate()
                            .filter(|(_, o)| matches!(o, Outcome::Delivered { .. }))
                            .filter_map(|(k, _)| job.rcpts.get(k).copied())
                            .collect();
                        if !delivered.is_empty()
                            && let Err(e) = queue
                                .record_delivered(
                                    job.queue_id,
                                    owner,
                                    chrono::Utc::now().timestamp(),
                                    &delivered,
                                    Some(&hop.host),
                                )
                                .await
                        {
                            tracing::error!(queue_id = job.queue_id, error = %e, "recording a delivery failed");
                        }
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
                            out.push(RecipientResult {
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
