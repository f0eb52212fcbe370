//! The checks themselves: SPF (HELO and MAIL FROM identities, our own evaluator in `spf`), and
//! DKIM, ARC, DMARC and iprev through mail-auth, over one shared resolver (hickory caches
//! answers by their TTL, negative answers included), each query bounded by the configured
//! timeout, SPF by its own deadline and the whole check by another, so a slow DNS never holds
//! an SMTP session past its limits.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dmarc::Policy as DmarcPolicy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, IprevResult,
    MessageAuthenticator, SpfOutput, SpfResult,
};

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::dkim::Done;
use wharf_net::IpNet;

/// Header fields the ARC-Message-Signature covers, when present.
const SEALED_HEADERS: [&str; 14] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "DKIM-Signature",
    "List-Id",
];

use crate::aggregate::{self, DkimAuth};
use crate::config::{Disposition, InboundConfig};
use crate::{header, spf};

/// The SMTP facts of one arriving message.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub ip: IpAddr,
    /// The EHLO/HELO argument.
    pub helo: &'a str,
    /// The reverse-path without brackets; empty for the null sender.
    pub mail_from: &'a str,
    /// The recipients' addresses (their domains choose the policy).
    pub recipients: &'a [String],
    /// Some recipient is forwarded outside (an alias to a remote address): seal with ARC.
    pub forwarding: bool,
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deliver,
    /// File into the recipients' Junk mailbox.
    Junk,
    /// Refuse permanently (`550 5.7.1`).
    Reject(String),
    /// Refuse for now (`451 4.7.x`): a DNS failure left the verdict open.
    TempFail(String),
}

/// The verdicts and what follows from them.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `Authentication-Results: …\r\n`, ours, to put on top of the message.
    pub header: String,
    /// Byte ranges of the message's header section holding Authentication-Results fields that
    /// claim our authserv-id (forged, or left from an earlier hop of ours): to be removed.
    pub forged: Vec<std::ops::Range<usize>>,
    pub action: Action,
    pub spf: SpfResult,
    /// `pass`, `fail`, `none`, … of the DMARC evaluation.
    pub dmarc: &'static str,
    /// This message's line in the day's aggregate report to the author domain, when that
    /// domain's DMARC record asks for reports (`rua=`) and the message was not deferred.
    pub observation: Option<aggregate::Observation>,
    /// The RFC 5322.From domain DMARC evaluated (empty when there was none).
    pub from_domain: String,
    /// Our ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results), CRLF-ended,
    /// for the copy that is forwarded; `None` unless the arrival is forwarded and a sealing key
    /// is configured.
    pub arc_seal: Option<String>,
    /// Each method's result as its RFC 8601 keyword, for the spam filter's rules.
    pub methods: MethodResults,
}

/// The result of each method as its RFC 8601 keyword (`pass`, `fail`, `softfail`, `none`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResults {
    pub spf: &'static str,
    /// `pass` if a signature verified, else the first signature's result (`none` if unsigned).
    pub dkim: &'static str,
    /// The `d=` domains whose signatures verified.
    pub dkim_pass_domains: Vec<String>,
    pub dmarc: &'static str,
    /// The author domain's published policy: `none`, `quarantine`, `reject` (`none` if absent).
    pub dmarc_policy: &'static str,
    pub arc: &'static str,
    pub iprev: &'static str,
}

impl Default for MethodResults {
    fn default() -> Self {
        MethodResults {
            spf: "none",
            dkim: "none",
            dkim_pass_domains: Vec::new(),
            dmarc: "none",
            dmarc_policy: "none",
            arc: "none",
            iprev: "none",
        }
    }
}

/// Verifies arriving mail; one per server, shared by every session.
pub struct Verifier {
    auth: MessageAuthenticator,
    sealer: Option<ArcSealer<RsaKey<Sha256>, Done>>,
    cfg: InboundConfig,
    authserv_id: String,
    forwarders: Vec<IpNet>,
    deadline: Duration,
    spf_deadline: Duration,
}

