//! `wharf queue list|show|retry|drop`: the outbound queue as the operator sees it, read and
//! changed directly in the store (a running server picks changes up at its next queue scan,
//! within `[outbound] poll_interval`).

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use wharf_store::queue::{QueueEntry, QueueId, QueueStore, RecipientState};

use crate::cli::QueueCmd;
use crate::config::Loaded;
use crate::ops;

async fn open_queue(cfg: &Loaded) -> Result<Arc<dyn QueueStore>> {
    if cfg.config.store.url.is_none() && !cfg.data_dir.exists() {
        bail!(
            "no data folder at {} (has `wharf serve` run with this config?)",
            cfg.data_dir.display()
        );
    }
    let (_, queue) = wharf_store::open_with_queue_and_timeouts(
        &crate::storage::store_config(cfg),
        crate::storage::pg_timeouts(cfg),
    )
    .await
    .with_context(|| format!("cannot open the store {}", cfg.store_url()))?;
    Ok(queue)
}

fn parse_id(text: &str) -> Result<QueueId> {
    Ok(ops::queue::parse_id(text)?)
}

use crate::ops::queue::state_word;

fn time_text(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

fn sender_text(s: &str) -> &str {
    if s.is_empty() { "<>" } else { s }
}

pub async fn run(cfg: &Loaded, cmd: QueueCmd) -> Result<()> {
    let queue = open_queue(cfg).await?;
    match cmd {
        QueueCmd::List => {
            let entries = ops::queue::list(&queue).await?;
            print!("{}", list_text(&entries, chrono::Utc::now().timestamp()));
        }
        QueueCmd::Show { id, message } => {
            let id = parse_id(&id)?;
            let entry = ops::queue::get(&queue, id).await?;
            print!("{}", show_text(&entry));
            if message {
                let raw = queue.message(id).await.map_err(|e| anyhow!("queue: {e}"))?;
                println!();
                print!("{}", String::from_utf8_lossy(&raw));
            }
        }
        QueueCmd::Retry { id, all } => {
            let target = match (id, all) {
                (Some(id), false) => Some(parse_id(&id)?),
                (None, true) => None,
                _ => bail!("give one queue id, or --all"),
            };
            let n = ops::queue::retry(&queue, target).await?;
            println!("{n} entries due now (the server sends them at its next queue scan)");
        }
        QueueCmd::Drop { id } => {
            let id = parse_id(&id)?;
            ops::queue::drop_entry(&queue, id).await?;
            println!("dropped queue entry {id} (no DSN is sent)");
        }
    }
    Ok(())
}

fn list_text(entries: &[QueueEntry], now: i64) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("the queue is empty\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>8}  {:>8}  {:>9}  {:<28}  {:>8}  {:<20}  recipients",
        "id", "size", "age", "sender", "attempts", "next attempt"
    );
    for e in entries {
        let pending: Vec<&str> = e
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
            .map(|r| r.address.as_str())
            .collect();
        let age = now.saturating_sub(e.created).max(0);
        let next = if e.next_attempt <= now {
            "now".to_string()
        } else {
            format!("in {}", duration_text(e.next_attempt - now))
        };
        let _ = writeln!(
            out,
            "{:>8}  {:>8}  {:>9}  {:<28}  {:>8}  {:<20}  {}",
            e.id,
            e.size,
            duration_text(age),
            sender_text(&e.sender),
            e.attempts,
            next,
            pending.join(", ")
        );
    }
    let _ = writeln!(out, "{} entries", entries.len());
    out
}

fn duration_text(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn show_text(e: &QueueEntry) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "queue id:     {}", e.id);
    let _ = writeln!(out, "sender:       {}", sender_text(&e.sender));
    let _ = writeln!(out, "size:         {} bytes", e.size);
    let _ = writeln!(out, "created:      {}", time_text(e.created));
    let _ = writeln!(out, "attempts:     {}", e.attempts);
    let _ = writeln!(out, "next attempt: {}", time_text(e.next_attempt));
    let _ = writeln!(out, "expires:      {}", time_text(e.expires));
    if let Some(envid) = &e.envid {
        let _ = writeln!(out, "envid:        {envid}");
    }
    if let Some(ret) = e.ret {
        let _ = writeln!(out, "ret:          {}", ret.parameter());
    }
    if e.require_tls {
        let _ = writeln!(out, "requiretls:   yes");
    }
    if e.delay_notified {
        let _ = writeln!(out, "delay DSN:    sent");
    }
    if let (Some(owner), Some(until)) = (&e.lease_owner, e.lease_until) {
        let _ = writeln!(out, "leased by:    {owner} until {}", time_text(until));
    }
    let _ = writeln!(out, "recipients:");
    for r in &e.recipients {
        let _ = write!(out, "  {:<9} {}", state_word(r.state), r.address);
        if let Some(s) = &r.status {
            let _ = write!(out, "  status {s}");
        }
        if let Some(m) = &r.remote_mta {
            let _ = write!(out, "  via {m}");
        }
        let _ = writeln!(out);
        if let Some(d) = &r.diagnostic {
            let _ = writeln!(out, "            {d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_store::queue::QueuedRecipient;

    fn entry() -> QueueEntry {
        let mut done = QueuedRecipient::new("b@y.test");
        done.state = RecipientState::Delivered;
        let mut waiting = QueuedRecipient::new("c@y.test");
        waiting.status = Some("4.4.1".into());
        waiting.diagnostic = Some("x-wharf; connection refused".into());
        QueueEntry {
            id: 7,
            sender: String::new(),
            recipients: vec![done, waiting],
            size: 1234,
            envid: Some("E1".into()),
            ret: None,
            require_tls: true,
            created: 1_000,
            next_attempt: 1_400,
            attempts: 2,
            expires: 500_000,
            delay_notified: false,
            lease_owner: None,
            lease_until: None,
        }
    }

    #[test]
    fn list_names_pending_recipients_and_schedule() {
        let text = list_text(&[entry()], 1_100);
        let line = text.lines().nth(1).unwrap();
        assert!(line.contains("<>") && line.contains("in 5m"), "{text}");
        assert!(
            line.contains("c@y.test") && !line.contains("b@y.test"),
            "{text}"
        );
        assert!(text.ends_with("1 entries\n"));
        assert_eq!(list_text(&[], 0), "the queue is empty\n");
    }

    #[test]
    fn show_gives_every_recipient_with_its_last_reply() {
        let text = show_text(&entry());
        assert!(text.contains("delivered b@y.test"), "{text}");
        assert!(text.contains("pending   c@y.test  status 4.4.1"), "{text}");
        assert!(text.contains("connection refused"));
        assert!(text.contains("requiretls:   yes") && text.contains("envid:        E1"));
        assert!(parse_id("0").is_err() && parse_id("x").is_err() && parse_id("12").is_ok());
    }
}
