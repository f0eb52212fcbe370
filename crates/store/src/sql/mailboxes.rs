//! Mailbox rows: naming rules, UIDVALIDITY allocation, create/rename/delete, status and the
//! read side of a mailbox (index, changes since a modseq, stored message data).

use std::collections::HashMap;
use std::io;

use bytes::Bytes;

use super::{Dialect, ENTRY_COLUMNS, Row, Shared, Tx, db, entry_from_row, to_u32, to_u64};
use crate::model::*;
use crate::{Result, StoreError};

const MAILBOX_COLUMNS: &str =
    "id, account_id, name, special_use, uid_validity, uid_next, highest_modseq";

pub(super) fn mailbox_from_row(r: &Row) -> Result<Mailbox> {
    let role: Option<String> = r.try_get("special_use")?;
    Ok(Mailbox {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        special_use: role.as_deref().and_then(SpecialUse::from_attribute),
        uid_validity: to_u32(r.try_get("uid_validity")?, "uid_validity")?,
        uid_next: to_u32(r.try_get("uid_next")?, "uid_next")?,
        highest_modseq: to_u64(r.try_get("highest_modseq")?, "highest_modseq")?,
    })
}

/// Canonical stored name: `INBOX` (any case) as the first component is spelled `INBOX`; empty
/// names, empty components and control characters are refused.
pub(crate) fn canonical_name(name: &str) -> Result<String> {
    let bad = || StoreError::Invalid(format!("bad mailbox name: {name:?}"));
    if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
        return Err(bad());
    }
    let parts: Vec<&str> = name.split(HIERARCHY_DELIMITER).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let mut out = String::with_capacity(name.len());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(HIERARCHY_DELIMITER);
        }
        if i == 0 && p.eq_ignore_ascii_case("INBOX") {
            out.push_str("INBOX");
        } else {
            out.push_str(p);
        }
    }
    Ok(out)
}