impl Verifier {
    /// `resolver`: the server's resolver (shared with outbound delivery, so both use one cache).
    pub fn new(
        resolver: hickory_resolver::TokioResolver,
        cfg: InboundConfig,
        hostname: &str,
    ) -> Result<Verifier, String> {
        cfg.validate()?;
        let forwarders = cfg
            .trusted_forwarders
            .iter()
            .filter_map(|f| f.parse::<IpNet>().ok())
            .collect();
        let authserv_id = cfg
            .authserv_id
            .clone()
            .unwrap_or_else(|| hostname.to_ascii_lowercase());
        // Bounds the whole check: SPF (HELO and MAIL FROM side by side, each also bounded by
        // `spf_deadline_secs`, kept below this), DKIM, ARC, DMARC and iprev.
        let deadline = Duration::from_secs(cfg.dns_timeout_secs.saturating_mul(6));
        // Below the whole check's deadline, or a slow SPF chain would end DKIM and DMARC too
        // (an admin who lowers `dns_timeout_secs` lowers SPF's time with it).
        let spf_deadline = Duration::from_secs(cfg.spf_deadline_secs).min(
            deadline
                .saturating_sub(Duration::from_secs(1))
                .max(Duration::from_secs(1)),
        );
        Ok(Verifier {
            auth: MessageAuthenticator(resolver),
            sealer: None,
            cfg,
            authserv_id,
            forwarders,
            deadline,
            spf_deadline,
        })
    }

