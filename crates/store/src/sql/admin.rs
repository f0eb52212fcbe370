//! Who may use the admin REST API: the `role` of an account and the `api_tokens` table (only a
//! SHA-256 of each secret is kept; scopes are stored comma-separated).

use super::{Row, Shared, db, now_secs};
use crate::model::{AccountId, ApiToken, NewApiToken, ROLE_ADMIN, ROLE_USER};
use crate::{Result, StoreError};

macro_rules! token_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, hash, scopes, created_at, expires_at, last_used_at FROM api_tokens",
            $rest
        )
    };
}

fn token_from_row(r: &Row) -> Result<ApiToken> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        hash: r.try_get("hash")?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Shared {
    pub async fn account_role(&self, id: AccountId) -> Result<String> {
        db::query_scalar("SELECT role FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {id}")))
    }

    pub async fn set_account_role(&self, id: AccountId, role: &str) -> Result<()> {
        if role != ROLE_ADMIN && role != ROLE_USER {
            return Err(StoreError::Invalid(format!("unknown role {role:?}")));
        }
        let done = db::query("UPDATE accounts SET role = $1 WHERE id = $2")
            .bind(role)
            .bind(id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {id}")));
        }
        Ok(())
    }

    pub async fn create_api_token(&self, new: NewApiToken) -> Result<ApiToken> {
        if new.scopes.iter().any(|s| s.is_empty() || s.contains(',')) {
            return Err(StoreError::Invalid("bad scope name".into()));
        }
        let row = db::query(
            "INSERT INTO api_tokens (name, hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, name, hash, scopes, created_at, expires_at, last_used_at",
        )
        .bind(&new.name)
        .bind(&new.hash)
        .bind(new.scopes.join(","))
        .bind(now_secs())
        .bind(new.expires_at)
        .fetch_one(&self.writer)
        .await?;
        token_from_row(&row)
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = db::query(token_select!(" ORDER BY id"))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let row = db::query(token_select!(" WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn touch_api_token(&self, id: i64, now: i64) -> Result<()> {
        db::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn delete_api_token(&self, id: i64) -> Result<bool> {
        let done = db::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
