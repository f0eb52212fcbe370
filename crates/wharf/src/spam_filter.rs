//! Binds `wharf-spam` to the server: scores mail arriving on port 25 once the trust checks
//! have run (rules, DNS block lists, the classifier over the store's counts, allow/block lists,
//! known correspondents, sender-domain reputation, greylisting, optionally rspamd), and trains
//! the classifier from the queue that users' moves into and out of Junk fill.
//!
//! One message is scored once. With a single local recipient (the usual case on an MX) that
//! recipient's own model, lists and correspondents take part; with several, the global model
//! and the recipients' domain lists decide for all of them, because the message is stored once.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use wharf_smtp::{Arrival, ArrivalAction};
use wharf_spam::bayes::ScopeCounts;
use wharf_spam::rules::Reputation;
use wharf_spam::{
    Action, AuthResult, AuthVerdicts, DmarcPolicy, Facts, Model, Scan, SenderLists, TokenSet,
};
use wharf_store::{AccountId, GreylistEntry, SpamModelCounts, Store};

/// Messages larger than this are scored on their first this-many bytes (headers, text and the
/// attachment parts that start there): parsing all of a 50 MB message would cost more than the
/// verdict is worth.
const MAX_SCANNED: usize = 2 << 20;
/// Above this, scanning runs off the async worker (`block_in_place`).
const INLINE_SCAN: usize = 64 << 10;
/// The fields that carry a spam verdict: ours, or a forgery of ours.
pub const VERDICT_FIELDS: &[&str] = &["X-Spam-Status", "X-Spam-Score", "X-Spam-Flag"];
/// Classifier tokens seen once and domain reputations unused for this long are forgotten.
const STATE_KEEP_SECS: i64 = 180 * 86_400;
/// How long the list of local domains is reused.
const DOMAINS_TTL: Duration = Duration::from_secs(60);

/// What scoring decided about one arriving message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamOutcome {
    /// `X-Spam-Status` and `X-Spam-Score`, CRLF-ended, to put on top of the stored message.
    pub headers: String,
    /// Byte ranges of the content's header section holding spam verdict fields the sender put
    /// there: to be removed, so that only ours is read (by users' Sieve `spamtest` too).
    pub forged: Vec<std::ops::Range<usize>>,
    /// `None`: deliver as the trust checks said.
    pub action: Option<ArrivalAction>,
    /// When the recipients' own verdicts differ: per entry of `Arrival::accounts`, whether that
    /// copy goes to Junk (empty: `action` decides for all).
    pub junk_for: Vec<bool>,
}

