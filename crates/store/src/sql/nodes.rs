//! The registry of nodes serving the store (`nodes` table): registration at start, the
//! heartbeat, removal on a clean stop, and the list `wharf node list` prints.

use super::{Shared, db};
use crate::Result;
use crate::model::NodeInfo;

/// Nodes not seen for this long are dropped from the registry by the next heartbeat.
const FORGET_AFTER_SECS: i64 = 7 * 24 * 3600;

impl Shared {
    pub async fn register_node(&self, node: &NodeInfo) -> Result<()> {
        db::query(
            "INSERT INTO nodes (id, hostname, pid, version, started_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&node.id)
        .bind(&node.hostname)
        .bind(i64::from(node.pid))
        .bind(&node.version)
        .bind(node.started_at)
        .bind(node.last_seen)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn node_seen(&self, id: &str, now: i64) -> Result<()> {
        db::query("UPDATE nodes SET last_seen = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        db::query("DELETE FROM nodes WHERE last_seen < $1")
            .bind(now.saturating_sub(FORGET_AFTER_SECS))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn remove_node(&self, id: &str) -> Result<()> {
        db::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        let rows = db::query(
            "SELECT id, hostname, pid, version, started_at, last_seen FROM nodes ORDER BY started_at, id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeInfo {
                    id: r.try_get("id")?,
                    hostname: r.try_get("hostname")?,
                    pid: u32::try_from(r.try_get::<i64, _>("pid")?).unwrap_or(0),
                    version: r.try_get("version")?,
                    started_at: r.try_get("started_at")?,
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }
}
