//! State the nodes of one store share instead of keeping it in their data directories
//! (`node_state`, `auth_failures`; migration 0020): named values per scope (DKIM keys, the ACME
//! account and certificate, pending ACME challenges), leases that let one node at a time do a
//! job, and each node's recent authentication failure counts. The values are opaque here: the
//! caller seals secrets before they arrive.

use super::{Shared, db};
use crate::model::{AuthFailureCount, NodeStateEntry};
use crate::{Result, StoreError};

/// The scope of lease rows.
const LEASE_SCOPE: &str = "lease";
/// Failure rows not updated for this long are forgotten (longer than any throttle window).
const FORGET_FAILURES_SECS: i64 = 24 * 3600;
/// Most failure rows one report may carry (the throttle's tables are bounded alike).
pub const MAX_FAILURE_REPORT: usize = 65_536;
/// Failure rows per INSERT statement (4 parameters each, plus 2 shared).
const REPORT_CHUNK: usize = 200;

fn check_name(scope: &str, name: &str) -> Result<()> {
    if scope.is_empty() || scope.len() > 64 || name.is_empty() || name.len() > 512 {
        return Err(StoreError::Invalid(format!(
            "bad node state key {scope:?}/{name:?}"
        )));
    }
    Ok(())
}

fn entry(r: &db::Row) -> Result<NodeStateEntry> {
    Ok(NodeStateEntry {
        name: r.try_get("name")?,
        value: r.try_get("value")?,
        holder: r.try_get("holder")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Shared {
    pub async fn node_state_get(&self, scope: &str, name: &str) -> Result<Option<NodeStateEntry>> {
        let row = db::query(
            "SELECT name, value, holder, updated_at, expires_at FROM node_state \
             WHERE scope = $1 AND name = $2",
        )
        .bind(scope)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(entry).transpose()
    }

    pub async fn node_state_list(&self, scope: &str) -> Result<Vec<NodeStateEntry>> {
        let rows = db::query(
            "SELECT name, value, holder, updated_at, expires_at FROM node_state \
             WHERE scope = $1 ORDER BY name",
        )
        .bind(scope)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Stores a value; with `only_if_absent`, leaves an existing row alone and answers false.
    pub async fn node_state_put(
        &self,
        scope: &str,
        name: &str,
        value: &[u8],
        expires_at: Option<i64>,
        now: i64,
        only_if_absent: bool,
    ) -> Result<bool> {
        check_name(scope, name)?;
        let sql = if only_if_absent {
            "INSERT INTO node_state (scope, name, value, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, name) DO NOTHING"
        } else {
            "INSERT INTO node_state (scope, name, value, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, name) DO UPDATE SET \
             value = excluded.value, updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at"
        };
        let done = db::query(sql)
            .bind(scope)
            .bind(name)
            .bind(value)
            .bind(now)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn node_state_delete(&self, scope: &str, name: &str) -> Result<bool> {
        let done = db::query("DELETE FROM node_state WHERE scope = $1 AND name = $2")
            .bind(scope)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the rows of `scope` whose time is over; returns how many.
    pub async fn node_state_prune(&self, scope: &str, now: i64) -> Result<u64> {
        let done = db::query(
            "DELETE FROM node_state WHERE scope = $1 AND expires_at IS NOT NULL AND expires_at < $2",
        )
        .bind(scope)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl_secs`. False while another
    /// holder's lease runs. One statement, so two nodes asking at once cannot both get it.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool> {
        check_name(LEASE_SCOPE, name)?;
        let done = db::query(
            "INSERT INTO node_state (scope, name, value, holder, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, name) DO UPDATE SET \
             holder = excluded.holder, updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at \
             WHERE node_state.holder = excluded.holder OR node_state.holder IS NULL \
             OR node_state.expires_at IS NULL OR node_state.expires_at < $5",
        )
        .bind(LEASE_SCOPE)
        .bind(name)
        .bind(Vec::<u8>::new())
        .bind(holder)
        .bind(now)
        .bind(now.saturating_add(ttl_secs))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives the lease up if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        db::query("DELETE FROM node_state WHERE scope = $1 AND name = $2 AND holder = $3")
            .bind(LEASE_SCOPE)
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Replaces what `node` last reported with `counts` (its current windows); also forgets
    /// every node's rows not updated for a day.
    pub async fn report_auth_failures(
        &self,
        node: &str,
        counts: &[AuthFailureCount],
        now: i64,
    ) -> Result<()> {
        if counts.len() > MAX_FAILURE_REPORT {
            return Err(StoreError::Limit(format!(
                "{} failure counts in one report",
                counts.len()
            )));
        }
        let mut tx = self.begin_write().await?;
        db::query("DELETE FROM auth_failures WHERE node = $1 OR updated_at < $2")
            .bind(node)
            .bind(now.saturating_sub(FORGET_FAILURES_SECS))
            .execute(&mut tx)
            .await?;
        // The node's rows were just deleted and a report names each (kind, key) once: plain
        // multi-row INSERTs, REPORT_CHUNK rows per statement (a report changes with every
        // guessed password, every few seconds under attack).
        for chunk in counts.chunks(REPORT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 3 + i * 4;
                    format!("($1, ${}, ${}, ${}, ${}, $2)", p, p + 1, p + 2, p + 3)
                })
                .collect();
            let mut q = db::query(format!(
                "INSERT INTO auth_failures (node, kind, key, failures, window_start, updated_at) VALUES {}",
                values.join(", ")
            ))
            .bind(node)
            .bind(now);
            for c in chunk {
                q = q
                    .bind(&c.kind)
                    .bind(&c.key)
                    .bind(i64::from(c.failures))
                    .bind(c.window_start);
            }
            q.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The other nodes' failure counts whose window started at or after `since`, summed per
    /// (kind, key); `window_start` is the earliest of them.
    pub async fn auth_failures_elsewhere(
        &self,
        node: &str,
        since: i64,
    ) -> Result<Vec<AuthFailureCount>> {
        let rows = db::query(
            "SELECT kind, key, CAST(SUM(failures) AS BIGINT) AS failures, MIN(window_start) AS window_start \
             FROM auth_failures WHERE node <> $1 AND window_start >= $2 \
             GROUP BY kind, key ORDER BY 3 DESC, kind, key LIMIT $3",
        )
        .bind(node)
        .bind(since)
        .bind(MAX_FAILURE_REPORT as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let failures: i64 = r.try_get("failures")?;
                Ok(AuthFailureCount {
                    kind: r.try_get("kind")?,
                    key: r.try_get("key")?,
                    failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
                    window_start: r.try_get("window_start")?,
                })
            })
            .collect()
    }
}
