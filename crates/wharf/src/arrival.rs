//! Binds the SMTP crate's `ArrivalCheck` port to `wharf-inbound`: the trust checks of mail
//! arriving on port 25, over a resolver of its own built from `[outbound] dns_server` (one for
//! every session, so its cache serves them all).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_inbound::{Action, Verifier};
use wharf_smtp::{Arrival, ArrivalAction, ArrivalCheck, ArrivalVerdict};

use crate::config::Loaded;
use crate::dkim_keys::StoredKey;
use crate::spam_filter::SpamFilter;

pub struct InboundChecks {
    /// `None` when `[inbound] enabled = false`.
    verifier: Option<Verifier>,
    /// `None` when `[spam] enabled = false`.
    spam: Option<Arc<SpamFilter>>,
    /// Counts for the DMARC aggregate reports we send (`[reports] dmarc_aggregate`).
    reports: Option<Arc<crate::reporting::Counter>>,
}

/// The checks `[inbound]` and `[spam]` ask for; `None` when both are off.
pub fn checks(
    cfg: &Loaded,
    hostname: &str,
    reports: Option<Arc<crate::reporting::Counter>>,
    spam: Option<Arc<SpamFilter>>,
    dkim_keys: &[StoredKey],
) -> anyhow::Result<Option<Arc<dyn ArrivalCheck>>> {
    let c = &cfg.config.inbound;
    if !c.enabled {
        return Ok(spam.map(|spam| {
            Arc::new(InboundChecks {
                verifier: None,
                spam: Some(spam),
                reports: None,
            }) as Arc<dyn ArrivalCheck>
        }));
    }
    let mut opts = hickory_resolver::config::ResolverOpts::default();
    opts.timeout = Duration::from_secs(c.dns_timeout_secs);
    opts.attempts = 2;
    let resolver = wharf_outbound::route::resolver(&cfg.config.outbound.dns_server.0, opts)
        .map_err(|e| anyhow::anyhow!("inbound checks: {e}"))?;
    let mut verifier = Verifier::new(resolver, c.clone(), hostname)
        .map_err(|e| anyhow::anyhow!("inbound: {e}"))?;
    let domain = cfg.primary_domain();
    match arc_key(dkim_keys, &domain) {
        Some((selector, pem)) => {
            verifier = verifier
                .with_arc_sealer(&domain, &selector, &pem)
                .map_err(|e| anyhow::anyhow!("inbound: {e}"))?;
            tracing::info!(domain, selector, "forwarded mail is ARC-sealed");
        }
        None => tracing::info!(
            domain,
            "no RSA DKIM key for the primary domain: forwarded mail is not ARC-sealed (wharf dkim generate --algo rsa)"
        ),
    }
    Ok(Some(Arc::new(InboundChecks {
        verifier: Some(verifier),
        spam,
        reports,
    })))
}

/// The primary domain's RSA signing key (selector, PEM): RFC 8617 seals with rsa-sha256 only.
fn arc_key(keys: &[StoredKey], domain: &str) -> Option<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = crate::dkim_keys::of_domain(keys, domain)
        .filter(|k| {
            wharf_outbound::dkim::DkimKey::from_pem(domain, &k.selector, &k.pem)
                .is_ok_and(|key| key.algorithm == wharf_outbound::dkim::Algorithm::Rsa)
        })
        .map(|k| (k.selector.clone(), k.pem.clone()))
        .collect();
    // Dated selectors (202612r): the newest key seals.
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().next()
}

#[async_trait]
impl ArrivalCheck for InboundChecks {
    async fn check(&self, arrival: &Arrival<'_>, content: &[u8]) -> ArrivalVerdict {
        let mut verdict = ArrivalVerdict {
            prepend: String::new(),
            remove: Vec::new(),
            forward_prepend: String::new(),
            action: ArrivalAction::Deliver,
            junk_for: Vec::new(),
        };
        let mut methods = None;
        if let Some(verifier) = &self.verifier {
            let a = wharf_inbound::Arrival {
                ip: arrival.ip,
                helo: arrival.helo,
                mail_from: arrival.mail_from,
                recipients: arrival.recipients,
                forwarding: arrival.forwarding,
            };
            let v = verifier.check(&a, content).await;
            if let (Some(counter), Some(observation)) = (&self.reports, &v.observation) {
                counter.dmarc(observation);
            }
            verdict.prepend = v.header;
            verdict.remove = v.forged;
            verdict.forward_prepend = v.arc_seal.unwrap_or_default();
            verdict.action = match v.action {
                Action::Deliver => ArrivalAction::Deliver,
                Action::Junk => ArrivalAction::Junk,
                Action::Reject(why) => ArrivalAction::Reject(why),
                Action::TempFail(why) => ArrivalAction::TempFail(why),
            };
            methods = Some(v.methods);
        }
        // A refusal by policy stands on its own; scoring it would only cost DNS lookups.
        if let Some(spam) = &self.spam
            && matches!(verdict.action, ArrivalAction::Deliver | ArrivalAction::Junk)
        {
            let s = spam.score(arrival, content, methods.as_ref()).await;
            verdict.prepend.push_str(&s.headers);
            verdict.remove.extend(s.forged);
            verdict.remove.sort_by_key(|r| r.start);
            match s.action {
                None | Some(ArrivalAction::Deliver) => {
                    // Quarantine by policy files every copy in Junk; otherwise the recipients'
                    // own verdicts may differ.
                    if verdict.action == ArrivalAction::Deliver {
                        verdict.junk_for = s.junk_for;
                    }
                }
                Some(ArrivalAction::Junk) => verdict.action = ArrivalAction::Junk,
                Some(other) => verdict.action = other,
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_outbound::dkim::{Algorithm, generate};

    fn key(selector: &str, algorithm: Algorithm) -> StoredKey {
        StoredKey {
            domain: "example.test".into(),
            selector: selector.into(),
            pem: generate("example.test", selector, algorithm)
                .unwrap()
                .private_key_pem
                .into_bytes(),
        }
    }

    #[test]
    fn the_arc_key_is_the_newest_rsa_key_of_the_domain() {
        let mut keys = Vec::new();
        assert!(arc_key(&keys, "example.test").is_none());
        keys.push(key("e1", Algorithm::Ed25519));
        assert!(
            arc_key(&keys, "example.test").is_none(),
            "Ed25519 cannot seal ARC"
        );
        keys.push(key("202611r", Algorithm::Rsa));
        keys.push(key("202612r", Algorithm::Rsa));
        let mut other = key("202701r", Algorithm::Rsa);
        other.domain = "other.test".into();
        keys.push(other);
        let (selector, pem) = arc_key(&keys, "example.test").unwrap();
        assert_eq!(selector, "202612r");
        assert!(String::from_utf8_lossy(&pem).contains("PRIVATE KEY"));
    }
}