pub struct SpamFilter {
    cfg: wharf_spam::Config,
    store: Arc<dyn Store>,
    dns: Option<Dns>,
    domains: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// DNS block list lookups through hickory (its cache serves every session).
struct Dns(TokioResolver);

impl wharf_spam::DnsLookup for Dns {
    type Error = String;
    async fn a_records(&self, name: &str) -> Result<Vec<Ipv4Addr>, String> {
        match self.0.ipv4_lookup(name).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_resolver::proto::rr::RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One recipient's own data from the store: lists and whether it wrote to the sender.
struct UserFacts {
    account: AccountId,
    lists: SenderLists,
    known_correspondent: bool,
}

/// Above this many local accounts, a message is scored for all of them at once (the global
/// model and the domains' lists), not for each.
const MAX_SCORED_ACCOUNTS: usize = 20;

impl SpamFilter {
    /// `None` when `[spam] enabled = false`.
    pub fn new(
        cfg: &wharf_spam::Config,
        store: Arc<dyn Store>,
        dns_servers: &[std::net::SocketAddr],
    ) -> anyhow::Result<Option<SpamFilter>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let dns = if cfg.dnsbl.ip_zones.is_empty() && cfg.dnsbl.domain_zones.is_empty() {
            None
        } else {
            let mut opts = hickory_resolver::config::ResolverOpts::default();
            opts.timeout = Duration::from_millis(cfg.dnsbl.timeout_ms.max(100));
            opts.attempts = 1;
            let r = wharf_outbound::route::resolver(dns_servers, opts)
                .map_err(|e| anyhow::anyhow!("spam filter DNS: {e}"))?;
            Some(Dns(r))
        };
        Ok(Some(SpamFilter {
            cfg: cfg.clone(),
            store,
            dns,
            domains: Mutex::new(None),
        }))
    }

    /// Scores `content` (the message as the client sent it). `methods` are the trust checks'
    /// results when they ran.
    pub async fn score(
        &self,
        arrival: &Arrival<'_>,
        content: &[u8],
        methods: Option<&wharf_inbound::MethodResults>,
    ) -> SpamOutcome {
        let started = Instant::now();
        let scanned = &content[..content.len().min(MAX_SCANNED)];
        let scan = if scanned.len() > INLINE_SCAN
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| Scan::new(scanned))
        } else {
            Scan::new(scanned)
        };
        let auth = methods.map(auth_verdicts).unwrap_or_default();
        let local_domains = self.local_domains().await;
        let domain_lists = self.domain_lists(arrival).await;
        let users: Vec<UserFacts> = if arrival.accounts.len() <= MAX_SCORED_ACCOUNTS {
            let mut v = Vec::with_capacity(arrival.accounts.len());
            for &id in arrival.accounts {
                v.push(self.user_facts(id, arrival, &scan).await);
            }
            v
        } else {
            Vec::new()
        };
        // Keyed by a domain the message proved it comes from, so that forged mail can neither
        // spend nor spoil a domain's reputation.
        let authenticated_domain = wharf_spam::rules::authenticated_sender_domain(
            &scan.analysis,
            &auth,
            arrival.mail_from,
        );
        let reputation = match &authenticated_domain {
            Some(d) => match self.store.spam_reputation(d).await {
                Ok((ham, spam)) => Some(Reputation {
                    ham: u32::try_from(ham).unwrap_or(u32::MAX),
                    spam: u32::try_from(spam).unwrap_or(u32::MAX),
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "spam filter: reputation unavailable");
                    None
                }
            },
            None => None,
        };
        let dnsbl_hits = match &self.dns {
            Some(dns) => {
                wharf_spam::dnsbl::check(
                    dns,
                    &self.cfg.dnsbl,
                    Some(arrival.ip.to_canonical()),
                    &scan.analysis.url_domains(),
                )
                .await
            }
            None => Vec::new(),
        };
        let rspamd = if self.cfg.rspamd.enabled {
            let req = wharf_spam::rspamd::RspamdRequest {
                ip: Some(arrival.ip.to_canonical()),
                helo: Some(arrival.helo),
                from: Some(arrival.mail_from),
                rcpt: arrival.recipients,
                queue_id: None,
                user: None,
                hostname: None,
            };
            match wharf_spam::rspamd::check(&self.cfg.rspamd, content, &req).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "rspamd unavailable: scored without it");
                    None
                }
            }
        } else {
            None
        };
        let no_lists = SenderLists::default();
        // One verdict for `user` (None: the global model and the domains' lists only).
        let verdict_for = async |user: Option<&UserFacts>| {
            let classification = match self.model(user.map(|u| u.account), &scan.tokens).await {
                Ok(model) => wharf_spam::classify(&model, scan.tokens.hashes(), &self.cfg.bayes),
                Err(e) => {
                    tracing::warn!(error = %e, "spam filter: classifier counts unavailable");
                    None
                }
            };
            let facts = Facts {
                auth: &auth,
                envelope_from: arrival.mail_from,
                local_domains: &local_domains,
                domain_lists: &domain_lists,
                user_lists: user.map_or(&no_lists, |u| &u.lists),
                known_correspondent: user.is_some_and(|u| u.known_correspondent),
                reputation,
                classification: classification.as_ref(),
                dnsbl_hits: &dnsbl_hits,
                rspamd: rspamd.as_ref(),
            };
            wharf_spam::evaluate(&self.cfg, &scan.analysis, &facts)
        };
        // The message's verdict (its header, a refusal, greylisting): the one recipient's own,
        // or, for several, the global one.
        let verdict = match users.as_slice() {
            [one] => verdict_for(Some(one)).await,
            _ => verdict_for(None).await,
        };
        // Where each local copy goes, when the recipients' own models and lists disagree with
        // the message's verdict.
        let mut junk_for: Vec<bool> = Vec::new();
        if users.len() > 1 && !matches!(verdict.action, Action::Reject) {
            for u in &users {
                let v = verdict_for(Some(u)).await;
                if v.is_spam() != verdict.is_spam() {
                    tracing::info!(
                        account = u.account,
                        "spam verdict for this recipient: {}",
                        v.log_line()
                    );
                }
                junk_for.push(v.is_spam());
            }
        }
        let action = match verdict.action {
            Action::Deliver => None,
            Action::Junk => Some(ArrivalAction::Junk),
            Action::Reject => Some(ArrivalAction::Reject(
                "Message refused as spam by the recipient's server".into(),
            )),
            Action::Greylist => match self.greylist(arrival).await {
                Some(wait) => Some(ArrivalAction::TempFail(format!(
                    "Greylisted: please try again in {wait} seconds"
                ))),
                None => match verdict.action_after_greylist() {
                    Action::Junk => Some(ArrivalAction::Junk),
                    _ => None,
                },
            },
        };
        // Per-recipient filing only matters when the recipients disagree.
        let action = if junk_for.len() > 1 && matches!(action, None | Some(ArrivalAction::Junk)) {
            if junk_for.iter().all(|j| *j) {
                junk_for.clear();
                Some(ArrivalAction::Junk)
            } else if junk_for.iter().all(|j| !*j) {
                junk_for.clear();
                None
            } else {
                None
            }
        } else {
            junk_for.clear();
            action
        };
        let label = match &action {
            None => "ham",
            Some(ArrivalAction::Junk) => "junk",
            Some(ArrivalAction::Reject(_)) => "reject",
            Some(ArrivalAction::TempFail(_)) => "greylist",
            Some(ArrivalAction::Deliver) => "ham",
        };
        metrics::counter!("wharf_spam_verdict_total", "verdict" => label).increment(1);
        tracing::info!(
            ip = %arrival.ip,
            mail_from = arrival.mail_from,
            verdict = label,
            elapsed_us = started.elapsed().as_micros() as u64,
            "spam {}",
            verdict.log_line()
        );
        // Reputation learns from clear verdicts on authenticated mail only, so that no one can
        // spoil a domain's name by forging it.
        if let Some(d) = &authenticated_domain
            && (verdict.score >= verdict.required || verdict.score < verdict.required / 2.0)
            && let Err(e) = self
                .store
                .add_spam_reputation(d, verdict.score >= verdict.required)
                .await
        {
            tracing::warn!(error = %e, "spam filter: reputation not recorded");
        }
        SpamOutcome {
            headers: verdict.headers(),
            forged: wharf_inbound::header::fields_named(content, VERDICT_FIELDS),
            action,
            junk_for,
        }
    }

    async fn local_domains(&self) -> Arc<Vec<String>> {
        if let Ok(g) = self.domains.lock()
            && let Some((at, d)) = g.as_ref()
            && at.elapsed() < DOMAINS_TTL
        {
            return d.clone();
        }
        let list = match self.store.list_domains().await {
            Ok(d) => Arc::new(d.into_iter().map(|d| d.name).collect::<Vec<_>>()),
            Err(e) => {
                tracing::warn!(error = %e, "spam filter: local domains unavailable");
                return Arc::new(Vec::new());
            }
        };
        if let Ok(mut g) = self.domains.lock() {
            *g = Some((Instant::now(), list.clone()));
        }
        list
    }

    /// The allow/block lists of the recipients' domains.
    async fn domain_lists(&self, arrival: &Arrival<'_>) -> SenderLists {
        let mut domains: Vec<String> = arrival
            .recipients
            .iter()
            .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        domains.sort();
        domains.dedup();
        self.lists(&domains).await
    }

    async fn lists(&self, scopes: &[String]) -> SenderLists {
        let mut lists = SenderLists::default();
        match self.store.spam_list_entries(Some(scopes)).await {
            Ok(entries) => {
                for e in entries {
                    if e.allow {
                        lists.allow.push(e.entry);
                    } else {
                        lists.block.push(e.entry);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "spam filter: lists unavailable"),
        }
        lists
    }

    async fn user_facts(
        &self,
        account: AccountId,
        arrival: &Arrival<'_>,
        scan: &Scan,
    ) -> UserFacts {
        let lists = match self.store.get_account(account).await {
            Ok(Some(a)) => self.lists(&[a.address.to_ascii_lowercase()]).await,
            _ => SenderLists::default(),
        };
        let mut senders = vec![arrival.mail_from.to_ascii_lowercase()];
        if let Some(from) = scan.analysis.from_address.as_deref() {
            senders.push(from.to_ascii_lowercase());
        }
        let known_correspondent = matches!(
            self.store.any_correspondent(account, &senders).await,
            Ok(true)
        );
        UserFacts {
            account,
            lists,
            known_correspondent,
        }
    }

    async fn model(
        &self,
        account: Option<AccountId>,
        tokens: &TokenSet,
    ) -> Result<Model, wharf_store::StoreError> {
        let hashes: Vec<i64> = tokens.hashes().iter().map(|h| token_key(*h)).collect();
        let models: Vec<i64> = std::iter::once(0).chain(account).collect();
        let counts = self.store.spam_counts(&models, &hashes).await?;
        let mut model = Model::default();
        for c in counts {
            let scope = scope_counts(&c);
            if c.model == 0 {
                model.global = scope;
            } else {
                model.user = Some(scope);
            }
        }
        Ok(model)
    }

    /// Each recipient's triplet through the greylist; the longest wait asked, or `None` when
    /// every triplet passes.
    async fn greylist(&self, arrival: &Arrival<'_>) -> Option<u64> {
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let mut wait = None;
        for rcpt in arrival.recipients {
            let triplet = wharf_spam::greylist::Triplet::new(
                arrival.ip.to_canonical(),
                arrival.mail_from,
                rcpt,
            );
            let key = triplet.key();
            let stored = match self.store.greylist_entry(&key).await {
                Ok(e) => e,
                Err(e) => {
                    // A store that cannot answer must not hold mail back.
                    tracing::warn!(error = %e, "greylist unavailable: passing");
                    return None;
                }
            };
            let entry = stored.map(|e| wharf_spam::greylist::Entry {
                first_seen: u64::try_from(e.first_seen).unwrap_or(0),
                allowed_until: (e.passed_until > 0)
                    .then(|| u64::try_from(e.passed_until).unwrap_or(0)),
            });
            let out = wharf_spam::greylist::decide(entry, now, &self.cfg.greylist);
            if let Some(e) = out.store {
                let row = GreylistEntry {
                    first_seen: i64::try_from(e.first_seen).unwrap_or(0),
                    last_seen: i64::try_from(now).unwrap_or(0),
                    passed_until: e
                        .allowed_until
                        .map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
                };
                if let Err(e) = self.store.put_greylist_entry(&key, &row).await {
                    tracing::warn!(error = %e, "greylist entry not recorded");
                }
            }
            if let wharf_spam::greylist::Decision::Defer { retry_after_secs } = out.decision {
                wait = Some(wait.unwrap_or(0).max(retry_after_secs));
            }
        }
        wait
    }
}

/// The store keeps a token's 64-bit hash in a signed column: the same bits.
pub fn token_key(hash: wharf_spam::TokenHash) -> i64 {
    i64::from_ne_bytes(hash.to_ne_bytes())
}

fn scope_counts(c: &SpamModelCounts) -> ScopeCounts {
    let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    ScopeCounts {
        totals: wharf_spam::Counts {
            ham: n(c.ham_messages),
            spam: n(c.spam_messages),
        },
        tokens: c
            .tokens
            .iter()
            .map(|(t, (h, s))| {
                (
                    u64::from_ne_bytes(t.to_ne_bytes()),
                    wharf_spam::Counts {
                        ham: n(*h),
                        spam: n(*s),
                    },
                )
            })
            .collect(),
    }
}

fn auth_result(keyword: &str) -> AuthResult {
    match keyword {
        "pass" => AuthResult::Pass,
        "fail" => AuthResult::Fail,
        "softfail" => AuthResult::SoftFail,
        "neutral" => AuthResult::Neutral,
        "temperror" => AuthResult::TempError,
        "permerror" => AuthResult::PermError,
        _ => AuthResult::None,
    }
}

fn auth_verdicts(m: &wharf_inbound::MethodResults) -> AuthVerdicts {
    AuthVerdicts {
        spf: auth_result(m.spf),
        dkim: auth_result(m.dkim),
        dkim_pass_domains: m.dkim_pass_domains.clone(),
        dmarc: auth_result(m.dmarc),
        dmarc_policy: match m.dmarc_policy {
            "reject" => DmarcPolicy::Reject,
            "quarantine" => DmarcPolicy::Quarantine,
            _ => DmarcPolicy::None,
        },
        arc: auth_result(m.arc),
        iprev: auth_result(m.iprev),
    }
}

/// Trains the classifier from the queue moves into and out of Junk fill (and `$Junk`,
/// `$NotJunk`), and forgets stale greylist triplets once an hour.
pub fn spawn_trainer(
    store: Arc<dyn Store>,
    greylist_keep: Duration,
) -> tokio::task::JoinHandle<()> {
    const BATCH: usize = 32;
    tokio::spawn(async move {
        let mut last_prune = Instant::now();
        loop {
            let batch = match store.take_spam_training(BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "spam training queue unavailable (retrying)");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    continue;
                }
            };
            for r in &batch {
                match train(store.as_ref(), r.account, r.message, r.spam).await {
                    Ok(true) => tracing::info!(
                        account = r.account,
                        message = r.message,
                        as_spam = r.spam,
                        "spam classifier trained"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(account = r.account, message = r.message, error = %e, "spam training skipped")
                    }
                }
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = Instant::now();
                let before = chrono::Utc::now().timestamp()
                    - i64::try_from(greylist_keep.as_secs()).unwrap_or(i64::MAX / 2);
                match store.prune_greylist(before).await {
                    Ok(n) if n > 0 => tracing::info!(triplets = n, "stale greylist entries pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "greylist prune failed"),
                }
                let before = chrono::Utc::now().timestamp() - STATE_KEEP_SECS;
                match store.prune_spam_state(before).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "stale spam filter state pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "spam filter state prune failed"),
                }
            }
            if batch.len() < BATCH {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}

/// Trains one stored message of `account` as spam or ham (false: it already was). A user's
/// verdict also counts for the reputation of the domain the message proved it came from, with
/// `USER_VERDICT_WEIGHT`: a user's judgement outweighs the filter's own.
pub async fn train(
    store: &dyn Store,
    account: AccountId,
    message: wharf_store::MessageId,
    spam: bool,
) -> Result<bool, wharf_store::StoreError> {
    let raw = store.message_raw(message).await?;
    let tokens = tokens_of(&raw);
    let trained = store
        .spam_train(account, Some(message), spam, &tokens)
        .await?;
    if trained && let Some(domain) = stored_sender_domain(&raw) {
        for _ in 0..USER_VERDICT_WEIGHT {
            store.add_spam_reputation(&domain, spam).await?;
        }
    }
    Ok(trained)
}

/// How many of the filter's own verdicts one user's verdict is worth in a domain's reputation.
const USER_VERDICT_WEIGHT: u32 = 3;

/// The authenticated sender domain of a stored message, from our Authentication-Results (the
/// first one: arriving copies claiming our name are removed) and its Return-Path.
fn stored_sender_domain(raw: &[u8]) -> Option<String> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 2);
    let header = &raw[..header_end];
    let ar = wharf_inbound::header::fields_named(header, &["Authentication-Results"]);
    let field = String::from_utf8_lossy(&header[ar.first()?.clone()]).into_owned();
    let rp = wharf_inbound::header::fields_named(header, &["Return-Path"]);
    let mut envelope_from = rp
        .first()
        .map(|r| String::from_utf8_lossy(&header[r.clone()]).into_owned())
        .and_then(|f| {
            let a = f.find('<')? + 1;
            let b = f[a..].find('>')? + a;
            Some(f[a..b].to_string())
        })
        .unwrap_or_default();
    let mut auth = AuthVerdicts::default();
    // `method=result` then properties (`header.d=…`), clauses separated by `;`.
    for clause in field.split(';').skip(1) {
        let mut words = clause.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let result = auth_result(&result.to_ascii_lowercase());
        match method.to_ascii_lowercase().as_str() {
            "spf" => {
                auth.spf = result;
                // The identity SPF checked (RFC 8601 §2.7.2).
                if let Some(m) = words.find_map(|w| w.strip_prefix("smtp.mailfrom=")) {
                    envelope_from = m.to_string();
                }
            }
            "dmarc" => auth.dmarc = result,
            "dkim" => {
                if result == AuthResult::Pass {
                    auth.dkim = AuthResult::Pass;
                    auth.dkim_pass_domains.extend(
                        words
                            .filter_map(|w| w.strip_prefix("header.d="))
                            .map(|d| d.to_ascii_lowercase()),
                    );
                } else if auth.dkim != AuthResult::Pass {
                    auth.dkim = result;
                }
            }
            _ => {}
        }
    }
    let analysis = wharf_spam::Analysis::parse(header);
    wharf_spam::rules::authenticated_sender_domain(&analysis, &auth, &envelope_from)
}

/// The store keys of a message's classifier tokens.
pub fn tokens_of(raw: &[u8]) -> Vec<i64> {
    let raw = &raw[..raw.len().min(MAX_SCANNED)];
    TokenSet::from_message(raw)
        .hashes()
        .iter()
        .map(|h| token_key(*h))
        .collect()
}

/// The spam verdict of a stored message for Sieve's `spamtest` (RFC 5235), from the first
/// `X-Spam-Status` field (ours: arriving copies of it are removed): `value` 1 (not spam) to 10,
/// 6 at the junk threshold; `percent` 50 at the threshold. `None` when the message was not
/// scored.
pub fn sieve_spam_score(raw: &[u8]) -> Option<wharf_sieve::SpamScore> {
    let ranges = wharf_inbound::header::fields_named(raw, &["X-Spam-Status"]);
    let field = std::str::from_utf8(&raw[ranges.first()?.clone()]).ok()?;
    let number = |key: &str| -> Option<f64> {
        let at = field.find(key)? + key.len();
        let rest = &field[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().ok().filter(|v| v.is_finite())
    };
    let score = number("score=")?;
    let required = number("required=").filter(|r| *r > 0.0)?;
    let ratio = score / required;
    let value = if score <= 0.0 {
        1
    } else {
        (1.0 + (ratio * 5.0).ceil()).clamp(2.0, 10.0) as u8
    };
    let percent = (ratio * 50.0).round().clamp(0.0, 100.0) as u8;
    Some(wharf_sieve::SpamScore { value, percent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spamtest_values_follow_the_stored_verdict() {
        let m = |s: &str| format!("X-Spam-Status: {s}\r\nSubject: x\r\n\r\nbody\r\n");
        let v = |s: &str| sieve_spam_score(m(s).as_bytes()).map(|s| (s.value, s.percent));
        assert_eq!(
            v("No, score=-1.5 required=6.0 tests=BAYES_00=-1.5"),
            Some((1, 0))
        );
        assert_eq!(v("No, score=0.0 required=6.0 tests="), Some((1, 0)));
        assert_eq!(v("No, score=3.0 required=6.0 tests=X=3.0"), Some((4, 25)));
        assert_eq!(v("Yes, score=6.0 required=6.0 tests=X=6.0"), Some((6, 50)));
        assert_eq!(
            v("Yes, score=50.0 required=6.0\r\n\ttests=X=50.0"),
            Some((10, 100))
        );
        assert_eq!(v("garbage"), None);
        assert_eq!(
            sieve_spam_score(b"Subject: x\r\n\r\nX-Spam-Status: score=9 required=1\r\n"),
            None
        );
    }

    #[test]
    fn the_stored_verdict_names_the_authenticated_sender_domain() {
        let m = |ar: &str, from: &str| {
            format!(
                "Return-Path: <bounce@mail.deals.test>\r\nAuthentication-Results: mx.example.test;\r\n\t{ar}\r\n\
                 X-Spam-Status: No, score=0.0 required=6.0 tests=none\r\nFrom: <{from}>\r\n\r\nbody\r\n"
            )
        };
        let d = |ar: &str, from: &str| stored_sender_domain(m(ar, from).as_bytes());
        assert_eq!(
            d("dmarc=pass header.from=deals.test", "a@deals.test").as_deref(),
            Some("deals.test")
        );
        assert_eq!(
            d(
                "spf=pass smtp.mailfrom=bounce@mail.deals.test",
                "a@deals.test"
            )
            .as_deref(),
            Some("deals.test"),
            "aligned SPF"
        );
        assert_eq!(
            d(
                "dkim=pass header.d=deals.test header.s=s1;\r\n\tspf=fail",
                "a@deals.test"
            )
            .as_deref(),
            Some("deals.test")
        );
        assert_eq!(
            d("spf=pass smtp.mailfrom=x@other.test", "a@deals.test"),
            None,
            "not aligned"
        );
        assert_eq!(d("dmarc=fail header.from=deals.test", "a@deals.test"), None);
        assert_eq!(stored_sender_domain(b"From: <a@deals.test>\r\n\r\nx"), None);
    }

    #[test]
    fn token_keys_keep_every_bit() {
        for h in [0u64, 1, u64::MAX, 1 << 63] {
            let k = token_key(h);
            assert_eq!(u64::from_ne_bytes(k.to_ne_bytes()), h);
        }
    }
}
