//! App passwords (`app_passwords`): per-device secrets of an account, of which only a SHA-256 is
//! kept, each with a label and its last use. The directory accepts one in place of the account
//! password; the owner lists and revokes them on the web self-service pages.

use super::{Row, Shared, db, now_secs};
use crate::model::{AccountId, AppPassword};
use crate::{Result, StoreError};

fn from_row(r: &Row) -> Result<AppPassword> {
    Ok(AppPassword {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Shared {
    /// Adds an app password unless the account has `limit` already (None then). The count and
    /// the insert run in one write transaction under the account row's lock, so concurrent
    /// creations cannot pass the limit together (SQLite: the one writer; PostgreSQL: `FOR
    /// UPDATE` on the account).
    pub async fn create_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
        limit: usize,
    ) -> Result<Option<AppPassword>> {
        let mut tx = self.begin_write_relaxed().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let have: i64 =
            db::query_scalar("SELECT COUNT(*) FROM app_passwords WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut tx)
                .await?;
        if usize::try_from(have).unwrap_or(usize::MAX) >= limit {
            return Ok(None);
        }
        let row = db::query(
            "INSERT INTO app_passwords (account_id, label, hash, created_at) \
             VALUES ($1, $2, $3, $4) \
             RETURNING id, account_id, label, created_at, last_used_at",
        )
        .bind(account)
        .bind(label)
        .bind(hash)
        .bind(now_secs())
        .fetch_one(&mut tx)
        .await?;
        let created = from_row(&row)?;
        tx.commit().await?;
        Ok(Some(created))
    }

    /// Revokes every app password of the account; how many there were.
    pub async fn delete_app_passwords(&self, account: AccountId) -> Result<u64> {
        let done = db::query("DELETE FROM app_passwords WHERE account_id = $1")
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>> {
        let rows = db::query(
            "SELECT id, account_id, label, created_at, last_used_at FROM app_passwords \
             WHERE account_id = $1 ORDER BY id",
        )
        .bind(account)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn app_password_by_hash(
        &self,
        account: AccountId,
        hash: &str,
    ) -> Result<Option<AppPassword>> {
        let row = db::query(
            "SELECT id, account_id, label, created_at, last_used_at FROM app_passwords \
             WHERE account_id = $1 AND hash = $2",
        )
        .bind(account)
        .bind(hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn touch_app_password(&self, id: i64, now: i64) -> Result<()> {
        db::query("UPDATE app_passwords SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn delete_app_password(&self, account: AccountId, id: i64) -> Result<bool> {
        let done = db::query("DELETE FROM app_passwords WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