    /// Seals forwarded mail with ARC as `domain` (`selector._domainkey.domain` publishes the
    /// key). RFC 8617 defines rsa-sha256 only, so the key is RSA (PKCS#8 or PKCS#1 PEM).
    pub fn with_arc_sealer(
        mut self,
        domain: &str,
        selector: &str,
        pem: &[u8],
    ) -> Result<Verifier, String> {
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject as _;
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("ARC key: {e}"))?;
        let key = RsaKey::<Sha256>::from_key_der(der)
            .map_err(|e| format!("ARC key (RSA needed): {e}"))?;
        self.sealer = Some(
            ArcSealer::from_key(key)
                .domain(domain.to_ascii_lowercase())
                .selector(selector)
                .headers(SEALED_HEADERS.iter().copied()),
        );
        Ok(self)
    }

    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// Runs every check on `message` (the content as the client sent it, without our trace
    /// headers). Never fails: a DNS failure is a `temperror` verdict.
    pub async fn check(&self, arrival: &Arrival<'_>, message: &[u8]) -> Verdict {
        match tokio::time::timeout(self.deadline, self.check_inner(arrival, message)).await {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(ip = %arrival.ip, "inbound checks ran out of time (DNS too slow)");
                let header = format!(
                    "Authentication-Results: {};\r\n\tdmarc=temperror (DNS timeout)\r\n",
                    self.authserv_id
                );
                let action =
                    if self.cfg.tempfail_on_dns_error && !self.trusted(arrival.ip.to_canonical()) {
                        Action::TempFail("DNS lookups for the sender's policy timed out".into())
                    } else {
                        Action::Deliver
                    };
                Verdict {
                    header,
                    forged: header::our_results(message, &self.authserv_id),
                    action,
                    spf: SpfResult::TempError,
                    dmarc: "temperror",
                    observation: None,
                    from_domain: String::new(),
                    arc_seal: None,
                    methods: MethodResults {
                        spf: "temperror",
                        dmarc: "temperror",
                        ..MethodResults::default()
                    },
                }
            }
        }
    }

    async fn check_inner(&self, arrival: &Arrival<'_>, message: &[u8]) -> Verdict {
        // RFC 7208 §5: an IPv4-mapped IPv6 client is an IPv4 client (ip4, A records).
        let ip = arrival.ip.to_canonical();
        let helo = arrival.helo;
        // The three lookups are independent: one DNS wait instead of three in a row. The HELO
        // identity goes through the same path as MAIL FROM (an empty sender means HELO).
        let (iprev, spf_helo, spf_sender) = tokio::join!(
            async {
                if self.cfg.iprev {
                    Some(self.auth.verify_iprev(ip).await)
                } else {
                    None
                }
            },
            self.spf_mail_from(ip, helo, ""),
            async {
                if arrival.mail_from.is_empty() {
                    None
                } else {
                    Some(self.spf_mail_from(ip, helo, arrival.mail_from).await)
                }
            },
        );
        let spf_mail = spf_sender.unwrap_or_else(|| spf_helo.clone());
        let mail_from_domain = match arrival.mail_from.rsplit_once('@') {
            Some((_, d)) => d,
            None => helo,
        };
        let forged = header::our_results(message, &self.authserv_id);
        let mut results = AuthenticationResults::new(&self.authserv_id);
        let parsed = AuthenticatedMessage::parse(message);
        // RFC 8601 §2.7.1: say `none` for an unsigned message, `permerror` for signatures that
        // could not even be parsed (mail-auth leaves both out).
        let mut dkim_note: Option<&str> = None;
        let mut arc_out = None;
        let (dmarc_out, from_domain, arc_pass_by, dkim_auth) = match &parsed {
            Some(msg) => {
                let dkim = self.auth.verify_dkim(msg).await;
                let dkim_auth: Vec<DkimAuth> = dkim
                    .iter()
                    .filter_map(|o| {
                        o.signature().map(|sig| DkimAuth {
                            domain: sig.d.to_ascii_lowercase(),
                            selector: sig.s.clone(),
                            result: dkim_label(o.result()).to_string(),
                        })
                    })
                    .collect();
                if dkim.is_empty() {
                    dkim_note = Some(if msg.has_dkim_errors {
                        "dkim=permerror (malformed signature)"
                    } else {
                        "dkim=none (no signatures)"
                    });
                }
                let arc = self.auth.verify_arc(msg).await;
                let dmarc = self
                    .auth
                    .verify_dmarc(DmarcParameters::new(
                        msg,
                        &dkim,
                        mail_from_domain,
                        &spf_mail,
                    ))
                    .await;
                let from_domain = msg
                    .from
                    .first()
                    .and_then(|f| f.rsplit_once('@'))
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default();
                results = results.with_dkim_results(&dkim, &from_domain);
                let arc_pass_by = match arc.result() {
                    DkimResult::Pass => arc.sets().last().map(|s| s.seal.header.d.to_string()),
                    _ => None,
                };
                if !msg.ams_headers.is_empty() || !msg.as_headers.is_empty() {
                    results = results.with_arc_result(&arc, ip);
                }
                arc_out = Some(arc);
                (Some(dmarc), from_domain, arc_pass_by, dkim_auth)
            }
            None => (None, String::new(), None, Vec::new()),
        };
        results = results
            .with_spf_ehlo_result(&spf_helo, ip, helo)
            .with_spf_mailfrom_result(&spf_mail, ip, arrival.mail_from, helo);
        if let Some(d) = &dmarc_out {
            results = results.with_dmarc_result(d);
        }
        if let Some(iprev) = &iprev {
            results = results.with_iprev_result(iprev, ip);
        }
        let mut header = {
            use mail_auth::common::headers::HeaderWriter as _;
            results.to_header()
        };
        if let Some(note) = dkim_note
            && let Some(at) = header.find(";\r\n\t")
        {
            header.insert_str(at + 4, &format!("{note};\r\n\t"));
        }
        // Mail we pass on (an alias pointing outside) gets our ARC set (RFC 8617 §5.1), so its
        // next receiver can trust our verdict once forwarding has broken SPF.
        let arc_seal = match (&self.sealer, &parsed, &arc_out) {
            (Some(sealer), Some(msg), Some(arc)) if arrival.forwarding => {
                use mail_auth::common::headers::HeaderWriter as _;
                match sealer.seal(msg, &results, arc) {
                    Ok(set) => Some(set.to_header()),
                    Err(e) => {
                        tracing::warn!(error = %e, "ARC sealing failed; forwarding unsealed");
                        None
                    }
                }
            }
            _ => None,
        };
        let dmarc_label = match dmarc_out.as_ref().map(|d| d.result()) {
            Some(DmarcResult::Pass) => "pass",
            Some(DmarcResult::Fail(_)) => "fail",
            Some(DmarcResult::TempError(_)) => "temperror",
            Some(DmarcResult::PermError(_)) => "permerror",
            Some(DmarcResult::None) | None => "none",
        };
        let dkim_pass_domains: Vec<String> = dkim_auth
            .iter()
            .filter(|d| d.result == "pass")
            .map(|d| d.domain.clone())
            .collect();
        let methods = MethodResults {
            spf: spf_label(spf_mail.result()),
            dkim: if !dkim_pass_domains.is_empty() {
                "pass"
            } else {
                dkim_auth
                    .first()
                    .map(|d| label_of(&d.result))
                    .or(dkim_note.map(|n| {
                        if n.contains("permerror") {
                            "permerror"
                        } else {
                            "none"
                        }
                    }))
                    .unwrap_or("none")
            },
            dkim_pass_domains,
            dmarc: dmarc_label,
            dmarc_policy: match dmarc_out.as_ref().map(|d| d.policy()) {
                Some(mail_auth::dmarc::Policy::Reject) => "reject",
                Some(mail_auth::dmarc::Policy::Quarantine) => "quarantine",
                _ => "none",
            },
            arc: arc_out.as_ref().map_or("none", |a| dkim_label(a.result())),
            iprev: iprev.as_ref().map_or("none", |i| iprev_label(&i.result)),
        };
        let action = self.decide(
            arrival,
            spf_mail.result(),
            dmarc_out.as_ref(),
            arc_pass_by.as_deref(),
        );
        let observation = dmarc_out.as_ref().and_then(|d| {
            self.observe(
                arrival,
                d,
                dkim_auth,
                &spf_mail,
                &from_domain,
                &action,
                arc_pass_by.as_deref(),
            )
        });
        metrics::counter!("wharf_inbound_verdicts_total", "dmarc" => dmarc_label, "action" => action_label(&action)).increment(1);
        tracing::info!(
            ip = %ip,
            helo,
            mail_from = arrival.mail_from,
            spf = ?spf_mail.result(),
            dmarc = dmarc_label,
            from_domain = %from_domain,
            iprev = ?iprev.as_ref().map(|i| iprev_label(&i.result)),
            action = action_label(&action),
            "inbound verdict"
        );
        Verdict {
            header,
            forged,
            action,
            spf: spf_mail.result(),
            dmarc: dmarc_label,
            observation,
            from_domain,
            arc_seal,
            methods,
        }
    }

    /// The aggregate-report line of a message whose author domain asks for reports.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        arrival: &Arrival<'_>,
        dmarc: &mail_auth::DmarcOutput,
        dkim: Vec<DkimAuth>,
        spf: &SpfOutput,
        header_from: &str,
        action: &Action,
        arc_pass_by: Option<&str>,
    ) -> Option<aggregate::Observation> {
        let record = dmarc.dmarc_record()?;
        if record.rua.is_empty() {
            return None;
        }
        let disposition = match action {
            Action::Deliver => "none",
            Action::Junk => "quarantine",
            Action::Reject(_) => "reject",
            // Not accepted yet: the retry will be counted.
            Action::TempFail(_) => return None,
        };
        let failed = matches!(dmarc.result(), DmarcResult::Fail(_));
        let mut reasons = Vec::new();
        if failed && strength(disposition) < strength(&dmarc.policy().to_string()) {
            reasons.push(if self.trusted(arrival.ip.to_canonical()) {
                ("trusted_forwarder".to_string(), String::new())
            } else if let Some(sealer) = arc_pass_by {
                (
                    "mailing_list".to_string(),
                    format!("arc=pass as sealed by {sealer}"),
                )
            } else {
                ("local_policy".to_string(), String::new())
            });
        }
        let alignment = |a: mail_auth::dmarc::Alignment| match a {
            mail_auth::dmarc::Alignment::Strict => "s".to_string(),
            mail_auth::dmarc::Alignment::Relaxed => "r".to_string(),
        };
        let p = record.p.to_string();
        let sp = match record.sp {
            DmarcPolicy::Unspecified => p.clone(),
            sp => sp.to_string(),
        };
        let policy = aggregate::PublishedPolicy {
            domain: dmarc.domain().to_ascii_lowercase(),
            adkim: alignment(record.adkim),
            aspf: alignment(record.aspf),
            p,
            sp,
            pct: if record.t { 0 } else { 100 },
            fo: match record.fo {
                mail_auth::dmarc::Report::All => "0",
                mail_auth::dmarc::Report::Any => "1",
                mail_auth::dmarc::Report::Dkim => "d",
                mail_auth::dmarc::Report::Spf => "s",
                mail_auth::dmarc::Report::DkimSpf => "d:s",
            }
            .to_string(),
            rua: record
                .rua
                .iter()
                .map(|u| (u.uri().to_string(), u.max_size() as u64))
                .collect(),
        };
        let row = aggregate::ObservedRow {
            source_ip: arrival.ip.to_canonical(),
            disposition: disposition.to_string(),
            dkim_aligned: *dmarc.dkim_result() == DmarcResult::Pass,
            spf_aligned: *dmarc.spf_result() == DmarcResult::Pass,
            reasons,
            envelope_from: spf.domain().to_ascii_lowercase(),
            header_from: header_from.to_string(),
            dkim,
            spf: vec![aggregate::SpfAuth {
                domain: spf.domain().to_ascii_lowercase(),
                scope: if arrival.mail_from.is_empty() {
                    "helo"
                } else {
                    "mfrom"
                }
                .to_string(),
                result: spf_label(spf.result()).to_string(),
            }],
        };
        Some(aggregate::Observation { policy, row })
    }

    /// SPF of the MAIL FROM identity as `check` evaluates it; with the null reverse-path (empty
    /// `mail_from`) the HELO identity stands for it (RFC 7208 §2.4). Wharf's own evaluator
    /// (`crate::spf`), bounded by `spf_deadline_secs`.
    pub async fn spf_mail_from(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfOutput {
        spf::evaluate(
            self.auth.resolver(),
            ip,
            helo,
            mail_from,
            &self.authserv_id,
            self.spf_deadline,
        )
        .await
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        wharf_net::in_any(&self.forwarders, &ip)
    }

    /// The policy: DMARC decides when the author domain has a policy; otherwise SPF `fail`
    /// follows `spf_fail`. Trusted forwarders, and a passing ARC chain sealed by a trusted
    /// sealer, are never refused. With several recipient domains the most lenient policy wins:
    /// one reply covers them all, and no recipient's mail is refused for another's policy.
    fn decide(
        &self,
        arrival: &Arrival<'_>,
        spf: SpfResult,
        dmarc: Option<&mail_auth::DmarcOutput>,
        arc_pass_by: Option<&str>,
    ) -> Action {
        if self.trusted(arrival.ip.to_canonical()) {
            return Action::Deliver;
        }
        if let Some(sealer) = arc_pass_by
            && self
                .cfg
                .trusted_arc_sealers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(sealer))
        {
            return Action::Deliver;
        }
        let mut domains: Vec<&str> = arrival
            .recipients
            .iter()
            .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d))
            .collect();
        if domains.is_empty() {
            domains.push("");
        }
        let mut best: Option<Action> = None;
        for d in domains {
            let policy = self.cfg.policy_for(d);
            let action = match dmarc {
                Some(out) if out.dmarc_record().is_some() => {
                    // mail-auth already lowers the policy one step for t=y (DMARCbis testing).
                    match out.result() {
                        DmarcResult::Fail(_) => match out.policy() {
                            DmarcPolicy::Reject if policy.dmarc_reject => Action::Reject(format!(
                                "DMARC policy of {} refuses this message",
                                out.domain()
                            )),
                            DmarcPolicy::Reject | DmarcPolicy::Quarantine
                                if policy.dmarc_quarantine =>
                            {
                                Action::Junk
                            }
                            _ => Action::Deliver,
                        },
                        DmarcResult::TempError(_) if self.cfg.tempfail_on_dns_error => {
                            Action::TempFail("DNS lookups for the sender's policy failed".into())
                        }
                        _ => Action::Deliver,
                    }
                }
                _ => match spf {
                    SpfResult::Fail => match policy.spf_fail {
                        Disposition::Reject => Action::Reject(format!(
                            "SPF of {} does not authorise {}",
                            arrival
                                .mail_from
                                .rsplit_once('@')
                                .map_or(arrival.helo, |(_, d)| d),
                            arrival.ip
                        )),
                        Disposition::Junk => Action::Junk,
                        Disposition::Accept => Action::Deliver,
                    },
                    SpfResult::TempError if self.cfg.tempfail_on_dns_error => {
                        Action::TempFail("DNS lookups for the sender's SPF failed".into())
                    }
                    _ => Action::Deliver,
                },
            };
            best = Some(match best {
                None => action,
                Some(b) => lenient(b, action),
            });
        }
        best.unwrap_or(Action::Deliver)
    }
}

