//! The DMARC and TLS-RPT aggregate reports other servers mailed about our domains, read from the
//! INBOX they reached (by default the one postmaster@ of the primary domain leads to, where the
//! `rua=` of `wharf dns` points) and parsed from the stored messages.

use serde::Serialize;
use wharf_directory::{Directory, Resolution};
use wharf_inbound::reports::{self, ReportSummary};

use super::{OpError, OpResult};
use crate::config::Loaded;

#[derive(Debug, Clone, Serialize)]
pub struct ReportRowView {
    pub source: String,
    pub count: u64,
    pub disposition: String,
    pub dkim: String,
    pub spf: String,
    pub header_from: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// `dmarc` or `tls-rpt`.
    pub kind: String,
    pub org: String,
    pub id: String,
    pub domain: String,
    pub begin: String,
    pub end: String,
    pub total: u64,
    pub failed: u64,
    /// Only in `show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<ReportRowView>>,
}

impl ReportView {
    pub fn of(r: &ReportSummary, with_rows: bool) -> ReportView {
        ReportView {
            kind: r.kind.as_str().to_string(),
            org: r.org.clone(),
            id: r.report_id.clone(),
            domain: r.domain.clone(),
            begin: super::rfc3339(r.begin),
            end: super::rfc3339(r.end),
            total: r.total,
            failed: r.failed,
            rows: with_rows.then(|| {
                r.rows
                    .iter()
                    .map(|row| ReportRowView {
                        source: row.source.clone(),
                        count: row.count,
                        disposition: row.disposition.clone(),
                        dkim: row.dkim.clone(),
                        spf: row.spf.clone(),
                        header_from: row.header_from.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// The reports in the account's INBOX, oldest period first.
pub async fn collect(
    dir: &Directory,
    cfg: &Loaded,
    account: Option<&str>,
) -> OpResult<Vec<ReportSummary>> {
    let store = dir.store();
    let account_id = match account {
        Some(a) => super::accounts::find(dir, a).await?.id,
        None => {
            let postmaster = format!("postmaster@{}", cfg.primary_domain());
            match dir.resolve_recipient(&postmaster).await? {
                Resolution::Local { accounts, .. } if !accounts.is_empty() => accounts[0],
                _ => {
                    return Err(OpError::not_found(format!(
                        "{postmaster} reaches no local account; name one with --account"
                    )));
                }
            }
        }
    };
    let Some(inbox) = store.get_mailbox(account_id, "INBOX").await? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in store.mailbox_index(inbox.id).await? {
        // The header is enough to pass over ordinary mail without reading it whole.
        if !looks_like_report(store, entry.message_id).await {
            continue;
        }
        let raw = match store.message_raw(entry.message_id).await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(uid = entry.uid, error = %e, "report: message unreadable, skipped");
                continue;
            }
        };
        // Parsing decompresses attachments: off the async threads.
        let parsed = tokio::task::spawn_blocking(move || reports::parse(&raw))
            .await
            .map_err(|e| OpError::internal(format!("report parser: {e}")))?;
        if let Some(r) = parsed {
            found.push(r);
        }
    }
    found.sort_by_key(|r| (r.begin, r.org.clone()));
    Ok(found)
}

/// One report by its id.
pub async fn find(
    dir: &Directory,
    cfg: &Loaded,
    account: Option<&str>,
    id: &str,
) -> OpResult<ReportSummary> {
    collect(dir, cfg, account)
        .await?
        .into_iter()
        .find(|r| r.report_id == id)
        .ok_or_else(|| OpError::not_found(format!("no report {id} (see wharf report list)")))
}

async fn looks_like_report(store: &std::sync::Arc<dyn wharf_store::Store>, id: i64) -> bool {
    use tokio::io::AsyncReadExt as _;
    let Ok((_, reader)) = store.open_message(id, 0).await else {
        return true; // let the whole read report the error
    };
    let mut head = Vec::new();
    if reader
        .take(reports::HEAD_LOOK as u64)
        .read_to_end(&mut head)
        .await
        .is_err()
    {
        return true;
    }
    reports::may_be_report(&head)
}
