//! Binds the SMTP crate's `ArrivalCheck` port to `wharf-inbound`: the trust checks of mail
//! arriving on port 25, over a resolver of its own built from `[outbound] dns_server` (one for
//! every session, so its cache serves them all).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_inbound::{Action, Verifier};
use wharf_smtp::{Arrival, ArrivalAction, ArrivalCheck, ArrivalVerdict};

use crate::config::Loaded;

pub struct InboundChecks {
    verifier: Verifier,
}

/// The checks `[inbound]` asks for; `None` when they are off.
pub fn checks(cfg: &Loaded, hostname: &str) -> anyhow::Result<Option<Arc<dyn ArrivalCheck>>> {
    let c = &cfg.config.inbound;
    if !c.enabled {
        return Ok(None);
    }
    let mut opts = hickory_resolver::config::ResolverOpts::default();
    opts.timeout = Duration::from_secs(c.dns_timeout_secs);
    opts.attempts = 2;
    let resolver = wharf_outbound::route::resolver(&cfg.config.outbound.dns_server.0, opts)
        .map_err(|e| anyhow::anyhow!("inbound checks: {e}"))?;
    let verifier = Verifier::new(resolver, c.clone(), hostname)
        .map_err(|e| anyhow::anyhow!("inbound: {e}"))?;
    Ok(Some(Arc::new(InboundChecks { verifier })))
}

#[async_trait]
impl ArrivalCheck for InboundChecks {
    async fn check(&self, arrival: &Arrival<'_>, content: &[u8]) -> ArrivalVerdict {
        let a = wharf_inbound::Arrival {
            ip: arrival.ip,
            helo: arrival.helo,
            mail_from: arrival.mail_from,
            recipients: arrival.recipients,
        };
        let v = self.verifier.check(&a, content).await;
        ArrivalVerdict {
            prepend: v.header,
            remove: v.forged,
            action: match v.action {
                Action::Deliver => ArrivalAction::Deliver,
                Action::Junk => ArrivalAction::Junk,
                Action::Reject(why) => ArrivalAction::Reject(why),
                Action::TempFail(why) => ArrivalAction::TempFail(why),
            },
        }
    }
}
