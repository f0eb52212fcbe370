//! This process as one node of the store: a generated id, which is also its outbound lease
//! owner name (so two processes never share one, unlike host name and pid across containers),
//! registered when `serve` starts, renewed by a heartbeat, removed on a clean stop; and
//! `wharf node list`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinHandle;
use wharf_store::{NodeInfo, Store};

use crate::config::Loaded;
use crate::storage::{open_directory, store_err};

/// How often a running node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A node silent for longer than this is shown as gone (it crashed, or lost the database).
const ALIVE_WITHIN_SECS: i64 = 60;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub struct Registration {
    pub id: String,
    store: Arc<dyn Store>,
    heartbeat: JoinHandle<()>,
}

/// Registers this process under a fresh id and starts its heartbeat.
pub async fn register(store: Arc<dyn Store>, hostname: &str) -> Result<Registration> {
    let id = format!(
        "n{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let t = now();
    store
        .register_node(&NodeInfo {
            id: id.clone(),
            hostname: hostname.to_string(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: t,
            last_seen: t,
        })
        .await
        .map_err(store_err)?;
    let heartbeat = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = store.node_seen(&id, now()).await {
                    tracing::warn!(error = %e, "node heartbeat failed (next one retries)");
                }
            }
        })
    };
    tracing::info!(node = %id, "registered as a node of the store");
    Ok(Registration {
        id,
        store,
        heartbeat,
    })
}

impl Registration {
    /// A clean stop: the node leaves the registry.
    pub async fn remove(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.remove_node(&self.id).await {
            tracing::warn!(error = %e, "could not remove this node from the registry");
        }
    }
}

/// `wharf node list`.
pub async fn list(cfg: &Loaded) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let nodes = dir.store().list_nodes().await.map_err(store_err)?;
    print!("{}", render(&nodes, now()));
    Ok(())
}

fn render(nodes: &[NodeInfo], now: i64) -> String {
    if nodes.is_empty() {
        return "no node is running\n".to_string();
    }
    let mut out = format!(
        "{:<34}  {:<24}  {:>8}  {:<8}  {:>10}  {:>9}  state\n",
        "id", "host", "pid", "version", "up", "last seen"
    );
    for n in nodes {
        let state = if now - n.last_seen <= ALIVE_WITHIN_SECS {
            "running"
        } else {
            "gone (no heartbeat)"
        };
        out.push_str(&format!(
            "{:<34}  {:<24}  {:>8}  {:<8}  {:>10}  {:>9}  {state}\n",
            n.id,
            n.hostname,
            n.pid,
            n.version,
            age(now - n.started_at),
            format!("{} ago", age(now - n.last_seen)),
        ));
    }
    out
}

fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing() {
        let n = |id: &str, seen: i64| NodeInfo {
            id: id.into(),
            hostname: "mail.example.test".into(),
            pid: 42,
            version: "0.1.0".into(),
            started_at: 1_000,
            last_seen: seen,
        };
        let out = render(&[n("na", 4_590), n("nb", 1_000)], 4_600);
        assert!(out.contains("na ") && out.contains("1h0m") && out.contains("10s ago"));
        assert!(
            out.lines().nth(1).is_some_and(|l| l.ends_with("running")),
            "{out}"
        );
        assert!(
            out.lines()
                .nth(2)
                .is_some_and(|l| l.ends_with("gone (no heartbeat)")),
            "{out}"
        );
        assert_eq!(render(&[], 0), "no node is running\n");
    }
}
