//! `TallyStore` for `SqlStore`: `report_tallies` rows keyed by the hash of their item, added to
//! with an upsert, and `report_claims` rows whose primary key makes a claim succeed once.

use async_trait::async_trait;

use super::{Shared, SqlStore, db};
use crate::tally::{Tally, TallyStore};
use crate::{Result, StoreError};

impl Shared {
    async fn add_tallies(&self, kind: &str, day: i64, tallies: &[Tally]) -> Result<()> {
        if tallies.is_empty() {
            return Ok(());
        }
        // Report counters, not mail: a crash may lose the last batch, which costs a report a few
        // counts and spares an fsync.
        let mut tx = self.begin_write_relaxed().await?;
        for t in tallies {
            let count = i64::try_from(t.count)
                .map_err(|_| StoreError::Invalid(format!("tally count {}", t.count)))?;
            db::query(
                "INSERT INTO report_tallies (kind, day, domain, item_hash, item, count) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (kind, day, domain, item_hash) \
                 DO UPDATE SET count = report_tallies.count + excluded.count",
            )
            .bind(kind)
            .bind(day)
            .bind(t.domain.as_str())
            .bind(crate::blob::blob_hash(t.item.as_bytes()))
            .bind(t.item.as_str())
            .bind(count)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tallies(&self, kind: &str, day: i64, domain: Option<&str>) -> Result<Vec<Tally>> {
        let rows =
            match domain {
                Some(d) => {
                    db::query(
                        "SELECT domain, item, count FROM report_tallies \
                     WHERE kind = $1 AND day = $2 AND domain = $3",
                    )
                    .bind(kind)
                    .bind(day)
                    .bind(d)
                    .fetch_all(&self.reader)
                    .await?
                }
                None => db::query(
                    "SELECT domain, item, count FROM report_tallies WHERE kind = $1 AND day = $2",
                )
                .bind(kind)
                .bind(day)
                .fetch_all(&self.reader)
                .await?,
            };
        rows.iter()
            .map(|r| {
                let count: i64 = r.try_get("count")?;
                Ok(Tally {
                    domain: r.try_get("domain")?,
                    item: r.try_get("item")?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn unreported(&self, kind: &str, before_day: i64) -> Result<Vec<(i64, String)>> {
        let rows = db::query(
            "SELECT DISTINCT t.day, t.domain FROM report_tallies t \
             WHERE t.kind = $1 AND t.day < $2 AND NOT EXISTS (\
             SELECT 1 FROM report_claims c \
             WHERE c.kind = t.kind AND c.day = t.day AND c.domain = t.domain) \
             ORDER BY t.day, t.domain",
        )
        .bind(kind)
        .bind(before_day)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("domain")?)))
            .collect()
    }

    async fn claim_report(
        &self,
        kind: &str,
        day: i64,
        domain: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = db::query(
            "INSERT INTO report_claims (kind, day, domain, owner, claimed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, day, domain) DO NOTHING",
        )
        .bind(kind)
        .bind(day)
        .bind(domain)
        .bind(owner)
        .bind(now)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn prune_tallies(&self, before_day: i64) -> Result<u64> {
        let mut tx = self.begin_write_relaxed().await?;
        let done = db::query("DELETE FROM report_tallies WHERE day < $1")
            .bind(before_day)
            .execute(&mut tx)
            .await?;
        db::query("DELETE FROM report_claims WHERE day < $1")
            .bind(before_day)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl TallyStore for SqlStore {
    async fn add_tallies(&self, kind: &str, day: i64, tallies: &[Tally]) -> Result<()> {
        self.shared.add_tallies(kind, day, tallies).await
    }
    async fn tallies(&self, kind: &str, day: i64, domain: Option<&str>) -> Result<Vec<Tally>> {
        self.shared.tallies(kind, day, domain).await
    }
    async fn unreported(&self, kind: &str, before_day: i64) -> Result<Vec<(i64, String)>> {
        self.shared.unreported(kind, before_day).await
    }
    async fn claim_report(
        &self,
        kind: &str,
        day: i64,
        domain: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool> {
        self.shared
            .claim_report(kind, day, domain, owner, now)
            .await
    }
    async fn prune_tallies(&self, before_day: i64) -> Result<u64> {
        self.shared.prune_tallies(before_day).await
    }
}