fn severity(a: &Action) -> u8 {
    match a {
        Action::Deliver => 0,
        Action::Junk => 1,
        Action::TempFail(_) => 2,
        Action::Reject(_) => 3,
    }
}

fn lenient(a: Action, b: Action) -> Action {
    if severity(&b) < severity(&a) { b } else { a }
}

fn action_label(a: &Action) -> &'static str {
    match a {
        Action::Deliver => "deliver",
        Action::Junk => "junk",
        Action::Reject(_) => "reject",
        Action::TempFail(_) => "tempfail",
    }
}

fn strength(disposition: &str) -> u8 {
    match disposition {
        "reject" => 2,
        "quarantine" => 1,
        _ => 0,
    }
}

fn dkim_label(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// The static keyword equal to `s` (results kept as strings in `DkimAuth`).
fn label_of(s: &str) -> &'static str {
    ["pass", "neutral", "fail", "permerror", "temperror", "none"]
        .into_iter()
        .find(|l| *l == s)
        .unwrap_or("none")
}

fn spf_label(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn iprev_label(r: &IprevResult) -> &'static str {
    match r {
        IprevResult::Pass => "pass",
        IprevResult::Fail(_) => "fail",
        IprevResult::TempError(_) => "temperror",
        IprevResult::PermError(_) => "permerror",
        IprevResult::None => "none",
    }
}
