//! Sieve state of an account: its scripts (`sieve_scripts`, at most one active) and what its
//! scripts remember between deliveries (`sieve_tracking`: duplicate-test ids and vacation
//! replies, each with an expiry).

use super::db::Tx;
use super::{Shared, db, dir_cache, now_secs};
use crate::model::SieveScriptInfo;
use crate::{
    AccountId, MAX_SIEVE_SCRIPT_BYTES, MAX_SIEVE_SCRIPTS, MAX_SIEVE_TRACKING, Result, StoreError,
};

impl Shared {
    pub async fn list_sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>> {
        let rows = db::query(
            "SELECT name, active, LENGTH(content) AS size FROM sieve_scripts \
             WHERE account_id = $1 ORDER BY name",
        )
        .bind(account)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SieveScriptInfo {
                    name: r.try_get("name")?,
                    active: r.try_get::<i64, _>("active")? != 0,
                    size: u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
                })
            })
            .collect()
    }

    pub async fn get_sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        db::query_scalar("SELECT content FROM sieve_scripts WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
    }

    pub async fn put_sieve_script(
        &self,
        account: AccountId,
        name: &str,
        content: &str,
    ) -> Result<()> {
        if content.len() > MAX_SIEVE_SCRIPT_BYTES {
            return Err(StoreError::Limit(format!(
                "a script may hold at most {MAX_SIEVE_SCRIPT_BYTES} octets"
            )));
        }
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let updated = db::query(
            "UPDATE sieve_scripts SET content = $1, updated_at = $2 \
             WHERE account_id = $3 AND name = $4",
        )
        .bind(content)
        .bind(now_secs())
        .bind(account)
        .bind(name)
        .execute(&mut tx)
        .await?;
        if updated.rows_affected() == 0 {
            let count: i64 =
                db::query_scalar("SELECT COUNT(*) FROM sieve_scripts WHERE account_id = $1")
                    .bind(account)
                    .fetch_one(&mut tx)
                    .await?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_SIEVE_SCRIPTS {
                return Err(StoreError::Limit(format!(
                    "at most {MAX_SIEVE_SCRIPTS} scripts"
                )));
            }
            db::query(
                "INSERT INTO sieve_scripts (account_id, name, content, active, updated_at) \
                 VALUES ($1, $2, $3, 0, $4)",
            )
            .bind(account)
            .bind(name)
            .bind(content)
            .bind(now_secs())
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    /// Deletes an inactive script; the active one is a `Conflict` (RFC 5804 §2.10: deactivate
    /// it first). Checked in the DELETE itself, so a SETACTIVE racing a caller's own check
    /// cannot get the running script deleted.
    pub async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        let n = db::query(
            "DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2 AND active = 0",
        )
        .bind(account)
        .bind(name)
        .execute(&self.writer)
        .await?;
        self.directory_changed();
        if n.rows_affected() == 0 {
            let exists: Option<i64> =
                db::query_scalar("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2")
                    .bind(account)
                    .bind(name)
                    .fetch_optional(&self.writer)
                    .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict(format!("script {name} is active")),
                None => StoreError::NotFound(format!("script {name}")),
            });
        }
        Ok(())
    }

    pub async fn rename_sieve_script(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let taken: Option<i64> =
            db::query_scalar("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(to)
                .fetch_optional(&mut tx)
                .await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!("script {to}")));
        }
        let n = db::query("UPDATE sieve_scripts SET name = $1 WHERE account_id = $2 AND name = $3")
            .bind(to)
            .bind(account)
            .bind(from)
            .execute(&mut tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("script {from}")));
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn set_active_sieve_script(
        &self,
        account: AccountId,
        name: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        db::query("UPDATE sieve_scripts SET active = 0 WHERE account_id = $1 AND active <> 0")
            .bind(account)
            .execute(&mut tx)
            .await?;
        if let Some(name) = name {
            let n = db::query(
                "UPDATE sieve_scripts SET active = 1 WHERE account_id = $1 AND name = $2",
            )
            .bind(account)
            .bind(name)
            .execute(&mut tx)
            .await?;
            if n.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("script {name}")));
            }
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn active_sieve_script(
        &self,
        account: AccountId,
    ) -> Result<Option<(String, String)>> {
        self.cached(dir_cache::Sieve, account, async {
            let row = db::query(
                "SELECT name, content FROM sieve_scripts WHERE account_id = $1 AND active <> 0",
            )
            .bind(account)
            .fetch_optional(&self.reader)
            .await?;
            row.map(|r| Ok((r.try_get("name")?, r.try_get("content")?)))
                .transpose()
        })
        .await
    }

    pub async fn sieve_tracked(&self, account: AccountId, now: i64) -> Result<Vec<String>> {
        db::query_scalar(
            "SELECT id FROM sieve_tracking WHERE account_id = $1 AND expires_at > $2 \
             ORDER BY expires_at DESC LIMIT $3",
        )
        .bind(account)
        .bind(now)
        .bind(i64::try_from(MAX_SIEVE_TRACKING).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await
    }

    pub async fn track_sieve_ids(&self, account: AccountId, ids: &[(String, i64)]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write_relaxed().await?;
        for (id, expires_at) in ids {
            upsert_tracking(&mut tx, account, id, *expires_at).await?;
        }
        bound_tracking(&mut tx, account).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn claim_sieve_reply(
        &self,
        account: AccountId,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let until: Option<i64> = db::query_scalar(
            "SELECT expires_at FROM sieve_tracking WHERE account_id = $1 AND id = $2",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&mut tx)
        .await?;
        if until.is_some_and(|t| t > now) {
            return Ok(false);
        }
        upsert_tracking(&mut tx, account, id, expires_at).await?;
        bound_tracking(&mut tx, account).await?;
        tx.commit().await?;
        Ok(true)
    }
}

async fn upsert_tracking(tx: &mut Tx, account: AccountId, id: &str, expires_at: i64) -> Result<()> {
    db::query(
        "INSERT INTO sieve_tracking (account_id, id, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, id) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(account)
    .bind(id)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Drops the account's expired entries and, past `MAX_SIEVE_TRACKING`, those that expire first:
/// a sender flood must not grow the table without end (forgetting early only means an earlier
/// duplicate verdict or vacation reply, never lost mail).
async fn bound_tracking(tx: &mut Tx, account: AccountId) -> Result<()> {
    db::query("DELETE FROM sieve_tracking WHERE account_id = $1 AND expires_at <= $2")
        .bind(account)
        .bind(now_secs())
        .execute(&mut *tx)
        .await?;
    let count: i64 = db::query_scalar("SELECT COUNT(*) FROM sieve_tracking WHERE account_id = $1")
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
    let max = i64::try_from(MAX_SIEVE_TRACKING).unwrap_or(i64::MAX);
    if count > max {
        db::query(
            "DELETE FROM sieve_tracking WHERE account_id = $1 AND id IN \
             (SELECT id FROM sieve_tracking WHERE account_id = $2 ORDER BY expires_at LIMIT $3)",
        )
        .bind(account)
        .bind(account)
        .bind(count - max)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
