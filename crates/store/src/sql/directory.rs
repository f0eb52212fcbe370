//! Directory rows (domains, accounts, aliases) and the POP3 maildrop lock. Names are stored
//! lower-cased where lookups are case-insensitive; the directory crate owns the rules.

use super::{Row, Shared, db, dir_cache, now_secs, to_u64};
use crate::model::*;
use crate::{Result, StoreError};

fn split_address(address: &str) -> Result<(&str, String)> {
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| StoreError::Invalid(format!("not an address: {address}")))?;
    if local.is_empty() || domain.is_empty() {
        return Err(StoreError::Invalid(format!("not an address: {address}")));
    }
    Ok((local, domain.to_ascii_lowercase()))
}

/// A page size as SQL binds it (`LIMIT`), saturating rather than wrapping.
pub(super) fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn domain_from_row(r: &Row) -> Result<Domain> {
    Ok(Domain {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
    })
}

const ACCOUNT_SELECT: &str = "SELECT a.id, a.domain_id, a.local_part, d.name AS domain, a.secret_hash, a.scram_sha256, \
     a.quota_bytes, a.disabled, a.pop3_expire_days FROM accounts a JOIN domains d ON d.id = a.domain_id";

fn account_from_row(r: &Row) -> Result<Account> {
    let local: String = r.try_get("local_part")?;
    let domain: String = r.try_get("domain")?;
    Ok(Account {
        id: r.try_get("id")?,
        domain_id: r.try_get("domain_id")?,
        address: format!("{local}@{domain}"),
        local_part: local,
        secret_hash: r.try_get("secret_hash")?,
        scram_sha256: r.try_get("scram_sha256")?,
        quota_bytes: r.try_get("quota_bytes")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        pop3_expire_days: r.try_get("pop3_expire_days")?,
    })
}