impl Shared {
    /// Inserts a mailbox with a fresh UIDVALIDITY (the caller holds the account lock).
    pub(crate) async fn insert_mailbox(
        &self,
        tx: &mut Tx,
        account: AccountId,
        name: &str,
        role: Option<SpecialUse>,
        subscribed: bool,
    ) -> Result<MailboxId> {
        let validity: i64 = db::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'uid_validity' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        // UIDVALIDITY is a non-zero 32-bit number.
        let validity = (validity.rem_euclid(i64::from(u32::MAX))).max(1);
        let id: i64 = db::query_scalar(
            "INSERT INTO mailboxes (account_id, name, special_use, uid_validity) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(account)
        .bind(name)
        .bind(role.map(|r| r.as_db().to_string()))
        .bind(validity)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("mailbox {name}")),
            other => other,
        })?;
        if subscribed {
            subscribe(tx, account, name).await?;
        }
        Ok(id)
    }

    pub async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name");
        let rows = db::query(sql).bind(account).fetch_all(&self.reader).await?;
        rows.iter().map(mailbox_from_row).collect()
    }

    pub async fn get_mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = canonical_name(name) else {
            return Ok(None);
        };
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2");
        let row = db::query(sql)
            .bind(account)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    pub async fn get_mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1");
        let row = db::query(sql).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        crate::names::check_mailbox_name(name)?;
        let name = canonical_name(name)?;
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let count: i64 = db::query_scalar("SELECT COUNT(*) FROM mailboxes WHERE account_id = $1")
            .bind(account)
            .fetch_one(&mut tx)
            .await?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= crate::MAX_MAILBOXES {
            return Err(StoreError::Limit(format!(
                "at most {} mailboxes",
                crate::MAX_MAILBOXES
            )));
        }
        let id = self
            .insert_mailbox(&mut tx, account, &name, role, false)
            .await?;
        tx.commit().await?;
        self.announce(account, MailboxEvent::MailboxesChanged);
        self.get_mailbox_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Backend("mailbox vanished after insert".into()))
    }

    /// Checks that mailbox `id` belongs to `account` (under the account lock).
    async fn owned_mailbox(
        &self,
        tx: &mut Tx,
        account: AccountId,
        id: MailboxId,
    ) -> Result<String> {
        if self.lock_account(tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        db::query_scalar("SELECT name FROM mailboxes WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
    }

    pub async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.owned_mailbox(&mut tx, account, id).await?;
        let rows = db::query(
            "SELECT mm.message_id, m.size FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1",
        )
        .bind(id)
        .fetch_all(&mut tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut bytes = 0i64;
        for r in &rows {
            ids.push(r.try_get::<i64, _>("message_id")?);
            bytes += r.try_get::<i64, _>("size")?;
        }
        db::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1")
            .heavy()
            .bind(id)
            .execute(&mut tx)
            .await?;
        db::query("DELETE FROM expunged WHERE mailbox_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        db::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let freed = self.release_messages(&mut tx, &ids).await?;
        self.add_used(&mut tx, account, -bytes).await?;
        tx.commit().await?;
        self.collect_garbage(freed).await?;
        self.announce(account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    pub async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        crate::names::check_mailbox_name(new_name)?;
        let new_name = canonical_name(new_name)?;
        let mut tx = self.begin_write().await?;
        let old = self.owned_mailbox(&mut tx, account, id).await?;
        if old == "INBOX" {
            return Err(StoreError::Invalid(
                "INBOX is renamed by moving its messages, not here".into(),
            ));
        }
        if new_name == "INBOX" {
            return Err(StoreError::AlreadyExists("mailbox INBOX".into()));
        }
        if new_name == old {
            return Err(StoreError::AlreadyExists(format!("mailbox {new_name}")));
        }
        let all = db::query("SELECT id, name FROM mailboxes WHERE account_id = $1")
            .bind(account)
            .fetch_all(&mut tx)
            .await?;
        let prefix = format!("{old}{HIERARCHY_DELIMITER}");
        let mut moves: Vec<(i64, String)> = Vec::new();
        let mut renamed: Vec<(String, String)> = Vec::new();
        let mut staying: std::collections::HashSet<String> = std::collections::HashSet::new();
        for r in &all {
            let mid: i64 = r.try_get("id")?;
            let name: String = r.try_get("name")?;
            if mid == id {
                moves.push((mid, new_name.clone()));
                renamed.push((name, new_name.clone()));
            } else if let Some(rest) = name.strip_prefix(&prefix) {
                let to = format!("{new_name}{HIERARCHY_DELIMITER}{rest}");
                moves.push((mid, to.clone()));
                renamed.push((name, to));
            } else {
                staying.insert(name);
            }
        }
        if let Some((_, clash)) = moves.iter().find(|(_, n)| staying.contains(n)) {
            return Err(StoreError::AlreadyExists(format!("mailbox {clash}")));
        }
        // Two passes so that no intermediate state violates UNIQUE(account_id, name) when the new
        // names overlap the old ones (a → a/b moves a/b → a/b/b).
        for (mid, _) in &moves {
            db::query("UPDATE mailboxes SET name = $1 WHERE id = $2")
                .bind(format!("\u{1}renaming\u{1}{mid}"))
                .bind(mid)
                .execute(&mut tx)
                .await?;
        }
        for (mid, name) in &moves {
            db::query("UPDATE mailboxes SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(mid)
                .execute(&mut tx)
                .await?;
        }
        // Subscriptions follow the rename, as Dovecot's do: all removed first, then added, for
        // the same overlap reason.
        let mut carried = Vec::new();
        for (old_name, new_name) in &renamed {
            let n = db::query("DELETE FROM subscriptions WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(old_name)
                .execute(&mut tx)
                .await?;
            if n.rows_affected() > 0 {
                carried.push(new_name);
            }
        }
        for new_name in carried {
            subscribe(&mut tx, account, new_name).await?;
        }
        tx.commit().await?;
        self.announce(account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    pub async fn set_subscribed(&self, account: AccountId, name: &str, on: bool) -> Result<()> {
        let name = canonical_name(name)?;
        let mut tx = self.begin_write().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        if on {
            crate::names::check_mailbox_name(&name)?;
            let count: i64 =
                db::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE account_id = $1")
                    .bind(account)
                    .fetch_one(&mut tx)
                    .await?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= crate::MAX_SUBSCRIPTIONS {
                let present: Option<i64> = db::query_scalar(
                    "SELECT 1 FROM subscriptions WHERE account_id = $1 AND name = $2",
                )
                .bind(account)
                .bind(&name)
                .fetch_optional(&mut tx)
                .await?;
                if present.is_none() {
                    return Err(StoreError::Limit(format!(
                        "at most {} subscriptions",
                        crate::MAX_SUBSCRIPTIONS
                    )));
                }
            }
            subscribe(&mut tx, account, &name).await?;
        } else {
            db::query("DELETE FROM subscriptions WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(&name)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        self.announce(account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    pub async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        db::query_scalar("SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name")
            .bind(account)
            .fetch_all(&self.reader)
            .await
    }

    pub async fn set_special_use(
        &self,
        account: AccountId,
        id: MailboxId,
        role: Option<SpecialUse>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.owned_mailbox(&mut tx, account, id).await?;
        db::query("UPDATE mailboxes SET special_use = $1 WHERE id = $2")
            .bind(role.map(|r| r.as_db().to_string()))
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.announce(account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    pub async fn mailbox_status(&self, id: MailboxId) -> Result<MailboxStatus> {
        // The claim floor before the snapshot: `claim_recent_local` holds the floors while it
        // waits for a reader, so waiting for the floors with a reader held could deadlock.
        let floor = self.recent_floor(id).await;
        // One statement, so counts and counters come from one snapshot (on PostgreSQL one
        // round trip, not a read transaction's five). A floor of a mailbox that had this id
        // before (deleted, the id reused: SQLite) does not count: it names another UIDVALIDITY.
        let (floor_validity, floor_uid) = floor.unwrap_or((-1, 0));
        let r = db::query(
            "SELECT mb.uid_next, mb.uid_validity, mb.highest_modseq, \
               COUNT(mm.uid) AS messages, \
               CAST(COALESCE(SUM(CASE WHEN (mm.flags & 1) = 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS unseen, \
               CAST(COALESCE(SUM(CASE WHEN (mm.flags & 32) <> 0 AND mm.uid >= \
                 (CASE WHEN mb.uid_validity = $2 THEN $3 ELSE 0 END) THEN 1 ELSE 0 END), 0) AS BIGINT) AS recent, \
               CAST(COALESCE(SUM(CASE WHEN (mm.flags & 8) <> 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS deleted, \
               CAST(COALESCE(SUM(mm.size), 0) AS BIGINT) AS size, \
               CAST(COALESCE(SUM(CASE WHEN (mm.flags & 8) <> 0 THEN mm.size ELSE 0 END), 0) AS BIGINT) AS deleted_size \
             FROM mailboxes mb LEFT JOIN mailbox_messages mm ON mm.mailbox_id = mb.id \
             WHERE mb.id = $1 GROUP BY mb.id",
        )
        .bind(id)
        .bind(floor_validity)
        .bind(floor_uid)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        let mb = &r;
        Ok(MailboxStatus {
            messages: to_u32(r.try_get("messages")?, "count")?,
            unseen: to_u32(r.try_get("unseen")?, "count")?,
            recent: to_u32(r.try_get("recent")?, "count")?,
            deleted: to_u32(r.try_get("deleted")?, "count")?,
            size: to_u64(r.try_get("size")?, "size")?,
            deleted_size: to_u64(r.try_get("deleted_size")?, "size")?,
            uid_next: to_u32(mb.try_get("uid_next")?, "uid_next")?,
            uid_validity: to_u32(mb.try_get("uid_validity")?, "uid_validity")?,
            highest_modseq: to_u64(mb.try_get("highest_modseq")?, "highest_modseq")?,
        })
    }

    pub async fn mailbox_index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
             WHERE mm.mailbox_id = $1 ORDER BY mm.uid"
        );
        let rows = db::query(sql).bind(mailbox).fetch_all(&self.reader).await?;
        rows.iter().map(entry_from_row).collect()
    }

    pub async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        if self.dialect == Dialect::Postgres {
            return self.changes_since_in_one_statement(mailbox, since).await;
        }
        let mut tx = self.begin_read().await?;
        let mb = db::query(
            "SELECT uid_next, highest_modseq, vanished_floor FROM mailboxes WHERE id = $1",
        )
        .bind(mailbox)
        .fetch_optional(&mut tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
             WHERE mm.mailbox_id = $1 AND mm.modseq > $2 ORDER BY mm.uid"
        );
        let rows = db::query(sql)
            .bind(mailbox)
            .bind(since)
            .fetch_all(&mut tx)
            .await?;
        let gone: Vec<i64> = db::query_scalar(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .bind(mailbox)
        .bind(since)
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(MailboxChanges {
            changed: rows.iter().map(entry_from_row).collect::<Result<_>>()?,
            expunged: gone
                .into_iter()
                .map(|u| to_u32(u, "uid"))
                .collect::<Result<_>>()?,
            expunged_complete: since >= mb.try_get::<i64, _>("vanished_floor")?,
            highest_modseq: to_u64(mb.try_get("highest_modseq")?, "highest_modseq")?,
            uid_next: to_u32(mb.try_get("uid_next")?, "uid_next")?,
        })
    }

    /// PostgreSQL: `changes_since` as one statement, which sees one snapshot by itself: one
    /// round trip where a read transaction of three statements took five. Every row carries the
    /// mailbox's counters and the expunged UIDs (as text, an uncorrelated subquery evaluated
    /// once); a mailbox without changed messages gives one row whose message columns are NULL.
    async fn changes_since_in_one_statement(
        &self,
        mailbox: MailboxId,
        since: i64,
    ) -> Result<MailboxChanges> {
        let sql = format!(
            "SELECT mb.uid_next, mb.highest_modseq, mb.vanished_floor, \
               (SELECT string_agg(e.uid::text, ',' ORDER BY e.uid) FROM expunged e \
                 WHERE e.mailbox_id = $1 AND e.modseq > $2) AS gone, \
               {ENTRY_COLUMNS} \
             FROM mailboxes mb LEFT JOIN mailbox_messages mm ON mm.mailbox_id = mb.id AND mm.modseq > $2 \
             WHERE mb.id = $1 ORDER BY mm.uid"
        );
        let rows = db::query(sql)
            .bind(mailbox)
            .bind(since)
            .fetch_all(&self.reader)
            .await?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let gone: Option<String> = first.try_get("gone")?;
        let mut expunged = Vec::new();
        for uid in gone
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|u| !u.is_empty())
        {
            let uid: i64 = uid
                .parse()
                .map_err(|_| StoreError::Backend(format!("expunged uid {uid:?}")))?;
            expunged.push(to_u32(uid, "uid")?);
        }
        let mut changed = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<Option<i64>, _>("uid")?.is_some() {
                changed.push(entry_from_row(r)?);
            }
        }
        Ok(MailboxChanges {
            changed,
            expunged,
            expunged_complete: since >= first.try_get::<i64, _>("vanished_floor")?,
            highest_modseq: to_u64(first.try_get("highest_modseq")?, "highest_modseq")?,
            uid_next: to_u32(first.try_get("uid_next")?, "uid_next")?,
        })
    }

    /// Removes the tombstones older than `horizon` and raises each mailbox's `vanished_floor`
    /// to the highest mod-sequence removed (so `changes_since` knows its list of expunges is
    /// incomplete below it); returns how many were removed.
    pub async fn prune_tombstones(&self, horizon: std::time::Duration) -> Result<usize> {
        let cutoff =
            super::now_secs().saturating_sub(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
        let mut tx = self.begin_write().await?;
        let tops = db::query(
            "SELECT mailbox_id, MAX(modseq) AS top FROM expunged WHERE expunged_at < $1 \
             GROUP BY mailbox_id",
        )
        .bind(cutoff)
        .fetch_all(&mut tx)
        .await?;
        let mut removed = 0u64;
        for r in &tops {
            let mailbox: i64 = r.try_get("mailbox_id")?;
            let top: i64 = r.try_get("top")?;
            db::query(
                "UPDATE mailboxes SET vanished_floor = CASE WHEN vanished_floor < $1 THEN $1 \
                 ELSE vanished_floor END WHERE id = $2",
            )
            .bind(top)
            .bind(mailbox)
            .execute(&mut tx)
            .await?;
            removed += db::query("DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2")
                .heavy()
                .bind(mailbox)
                .bind(top)
                .execute(&mut tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    pub async fn message_summary(&self, message: MessageId) -> Result<Bytes> {
        let s: Vec<u8> = db::query_scalar("SELECT summary FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message {message}")))?;
        Ok(Bytes::from(s))
    }

    pub async fn message_contents(
        &self,
        messages: &[MessageId],
        want_summary: bool,
        want_raw: bool,
    ) -> Result<Vec<Result<MessageContent>>> {
        if messages.is_empty() || !(want_summary || want_raw) {
            return Ok(messages
                .iter()
                .map(|_| Ok(MessageContent::default()))
                .collect());
        }
        // Keeps every statement far below SQLite's and PostgreSQL's bind-parameter limits.
        const MAX_IDS: usize = 500;
        // Per message: (summary and preview when asked, blob hash).
        type Found = (Option<(Vec<u8>, String)>, String);
        let mut found: HashMap<MessageId, Found> = HashMap::with_capacity(messages.len());
        for ids in messages.chunks(MAX_IDS) {
            let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            let summary_col = if want_summary {
                "summary, preview"
            } else {
                "NULL AS summary"
            };
            let sql = format!(
                "SELECT id, {summary_col}, blob_hash FROM messages WHERE id IN ({})",
                placeholders.join(",")
            );
            let mut q = db::query(sql);
            for id in ids {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.reader).await? {
                let id: i64 = row.try_get("id")?;
                let summary: Option<(Vec<u8>, String)> = if want_summary {
                    Some((row.try_get("summary")?, row.try_get("preview")?))
                } else {
                    None
                };
                found.insert(id, (summary, row.try_get("blob_hash")?));
            }
        }
        // Expunged within the grace period: read from the body that is still there (and the
        // summary made again from it), so a session that has not yet heard of the expunge gets
        // what it asks for.
        let mut released_raw: HashMap<MessageId, Bytes> = HashMap::new();
        let missing: Vec<MessageId> = messages
            .iter()
            .copied()
            .filter(|id| !found.contains_key(id))
            .collect();
        if !missing.is_empty() && !self.blob_grace.is_zero() {
            for ids in missing.chunks(MAX_IDS) {
                let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT message_id, blob_hash FROM released_messages WHERE message_id IN ({})",
                    placeholders.join(",")
                );
                let mut q = db::query(sql);
                for id in ids {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(&self.reader).await? {
                    let id: i64 = row.try_get("message_id")?;
                    let hash: String = row.try_get("blob_hash")?;
                    // Gone already (the sweep was first): the message is not found.
                    let Ok(raw) = self.blobs.read(&hash).await else {
                        continue;
                    };
                    let summary = if want_summary {
                        let copy = raw.clone();
                        let a = tokio::task::spawn_blocking(move || wharf_mime::analyze(&copy))
                            .await
                            .map_err(|e| StoreError::Backend(format!("analysis task: {e}")))?;
                        Some((a.summary, a.preview))
                    } else {
                        None
                    };
                    found.insert(id, (summary, hash));
                    released_raw.insert(id, raw);
                }
            }
        }
        // One slot per message asked (the same message may sit in a mailbox twice, after a COPY
        // into itself), so the results line up with `messages` by position.
        let mut raws: Vec<Option<io::Result<Bytes>>> = messages.iter().map(|_| None).collect();
        if want_raw {
            for (slot, id) in raws.iter_mut().zip(messages) {
                if let Some(raw) = released_raw.get(id) {
                    *slot = Some(Ok(raw.clone()));
                }
            }
            let hashes: Vec<String> = messages
                .iter()
                .filter(|id| !released_raw.contains_key(id))
                .filter_map(|id| found.get(id).map(|(_, h)| h.clone()))
                .collect();
            let started = std::time::Instant::now();
            let mut read = self.blobs.read_many(&hashes).await?.into_iter();
            metrics::histogram!("wharf_store_seconds", "op" => "blob_read_many")
                .record(started.elapsed().as_secs_f64());
            for (slot, id) in raws.iter_mut().zip(messages) {
                if released_raw.contains_key(id) {
                    continue;
                }
                if let Some((_, hash)) = found.get(id) {
                    let r = read.next().ok_or_else(|| {
                        StoreError::Backend("blob store returned fewer blobs than asked".into())
                    })?;
                    if let Err(e) = &r {
                        tracing::error!(message = *id, hash = %hash, error = %e, "store: blob of a committed message is unreadable");
                    }
                    *slot = Some(r);
                }
            }
        }
        Ok(messages
            .iter()
            .zip(raws)
            .map(|(id, raw)| {
                let Some((summary, hash)) = found.get(id) else {
                    return Err(StoreError::NotFound(format!("message {id}")));
                };
                Ok(MessageContent {
                    summary: summary.as_ref().map(|(s, _)| Bytes::from(s.clone())),
                    preview: summary.as_ref().map(|(_, p)| p.clone()),
                    email_id: summary
                        .as_ref()
                        .map(|_| format!("E{id}-{}", hash.get(..12).unwrap_or(hash))),
                    raw: raw.transpose()?,
                })
            })
            .collect())
    }

    /// The blob of a message, or of one expunged within the grace period (its body is still
    /// there for sessions that have not yet heard of the expunge).
    async fn message_hash(&self, message: MessageId) -> Result<String> {
        let hash: Option<String> = db::query_scalar("SELECT blob_hash FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&self.reader)
            .await?;
        match hash {
            Some(h) => Ok(h),
            None => {
                db::query_scalar("SELECT blob_hash FROM released_messages WHERE message_id = $1")
                    .bind(message)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("message {message}")))
            }
        }
    }

    pub async fn message_raw(&self, message: MessageId) -> Result<Bytes> {
        let hash = self.message_hash(message).await?;
        let started = std::time::Instant::now();
        let raw = self.blobs.read(&hash).await;
        metrics::histogram!("wharf_store_seconds", "op" => "blob_read")
            .record(started.elapsed().as_secs_f64());
        raw.map_err(|e| {
            tracing::error!(message, hash = %hash, error = %e, "store: blob of a committed message is unreadable");
            StoreError::Io(e)
        })
    }

    pub async fn open_message(
        &self,
        message: MessageId,
        start: u64,
    ) -> Result<(u64, crate::BlobReader)> {
        let hash = self.message_hash(message).await?;
        self.blobs.open_read(&hash, start).await.map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                // Expunged, and its grace period over: gone, as the session will soon hear.
                return StoreError::NotFound(format!("message {message}"));
            }
            tracing::error!(message, hash = %hash, error = %e, "store: blob of a committed message is unreadable");
            StoreError::Io(e)
        })
    }
}

/// Adds a subscription; one already there is left as it is.
async fn subscribe(tx: &mut Tx, account: AccountId, name: &str) -> Result<()> {
    db::query(
        "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) \
         ON CONFLICT (account_id, name) DO NOTHING",
    )
    .bind(account)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
