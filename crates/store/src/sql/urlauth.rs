//! URLAUTH mailbox access keys (IMAP RFC 4467 §3): one secret per mailbox, made on first use,
//! with which the IMAP layer signs and checks URLAUTH URLs. Deleting the key (RESETKEY) voids
//! every URL signed with it; the next GENURLAUTH makes a new one.

use super::{Shared, db};
use crate::Result;
use crate::model::*;

impl Shared {
    /// The mailbox's access key (64 hex digits); with `create`, made when it has none.
    pub async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>> {
        let read = || {
            db::query_scalar::<String>("SELECT access_key FROM urlauth_keys WHERE mailbox_id = $1")
                .bind(mailbox)
        };
        if let Some(k) = read().fetch_optional(&self.reader).await? {
            return Ok(Some(k));
        }
        if !create {
            return Ok(None);
        }
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let mut tx = self.begin_write().await?;
        // Two first uses at once: one key wins, both answer with it.
        db::query(
            "INSERT INTO urlauth_keys (mailbox_id, access_key) \
             SELECT id, $2 FROM mailboxes WHERE id = $1 \
             ON CONFLICT (mailbox_id) DO NOTHING",
        )
        .bind(mailbox)
        .bind(fresh)
        .execute(&mut tx)
        .await?;
        let key = read().fetch_optional(&mut tx).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Drops the access keys of one mailbox of `account`, or of all its mailboxes.
    pub async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let q = match mailbox {
            Some(m) => db::query(
                "DELETE FROM urlauth_keys WHERE mailbox_id = \
                 (SELECT id FROM mailboxes WHERE id = $1 AND account_id = $2)",
            )
            .bind(m)
            .bind(account),
            None => db::query(
                "DELETE FROM urlauth_keys WHERE mailbox_id IN \
                 (SELECT id FROM mailboxes WHERE account_id = $1)",
            )
            .bind(account),
        };
        q.execute(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
