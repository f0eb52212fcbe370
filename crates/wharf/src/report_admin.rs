//! `wharf report list|show`: the DMARC and TLS-RPT aggregate reports other servers mailed about
//! our domains, read from the INBOX they reached (by default the one postmaster@ of the primary
//! domain leads to, where the `rua=` of `wharf dns` points) and parsed from the stored messages.
//! The messages are the record; nothing is copied into a table of its own.

use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use wharf_directory::Directory;
use wharf_inbound::reports::ReportSummary;

use crate::cli::ReportCmd;
use crate::config::Loaded;
use crate::storage::open_directory;

pub async fn run(cfg: &Loaded, cmd: ReportCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        ReportCmd::List { account } => {
            let found = collect(&dir, cfg, account.as_deref()).await?;
            print!("{}", list(&found));
        }
        ReportCmd::Send { day, save } => {
            for line in send(cfg, &day, save.as_deref()).await? {
                println!("{line}");
            }
        }
        ReportCmd::Show { id, account } => {
            let r = crate::ops::reports::find(&dir, cfg, account.as_deref(), &id).await?;
            print!("{}", show(&r));
        }
    }
    Ok(())
}

/// `wharf report send`: the reports of one day, made and queued now (a running server's worker
/// sends them at its next queue poll).
async fn send(cfg: &Loaded, day: &str, save: Option<&std::path::Path>) -> Result<Vec<String>> {
    let day = parse_day(day, chrono::Utc::now().timestamp())?;
    if let Some(dir) = save {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let opened = wharf_store::open_all(
        &crate::storage::store_config(cfg),
        crate::storage::pg_timeouts(cfg),
    )
    .await
    .map_err(|e| anyhow!("cannot open the store {}: {e}", cfg.store_url()))?;
    let hostname = cfg.config.server.hostname.clone();
    // Reports are signed like any outbound mail, with the store's DKIM keys.
    let dkim_keys = crate::dns_records::stored_keys(cfg, &*opened.store).await?;
    let directory = Directory::new(opened.store, crate::storage::directory_config(cfg));
    // Only queues the reports (the worker is not started): it never holds a lease.
    let node = crate::outbound_node::OutboundNode::build(
        cfg,
        &hostname,
        "wharf-report-send",
        &directory,
        opened.queue,
        None,
        &dkim_keys,
    )?;
    let reporter = crate::reporting::Reporter::new(
        cfg,
        &hostname,
        opened.tallies,
        node.outbound.clone(),
        vec![crate::reporting::DMARC, crate::reporting::TLSRPT],
    )?;
    let lines = reporter.send_day(day, save).await?;
    if lines.is_empty() {
        return Ok(vec![format!(
            "nothing counted for {} (reports are counted while [reports] enables them)",
            day_text(day)
        )]);
    }
    Ok(lines)
}

/// `today`, `yesterday` or `YYYY-MM-DD` as a UTC day number.
fn parse_day(text: &str, now: i64) -> Result<i64> {
    let today = wharf_store::tally::utc_day(now);
    match text {
        "today" => Ok(today),
        "yesterday" => Ok(today - 1),
        _ => {
            let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| anyhow!("--day {text}: expected YYYY-MM-DD, today or yesterday"))?;
            let secs = date
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp())
                .ok_or_else(|| anyhow!("--day {text}: not a day"))?;
            Ok(wharf_store::tally::utc_day(secs))
        }
    }
}

fn day_text(day: i64) -> String {
    chrono::DateTime::from_timestamp(day.saturating_mul(86_400), 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

/// The reports in the account's INBOX, oldest period first.
async fn collect(
    dir: &Directory,
    cfg: &Loaded,
    account: Option<&str>,
) -> Result<Vec<ReportSummary>> {
    Ok(crate::ops::reports::collect(dir, cfg, account).await?)
}

fn day(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ts.to_string())
}

fn list(found: &[ReportSummary]) -> String {
    let mut out = String::new();
    if found.is_empty() {
        out.push_str("no reports\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<8} {:<28} {:<24} {:<20} {:<35} {:>8} {:>8}",
        "KIND", "FROM", "ID", "DOMAIN", "PERIOD (UTC)", "TOTAL", "FAILED"
    );
    for r in found {
        let _ = writeln!(
            out,
            "{:<8} {:<28} {:<24} {:<20} {:<35} {:>8} {:>8}",
            r.kind.as_str(),
            r.org,
            r.report_id,
            r.domain,
            format!("{} .. {}", day(r.begin), day(r.end)),
            r.total,
            r.failed
        );
    }
    out
}

fn show(r: &ReportSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kind:    {}", r.kind.as_str());
    let _ = writeln!(out, "from:    {}", r.org);
    let _ = writeln!(out, "id:      {}", r.report_id);
    let _ = writeln!(out, "domain:  {}", r.domain);
    let _ = writeln!(out, "period:  {} .. {} UTC", day(r.begin), day(r.end));
    let _ = writeln!(out, "total:   {}   failed: {}", r.total, r.failed);
    let _ = writeln!(
        out,
        "\n{:<40} {:>8} {:<24} {:<10} {:<10} FROM / MX",
        "SOURCE", "COUNT", "DISPOSITION", "DKIM", "SPF"
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "{:<40} {:>8} {:<24} {:<10} {:<10} {}",
            row.source, row.count, row.disposition, row.dkim, row.spf, row.header_from
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_day_numbers() {
        let now = 1_765_000_000; // 2025-12-06T05:46:40Z
        assert_eq!(day_text(parse_day("today", now).unwrap()), "2025-12-06");
        assert_eq!(day_text(parse_day("yesterday", now).unwrap()), "2025-12-05");
        assert_eq!(
            parse_day("2025-12-06", now).unwrap(),
            parse_day("today", now).unwrap()
        );
        assert!(parse_day("2025-13-01", now).is_err());
        assert!(parse_day("soon", now).is_err());
    }
}