impl Shared {
    pub async fn create_domain(&self, name: &str) -> Result<Domain> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.contains('@') || name.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid(format!("bad domain name: {name:?}")));
        }
        let mut tx = self.begin_write().await?;
        let row = db::query("INSERT INTO domains (name) VALUES ($1) RETURNING id, name")
            .bind(&name)
            .fetch_one(&mut tx)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("domain {name}")),
                other => other,
            })?;
        let d = domain_from_row(&row)?;
        tx.commit().await?;
        self.directory_changed();
        Ok(d)
    }

    pub async fn delete_domain(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        let id: i64 = db::query_scalar("SELECT id FROM domains WHERE name = $1")
            .bind(&name)
            .fetch_optional(&mut tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?;
        let accounts: i64 = db::query_scalar("SELECT COUNT(*) FROM accounts WHERE domain_id = $1")
            .bind(id)
            .fetch_one(&mut tx)
            .await?;
        let aliases: i64 = db::query_scalar("SELECT COUNT(*) FROM aliases WHERE address LIKE $1")
            .bind(format!("%@{}", name.replace(['%', '_'], "")))
            .fetch_one(&mut tx)
            .await?;
        if accounts > 0 || aliases > 0 {
            return Err(StoreError::Invalid(format!(
                "domain {name} still has {accounts} account(s) and {aliases} alias(es)"
            )));
        }
        db::query("DELETE FROM domains WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.cached(dir_cache::Domains, name.clone(), async {
            let row = db::query("SELECT id, name FROM domains WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(domain_from_row).transpose()
        })
        .await
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let rows = db::query("SELECT id, name FROM domains ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(domain_from_row).collect()
    }

    /// Up to `limit` domains after `after`, by name (the admin API's keyset pages).
    pub async fn list_domains_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Domain>> {
        let rows = db::query("SELECT id, name FROM domains WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(after.unwrap_or("").to_string())
            .bind(page_limit(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(domain_from_row).collect()
    }

    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let (local, domain) = split_address(new.address.trim())?;
        if new.quota_bytes < 0 {
            return Err(StoreError::Invalid("negative quota".into()));
        }
        let mut tx = self.begin_write().await?;
        let domain_id: i64 = db::query_scalar("SELECT id FROM domains WHERE name = $1")
            .bind(&domain)
            .fetch_optional(&mut tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
        let id: i64 = db::query_scalar(
            "INSERT INTO accounts (domain_id, local_part, local_key, secret_hash, scram_sha256, quota_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(domain_id)
        .bind(local)
        .bind(local.to_lowercase())
        .bind(&new.secret_hash)
        .bind(&new.scram_sha256)
        .bind(new.quota_bytes)
        .fetch_one(&mut tx)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("account {local}@{domain}")),
            other => other,
        })?;
        for (name, role) in DEFAULT_MAILBOXES {
            self.insert_mailbox(&mut tx, id, name, *role, true).await?;
        }
        tx.commit().await?;
        self.directory_changed();
        self.get_account(id)
            .await?
            .ok_or_else(|| StoreError::Backend("account vanished after insert".into()))
    }

    pub async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        self.cached(dir_cache::AccountsById, id, async {
            let sql = format!("{ACCOUNT_SELECT} WHERE a.id = $1");
            let row = db::query(sql).bind(id).fetch_optional(&self.reader).await?;
            row.as_ref().map(account_from_row).transpose()
        })
        .await
    }

    pub async fn get_account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let Ok((local, domain)) = split_address(address.trim()) else {
            return Ok(None);
        };
        let local = local.to_lowercase();
        let key = format!("{local}@{domain}");
        self.cached(dir_cache::AccountsByAddress, key, async {
            let sql = format!("{ACCOUNT_SELECT} WHERE d.name = $1 AND a.local_key = $2");
            let row = db::query(sql)
                .bind(domain)
                .bind(local)
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(account_from_row).transpose()
        })
        .await
    }

    pub async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let rows = match domain {
            Some(d) => {
                let sql =
                    format!("{ACCOUNT_SELECT} WHERE d.name = $1 ORDER BY d.name, a.local_key");
                db::query(sql)
                    .bind(d.to_ascii_lowercase())
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                let sql = format!("{ACCOUNT_SELECT} ORDER BY d.name, a.local_key");
                db::query(sql).fetch_all(&self.reader).await?
            }
        };
        rows.iter().map(account_from_row).collect()
    }

    /// Up to `limit` accounts after the key `(domain, lower-cased local part)`, in the order of
    /// `list_accounts`.
    pub async fn list_accounts_page(
        &self,
        domain: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Account>> {
        let (after_domain, after_local) = after.unwrap_or(("", ""));
        // Every local part is non-empty, so ("", "") is before the first account.
        let sql = format!(
            "{ACCOUNT_SELECT} WHERE ($1 = '' OR d.name = $1) \
             AND (d.name > $2 OR (d.name = $2 AND a.local_key > $3)) \
             ORDER BY d.name, a.local_key LIMIT $4"
        );
        let rows = db::query(sql)
            .bind(domain.unwrap_or("").to_ascii_lowercase())
            .bind(after_domain.to_string())
            .bind(after_local.to_string())
            .bind(page_limit(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn update_account(&self, id: AccountId, query: db::Query) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {id}")));
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn set_account_secret(
        &self,
        id: AccountId,
        secret_hash: &str,
        scram: &str,
    ) -> Result<()> {
        let q = db::query("UPDATE accounts SET secret_hash = $1, scram_sha256 = $2 WHERE id = $3")
            .bind(secret_hash.to_string())
            .bind(scram.to_string())
            .bind(id);
        self.update_account(id, q).await
    }

    pub async fn set_account_quota(&self, id: AccountId, quota_bytes: i64) -> Result<()> {
        if quota_bytes < 0 {
            return Err(StoreError::Invalid("negative quota".into()));
        }
        let q = db::query("UPDATE accounts SET quota_bytes = $1 WHERE id = $2")
            .bind(quota_bytes)
            .bind(id);
        self.update_account(id, q).await
    }

    pub async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> Result<()> {
        let q = db::query("UPDATE accounts SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id);
        self.update_account(id, q).await
    }

    pub async fn set_account_pop3_expire(&self, id: AccountId, days: Option<i64>) -> Result<()> {
        let q = db::query("UPDATE accounts SET pop3_expire_days = $1 WHERE id = $2")
            .bind(days)
            .bind(id);
        self.update_account(id, q).await
    }

    pub async fn delete_account(&self, id: AccountId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, id).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {id}")));
        }
        let refs = db::query("SELECT blob_hash, COUNT(*) AS n FROM messages WHERE account_id = $1 GROUP BY blob_hash ORDER BY blob_hash")
            .bind(id)
            .fetch_all(&mut tx)
            .await?;
        db::query(
            "DELETE FROM mailbox_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)",
        )
            .heavy()
        .bind(id)
        .execute(&mut tx)
        .await?;
        db::query("DELETE FROM message_text WHERE message_id IN (SELECT id FROM messages WHERE account_id = $1)")
            .heavy()
            .bind(id)
            .execute(&mut tx)
            .await?;
        db::query("DELETE FROM messages WHERE account_id = $1")
            .heavy()
            .bind(id)
            .execute(&mut tx)
            .await?;
        self.delete_spam_model(&mut tx, id).await?;
        let mut released = std::collections::BTreeMap::new();
        for r in &refs {
            released.insert(
                r.try_get::<String, _>("blob_hash")?,
                r.try_get::<i64, _>("n")?,
            );
        }
        let freed = self.unref_blobs(&mut tx, released).await?;
        db::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.directory_changed();
        self.collect_garbage(freed).await?;
        self.announce(id, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    pub async fn quota_used(&self, id: AccountId) -> Result<u64> {
        let used: i64 = db::query_scalar("SELECT used_bytes FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {id}")))?;
        to_u64(used.max(0), "used_bytes")
    }

    pub async fn add_alias(&self, address: &str, target: &str) -> Result<()> {
        let address = address.trim().to_lowercase();
        let target = target.trim();
        if !address.contains('@') || address.ends_with('@') || target.is_empty() {
            return Err(StoreError::Invalid(format!(
                "bad alias {address} -> {target}"
            )));
        }
        let mut tx = self.begin_write().await?;
        db::query("INSERT INTO aliases (address, target) VALUES ($1, $2)")
            .bind(&address)
            .bind(target)
            .execute(&mut tx)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => {
                    StoreError::AlreadyExists(format!("alias {address} -> {target}"))
                }
                other => other,
            })?;
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn delete_alias(&self, address: &str, target: Option<&str>) -> Result<()> {
        let address = address.trim().to_lowercase();
        let mut tx = self.begin_write().await?;
        let done = match target {
            Some(t) => {
                db::query("DELETE FROM aliases WHERE address = $1 AND target = $2")
                    .bind(&address)
                    .bind(t.trim())
                    .execute(&mut tx)
                    .await?
            }
            None => {
                db::query("DELETE FROM aliases WHERE address = $1")
                    .bind(&address)
                    .execute(&mut tx)
                    .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("alias {address}")));
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn list_aliases(&self) -> Result<Vec<Alias>> {
        let rows = db::query("SELECT address, target FROM aliases ORDER BY address, target")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Alias {
                    address: r.try_get("address")?,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }

    /// Up to `limit` alias rows after the key `(address, target)`, in the order of `list_aliases`.
    pub async fn list_aliases_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Alias>> {
        let (after_address, after_target) = after.unwrap_or(("", ""));
        let rows = db::query(
            "SELECT address, target FROM aliases \
             WHERE address > $1 OR (address = $1 AND target > $2) \
             ORDER BY address, target LIMIT $3",
        )
        .bind(after_address.to_string())
        .bind(after_target.to_string())
        .bind(page_limit(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Alias {
                    address: r.try_get("address")?,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }

    pub async fn alias_targets(&self, address: &str) -> Result<Vec<String>> {
        let address = address.trim().to_lowercase();
        self.cached(dir_cache::Aliases, address.clone(), async {
            db::query_scalar("SELECT target FROM aliases WHERE address = $1 ORDER BY target")
                .bind(address)
                .fetch_all(&self.reader)
                .await
        })
        .await
    }

    pub async fn lock_maildrop(
        &self,
        account: AccountId,
        owner: &str,
        ttl_secs: i64,
    ) -> Result<bool> {
        let now = now_secs();
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        // One statement decides: insert, or take over when the holder is us or has expired.
        let got: Option<String> = db::query_scalar(
            "INSERT INTO maildrop_locks (account_id, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE maildrop_locks.owner = excluded.owner OR maildrop_locks.expires_at <= $4 \
             RETURNING owner",
        )
        .bind(account)
        .bind(owner)
        .bind(now.saturating_add(ttl_secs.max(0)))
        .bind(now)
        .fetch_optional(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(got.is_some())
    }

    pub async fn unlock_maildrop(&self, account: AccountId, owner: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        db::query("DELETE FROM maildrop_locks WHERE account_id = $1 AND owner = $2")
            .bind(account)
            .bind(owner)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
