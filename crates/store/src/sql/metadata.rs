//! IMAP METADATA entries (RFC 5464): per account, of one mailbox or of the server. The IMAP
//! crate checks entry-name syntax; this module keeps names lower-cased (the RFC compares them
//! case-insensitively) and enforces `MetadataLimits` under the account lock, so two sessions
//! cannot exceed them together. Mailbox entries follow the mailbox row: RENAME keeps them,
//! DELETE drops them (ON DELETE CASCADE), a re-created mailbox has none.

use super::{Shared, db};
use crate::model::*;
use crate::{Result, StoreError};

/// `COALESCE(mailbox_id, 0)`, the key column of the unique index: the server is 0.
fn key_of(mailbox: Option<MailboxId>) -> i64 {
    mailbox.unwrap_or(0)
}

impl Shared {
    pub async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = db::query(
            "SELECT name, value FROM imap_metadata \
             WHERE account_id = $1 AND COALESCE(mailbox_id, 0) = $2 ORDER BY name",
        )
        .bind(account)
        .bind(key_of(mailbox))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()> {
        for (name, value) in entries {
            if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
                return Err(StoreError::Invalid(format!("bad metadata entry {name:?}")));
            }
            if value
                .as_ref()
                .is_some_and(|v| v.len() as u64 > limits.max_value)
            {
                return Err(StoreError::Limit(format!(
                    "metadata value over {} octets",
                    limits.max_value
                )));
            }
        }
        // More new entries than a mailbox may hold is refused before the write transaction:
        // a command naming hundreds must not hold the writer for a statement pair each.
        let valued: std::collections::HashSet<String> = entries
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.to_lowercase())
            .collect();
        if valued.len() as u64 > limits.max_entries_per_mailbox {
            return Err(StoreError::Limit("too many metadata entries".into()));
        }
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        if let Some(id) = mailbox {
            let owned: Option<i64> =
                db::query_scalar("SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account)
                    .fetch_optional(&mut tx)
                    .await?;
            if owned.is_none() {
                return Err(StoreError::NotFound(format!("mailbox {id}")));
            }
        }
        let key = key_of(mailbox);
        for (name, value) in entries {
            let name = name.to_lowercase();
            db::query(
                "DELETE FROM imap_metadata \
                 WHERE account_id = $1 AND COALESCE(mailbox_id, 0) = $2 AND name = $3",
            )
            .bind(account)
            .bind(key)
            .bind(name.as_str())
            .execute(&mut tx)
            .await?;
            if let Some(v) = value {
                db::query(
                    "INSERT INTO imap_metadata (account_id, mailbox_id, name, value) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(account)
                .bind(mailbox)
                .bind(name.as_str())
                .bind(v.as_slice())
                .execute(&mut tx)
                .await?;
            }
        }
        // Checked after the writes, within the transaction: deletions in the same command make
        // room, and a refused command leaves nothing behind (the transaction is dropped).
        if entries.iter().any(|(_, v)| v.is_some()) {
            let here: i64 = db::query_scalar(
                "SELECT COUNT(*) FROM imap_metadata \
                 WHERE account_id = $1 AND COALESCE(mailbox_id, 0) = $2",
            )
            .bind(account)
            .bind(key)
            .fetch_one(&mut tx)
            .await?;
            // Octets, not characters: LENGTH of TEXT counts characters on both backends.
            let row = db::query(self.dialect.pick(
                "SELECT COUNT(*) AS n, \
                 COALESCE(SUM(LENGTH(CAST(name AS BLOB)) + LENGTH(value)), 0) AS bytes \
                 FROM imap_metadata WHERE account_id = $1",
                "SELECT COUNT(*) AS n, \
                 COALESCE(SUM(OCTET_LENGTH(name) + OCTET_LENGTH(value)), 0) AS bytes \
                 FROM imap_metadata WHERE account_id = $1",
            ))
            .bind(account)
            .fetch_one(&mut tx)
            .await?;
            let total: i64 = row.try_get("n")?;
            let bytes: i64 = row.try_get("bytes")?;
            let over = |n: i64, max: u64| u64::try_from(n).unwrap_or(0) > max;
            if over(here, limits.max_entries_per_mailbox) || over(total, limits.max_entries) {
                return Err(StoreError::Limit("too many metadata entries".into()));
            }
            if over(bytes, limits.max_bytes) {
                return Err(StoreError::Limit("metadata octets over the limit".into()));
            }
        }
        tx.commit().await?;
        let mut names: Vec<String> = entries.iter().map(|(n, _)| n.to_lowercase()).collect();
        names.sort();
        names.dedup();
        self.announce(
            account,
            MailboxEvent::MetadataChanged {
                mailbox_id: mailbox,
                entries: names,
            },
        );
        Ok(())
    }
}
