//! Mailbox ACLs (IMAP RFC 4314): the rights other accounts hold on an account's mailbox, one row
//! per grantee (NULL for "anyone"), and the mailboxes an account can see through them. The
//! owner holds every right and has no row. A change is announced to the owner and to a named
//! grantee as a mailbox-list change, so their sessions read their lists again.

use super::{Shared, db};
use crate::model::*;
use crate::{Result, StoreError};

use crate::MAX_ACL_ENTRIES;

fn rights_of_row(letters: &str) -> Result<Rights> {
    Rights::parse(letters)
        .map_err(|c| StoreError::Backend(format!("stored ACL holds an unknown right {c:?}")))
}

impl Shared {
    /// The ACL of a mailbox: grantee (`None` is "anyone") and rights, "anyone" first, then by
    /// account id.
    pub async fn mailbox_acl(
        &self,
        mailbox: MailboxId,
    ) -> Result<Vec<(Option<AccountId>, Rights)>> {
        let rows = db::query(
            "SELECT grantee_account, rights FROM mailbox_acl WHERE mailbox_id = $1 \
             ORDER BY COALESCE(grantee_account, 0)",
        )
        .bind(mailbox)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let g: Option<i64> = r.try_get("grantee_account")?;
                let letters: String = r.try_get("rights")?;
                Ok((g, rights_of_row(&letters)?))
            })
            .collect()
    }

    /// Changes what `grantee` (`None`: anyone) holds on `owner`'s mailbox, reading the entry
    /// in the write transaction; rights that end empty remove it. The owner's own rights are not
    /// stored and cannot be set.
    pub async fn change_mailbox_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()> {
        if grantee == Some(owner) {
            return Err(StoreError::Invalid(
                "the owner's rights are not in the ACL".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        // The owner's and the grantee's account rows first, in ascending id order (the module
        // discipline of sql/mod.rs): a COPY between the two accounts holds both, and the
        // grantee row's key lock taken by the INSERT below must not wait behind it.
        let mut accounts = vec![owner];
        accounts.extend(grantee);
        accounts.sort_unstable();
        for a in accounts {
            self.lock_account(&mut tx, a).await?;
        }
        // On PostgreSQL the mailbox row is locked, so two changes of one ACL run one after the
        // other and neither is lost (SQLite's single writer does that already).
        let owned: Option<i64> = db::query_scalar(self.dialect.pick(
            "SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2",
            "SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2 FOR UPDATE",
        ))
        .bind(mailbox)
        .bind(owner)
        .fetch_optional(&mut tx)
        .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
        }
        if let Some(g) = grantee {
            let exists: Option<i64> = db::query_scalar("SELECT 1 FROM accounts WHERE id = $1")
                .bind(g)
                .fetch_optional(&mut tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("account {g}")));
            }
        }
        let held: Option<String> = db::query_scalar(
            "SELECT rights FROM mailbox_acl WHERE mailbox_id = $1 AND COALESCE(grantee_account, 0) = $2",
        )
        .bind(mailbox)
        .bind(grantee.unwrap_or(0))
        .fetch_optional(&mut tx)
        .await?;
        let now = match held {
            Some(l) => rights_of_row(&l)?,
            None => Rights::NONE,
        };
        let rights = change.apply(now);
        db::query(
            "DELETE FROM mailbox_acl WHERE mailbox_id = $1 AND COALESCE(grantee_account, 0) = $2",
        )
        .bind(mailbox)
        .bind(grantee.unwrap_or(0))
        .execute(&mut tx)
        .await?;
        if !rights.is_empty() {
            let n: i64 = db::query_scalar("SELECT COUNT(*) FROM mailbox_acl WHERE mailbox_id = $1")
                .bind(mailbox)
                .fetch_one(&mut tx)
                .await?;
            if n >= MAX_ACL_ENTRIES as i64 {
                return Err(StoreError::Limit(format!(
                    "at most {MAX_ACL_ENTRIES} ACL entries per mailbox"
                )));
            }
            db::query(
                "INSERT INTO mailbox_acl (mailbox_id, grantee_account, rights) VALUES ($1, $2, $3)",
            )
            .bind(mailbox)
            .bind(grantee)
            .bind(rights.letters())
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        self.announce(owner, MailboxEvent::MailboxesChanged);
        // "anyone" is not announced to every account: one SETACL could otherwise make every
        // session on every node read its mailbox again. Sessions see it at their next list.
        if let Some(g) = grantee {
            self.announce(g, MailboxEvent::MailboxesChanged);
        }
        Ok(())
    }

    /// What `account` holds on `mailbox`: every right when it owns it, else the union of its
    /// own entry and "anyone"'s (none when the mailbox does not exist).
    pub async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights> {
        let owner: Option<i64> = db::query_scalar("SELECT account_id FROM mailboxes WHERE id = $1")
            .bind(mailbox)
            .fetch_optional(&self.reader)
            .await?;
        match owner {
            None => Ok(Rights::NONE),
            Some(o) if o == account => Ok(Rights::ALL),
            Some(_) => {
                let rows: Vec<String> = db::query_scalar(
                    "SELECT rights FROM mailbox_acl WHERE mailbox_id = $1 \
                     AND (grantee_account = $2 OR grantee_account IS NULL)",
                )
                .bind(mailbox)
                .bind(account)
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .try_fold(Rights::NONE, |acc, l| Ok(acc.union(rights_of_row(l)?)))
            }
        }
    }

    /// The mailboxes of other accounts that `account` holds any right on, with the owner's
    /// address, by owner address and then name.
    pub async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>> {
        let rows = db::query(
            "SELECT m.id AS id, m.account_id AS account_id, m.name AS name, \
             m.special_use AS special_use, m.uid_validity AS uid_validity, \
             m.uid_next AS uid_next, m.highest_modseq AS highest_modseq, \
             l.local_part AS owner_local, d.name AS owner_domain, acl.rights AS rights \
             FROM mailbox_acl acl \
             JOIN mailboxes m ON m.id = acl.mailbox_id \
             JOIN accounts l ON l.id = m.account_id \
             JOIN domains d ON d.id = l.domain_id \
             WHERE (acl.grantee_account = $1 OR acl.grantee_account IS NULL) \
             AND m.account_id <> $1",
        )
        .bind(account)
        .fetch_all(&self.reader)
        .await?;
        let mut by_id: std::collections::BTreeMap<MailboxId, SharedMailbox> = Default::default();
        for r in &rows {
            let mailbox = super::mailboxes::mailbox_from_row(r)?;
            let local: String = r.try_get("owner_local")?;
            let domain: String = r.try_get("owner_domain")?;
            let letters: String = r.try_get("rights")?;
            let rights = rights_of_row(&letters)?;
            by_id
                .entry(mailbox.id)
                .and_modify(|s| s.rights = s.rights.union(rights))
                .or_insert(SharedMailbox {
                    mailbox,
                    owner: format!("{local}@{domain}"),
                    rights,
                });
        }
        let mut out: Vec<SharedMailbox> = by_id.into_values().collect();
        out.sort_by(|a, b| (&a.owner, &a.mailbox.name).cmp(&(&b.owner, &b.mailbox.name)));
        Ok(out)
    }
}
