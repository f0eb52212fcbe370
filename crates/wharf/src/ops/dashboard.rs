//! The web admin's dashboard: what an operator looks at first. Counts from the store, the queue's
//! size, the certificate's expiry, and the local checks that need no network (the DNS and port
//! checks are `wharf doctor`'s, run from outside).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use wharf_directory::Directory;
use wharf_store::queue::{QueueStore, RecipientState};

use super::OpResult;
use crate::config::Loaded;
use crate::doctor::cert;

#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub entries: usize,
    /// Entries with at least one failed attempt, waiting for the next.
    pub deferred: usize,
    pub recipients_pending: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    pub file: String,
    pub names: Vec<String>,
    pub not_after: String,
    pub days_left: i64,
    pub issuer: String,
    pub self_signed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub domains: usize,
    pub accounts: usize,
    pub admins: usize,
    pub queue: QueueSummary,
    pub certificate: Option<CertificateView>,
    pub certificate_error: Option<String>,
    pub checks: Vec<Check>,
}

fn check(name: impl Into<String>, status: &'static str, message: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        message: message.into(),
    }
}

/// The certificate in the configured (or generated) file.
fn certificate(cfg: &Loaded) -> Result<CertificateView, String> {
    let (path, _, _) = cfg.tls_paths();
    let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let der = match rustls_pki_types::CertificateDer::pem_slice_iter(&pem).next() {
        Some(Ok(c)) => c,
        _ => return Err(format!("{} holds no PEM certificate", path.display())),
    };
    let f = cert::facts(der.as_ref())?;
    let now = chrono::Utc::now().timestamp();
    Ok(CertificateView {
        file: path.display().to_string(),
        names: f.names,
        not_after: cert::date(f.not_after),
        days_left: cert::days_left(f.not_after, now),
        issuer: f.issuer,
        self_signed: f.self_signed,
    })
}

pub async fn get(
    cfg: &Loaded,
    dir: &Directory,
    queue: &Arc<dyn QueueStore>,
) -> OpResult<Dashboard> {
    let domains = super::domains::list(dir).await?;
    let accounts = super::accounts::list(dir, None).await?;
    let entries = super::queue::list(queue).await?;
    let summary = QueueSummary {
        entries: entries.len(),
        deferred: entries.iter().filter(|e| e.attempts > 0).count(),
        recipients_pending: entries
            .iter()
            .flat_map(|e| e.recipients.iter())
            .filter(|r| r.state == RecipientState::Pending)
            .count(),
    };
    let mut checks = Vec::new();
    let (certificate, certificate_error) = match certificate(cfg) {
        Ok(c) => {
            let status = if c.days_left < 7 {
                "fail"
            } else if c.days_left < 21 || c.self_signed {
                "warn"
            } else {
                "ok"
            };
            let mut msg = format!("{} days left", c.days_left);
            if c.self_signed {
                msg.push_str("; self-signed, so mail clients warn (enable [acme])");
            }
            if !cert::covers(&c.names, &cfg.config.server.hostname) {
                msg.push_str(&format!("; does not cover {}", cfg.config.server.hostname));
            }
            checks.push(check("certificate", status, msg));
            (Some(c), None)
        }
        Err(e) => {
            checks.push(check("certificate", "fail", e.clone()));
            (None, Some(e))
        }
    };
    // Every domain's keys from one read of the store (each key opened once).
    let stored = crate::dns_records::stored_keys(cfg, &**dir.store())
        .await
        .map_err(|e| format!("{e:#}"));
    for d in &domains {
        let records = match &stored {
            Ok(keys) => crate::dns_records::dkim_records(keys, &d.name.to_ascii_lowercase())
                .map_err(|e| format!("{e:#}")),
            Err(e) => Err(e.clone()),
        };
        match records {
            Ok(keys) if !keys.is_empty() => checks.push(check(
                format!("DKIM {}", d.name),
                "ok",
                format!("{} key(s)", keys.len()),
            )),
            Ok(_) => checks.push(check(
                format!("DKIM {}", d.name),
                "warn",
                "no DKIM key: generate one on the domain's page and publish its record",
            )),
            Err(e) => checks.push(check(format!("DKIM {}", d.name), "fail", e)),
        }
    }
    let stuck = entries.iter().filter(|e| e.attempts >= 5).count();
    checks.push(if stuck == 0 {
        check("queue", "ok", "no message has failed 5 attempts")
    } else {
        check(
            "queue",
            "warn",
            format!("{stuck} message(s) failed 5 or more attempts: see the queue page"),
        )
    });
    Ok(Dashboard {
        domains: domains.len(),
        admins: accounts.iter().filter(|a| a.admin).count(),
        accounts: accounts.len(),
        queue: summary,
        certificate,
        certificate_error,
        checks,
    })
}
