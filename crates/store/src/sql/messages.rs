//! Changes to messages already stored: flags and keywords (with CONDSTORE's UNCHANGEDSINCE),
//! copy and move, expunge with tombstones, and the one-time claim of \Recent.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    Dialect, ENTRY_COLUMNS, Shared, db, encode_keywords, entry_from_row, normalize_keywords,
    now_secs, to_u32, to_u64,
};
use crate::model::*;
use crate::{Result, StoreError};

fn apply(
    op: FlagOp,
    old: &MessageEntry,
    flags: Flags,
    keywords: &[String],
) -> (Flags, Vec<String>) {
    match op {
        FlagOp::Add => {
            let mut k = old.keywords.clone();
            k.extend(keywords.iter().cloned());
            (old.flags | flags, normalize_keywords(&k))
        }
        FlagOp::Remove => {
            let k: Vec<String> = old
                .keywords
                .iter()
                .filter(|o| !keywords.iter().any(|r| r.eq_ignore_ascii_case(o)))
                .cloned()
                .collect();
            (old.flags.difference(flags), k)
        }
        FlagOp::Replace => {
            let recent = Flags(old.flags.0 & Flags::RECENT.0);
            (flags | recent, keywords.to_vec())
        }
        FlagOp::ReplaceWithin(mask) => {
            let within = mask.flags.difference(Flags::RECENT);
            let kept = old.flags.difference(within);
            let k = if mask.keywords {
                keywords.to_vec()
            } else {
                old.keywords.clone()
            };
            (kept | Flags(flags.0 & within.0), k)
        }
    }
}

/// What a STORE did inside its transaction, to be answered (and announced) once it commits.
pub(crate) struct StoredFlags {
    updates: Vec<FlagUpdate>,
    /// UIDs left alone because they changed after UNCHANGEDSINCE.
    modified: Vec<Uid>,
    /// The account and the mailbox's new highest modseq, when something changed.
    changed: Option<(AccountId, i64)>,
}

/// Whether `keyword` is in `new` but was not in `old` (keywords compare case-insensitively).
fn gained(old: &[String], new: &[String], keyword: &str) -> bool {
    let has = |k: &[String]| k.iter().any(|x| x.eq_ignore_ascii_case(keyword));
    has(new) && !has(old)
}

/// Messages whose new flags one UPDATE writes (3 parameters each: within both backends'
/// parameter limits).
const FLAG_ROWS_PER_STATEMENT: usize = 500;

impl Shared {
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)> {
        let mut tx = self.begin_write_relaxed().await?;
        let stored = self
            .store_flags_in(&mut tx, mailbox, uids, op, flags, keywords, unchanged_since)
            .await?;
        tx.commit().await?;
        Ok(self.stored_flags_committed(mailbox, stored))
    }

    /// After the commit of `store_flags_in`'s transaction: announces the change, returns the
    /// STORE's answer.
    pub(crate) fn stored_flags_committed(
        &self,
        mailbox: MailboxId,
        stored: StoredFlags,
    ) -> (Vec<FlagUpdate>, Vec<Uid>) {
        if let Some((account, modseq)) = stored.changed {
            self.publish_changed(account, mailbox, modseq);
        }
        (stored.updates, stored.modified)
    }

    /// A STORE inside the caller's write transaction (`flag_batch` runs several in one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_flags_in(
        &self,
        tx: &mut db::Tx,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoredFlags> {
        // \Recent belongs to the server.
        let flags = flags.difference(Flags::RECENT);
        let keywords = normalize_keywords(keywords);
        let account = self.mailbox_account(&mut *tx, mailbox).await?;
        let rows = self.entries_for_uids(&mut *tx, mailbox, uids).await?;
        let mut modified = Vec::new();
        let mut changes = Vec::new();
        // The user's own verdicts ($Junk / $NotJunk set now) train the spam filter.
        let mut marked_spam = Vec::new();
        let mut marked_ham = Vec::new();
        for e in &rows {
            if unchanged_since.is_some_and(|u| e.modseq > u) {
                modified.push(e.uid);
                continue;
            }
            let (nf, nk) = apply(op, e, flags, &keywords);
            if nf != e.flags || nk != e.keywords {
                if gained(&e.keywords, &nk, "$Junk") {
                    marked_spam.push(e.message_id);
                } else if gained(&e.keywords, &nk, "$NotJunk") {
                    marked_ham.push(e.message_id);
                }
                changes.push((e.uid, nf, nk));
            }
        }
        for (messages, spam) in [(&marked_spam, true), (&marked_ham, false)] {
            if !messages.is_empty() {
                self.queue_training(&mut *tx, account, messages, spam)
                    .await?;
            }
        }
        if changes.is_empty() {
            return Ok(StoredFlags {
                updates: Vec::new(),
                modified,
                changed: None,
            });
        }
        // One STORE, one modseq (RFC 7162 §3.1).
        let (_, modseq, _) = self.bump_mailbox(&mut *tx, mailbox, 0, 1).await?;
        // The rows change in statements of up to `FLAG_ROWS_PER_STATEMENT` messages each (one
        // round trip to PostgreSQL per statement, where it was one per message: a STORE of a
        // thousand messages, "mark all read", took a thousand).
        let mut updates = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(FLAG_ROWS_PER_STATEMENT) {
            let rows = (0..chunk.len())
                .map(|i| {
                    let p = 3 + 3 * i;
                    format!(
                        "SELECT CAST(${} AS BIGINT) AS uid, CAST(${} AS BIGINT) AS flags, CAST(${} AS TEXT) AS keywords",
                        p,
                        p + 1,
                        p + 2
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let mut q = db::query(format!(
                "UPDATE mailbox_messages SET flags = v.flags, keywords = v.keywords, modseq = $1 \
                 FROM ({rows}) AS v WHERE mailbox_messages.mailbox_id = $2 AND mailbox_messages.uid = v.uid"
            ))
            .bind(modseq)
            .bind(mailbox);
            for (uid, nf, nk) in chunk {
                q = q
                    .bind(i64::from(*uid))
                    .bind(i64::from(nf.0))
                    .bind(super::encode_keywords(nk));
            }
            q.execute(&mut *tx).await?;
        }
        for (uid, nf, nk) in changes {
            updates.push(FlagUpdate {
                uid,
                flags: nf,
                keywords: nk,
                modseq: to_u64(modseq, "modseq")?,
            });
        }
        Ok(StoredFlags {
            updates,
            modified,
            changed: Some((account, modseq)),
        })
    }

    /// COPY or MOVE. Between two accounts (a mailbox shared through its ACL) each message gets
    /// a `messages` row of the target's owner naming the same blob (one more reference), its
    /// size counts against the target owner's quota, and a move releases the source rows as an
    /// expunge does.
    pub async fn copy_or_move(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome> {
        let mut tx = self.begin_write().await?;
        let (account, state) = self.lock_mailbox_account(&mut tx, src).await?;
        let dst_row = db::query("SELECT account_id, uid_validity FROM mailboxes WHERE id = $1")
            .bind(dst)
            .fetch_optional(&mut tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {dst}")))?;
        let dst_account: AccountId = dst_row.try_get("account_id")?;
        let dst_state = if dst_account == account {
            None
        } else {
            // Two accounts are locked in ascending id order (the module's discipline): start
            // over when the source's comes second.
            if dst_account < account {
                drop(tx);
                tx = self.begin_write().await?;
            }
            let dst_state = self
                .lock_account(&mut tx, dst_account)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("account {dst_account}")))?;
            if dst_account < account {
                self.lock_account(&mut tx, account).await?;
            }
            Some(dst_state)
        };
        let rows = self.entries_for_uids(&mut tx, src, uids).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(CopyOutcome {
                dst_uid_validity: to_u32(dst_row.try_get("uid_validity")?, "uid_validity")?,
                mapping: Vec::new(),
            });
        }
        let total: i64 = rows.iter().map(|e| e.size as i64).sum();
        match &dst_state {
            Some(d) if d.over_quota(total) => return Err(StoreError::OverQuota),
            // A move within one account changes nothing in its usage.
            None if !is_move && state.over_quota(total) => return Err(StoreError::OverQuota),
            _ => {}
        }
        if dst_state.is_some() {
            self.reference_blobs(&mut tx, &rows).await?;
        }
        let n = rows.len() as i64;
        let (next, dst_modseq, dst_validity) = self.bump_mailbox(&mut tx, dst, n, 1).await?;
        let base = next - n;
        let mut mapping = Vec::with_capacity(rows.len());
        for (i, e) in rows.iter().enumerate() {
            let uid = base + i as i64;
            let message_id = if dst_state.is_some() {
                self.clone_message(&mut tx, e.message_id, dst_account)
                    .await?
            } else {
                e.message_id
            };
            db::query(
                "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, modseq, size, internal_date, saved_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(dst)
            .bind(uid)
            .bind(message_id)
            .bind(i64::from((Flags(e.flags.0 & keep.flags.0) | Flags::RECENT).0))
            .bind(if keep.keywords {
                super::encode_keywords(&e.keywords)
            } else {
                String::new()
            })
            .bind(dst_modseq)
            .bind(i64::try_from(e.size).map_err(|_| StoreError::Invalid("message size".into()))?)
            .bind(e.internal_date)
            .bind(super::now_secs())
            .execute(&mut tx)
            .await?;
            mapping.push((e.uid, to_u32(uid, "uid")?));
        }
        let moved: Vec<MessageId> = rows.iter().map(|e| e.message_id).collect();
        if dst_state.is_none() {
            // Spam training follows a message between an account's own Junk and other folders.
            self.queue_training_for_transfer(&mut tx, account, src, dst, &moved)
                .await?;
        }
        let mut src_modseq = None;
        let mut freed = Vec::new();
        if is_move {
            let (_, m, _) = self.bump_mailbox(&mut tx, src, 0, 1).await?;
            for e in &rows {
                self.remove_row(&mut tx, src, e.uid, m).await?;
            }
            src_modseq = Some(m);
            if dst_state.is_some() {
                freed = self.release_messages(&mut tx, &moved).await?;
                self.add_used(&mut tx, account, -total).await?;
            }
        }
        if dst_state.is_some() {
            self.add_used(&mut tx, dst_account, total).await?;
        } else if !is_move {
            self.add_used(&mut tx, account, total).await?;
        }
        tx.commit().await?;
        self.collect_garbage(freed).await?;
        self.publish_changed(dst_account, dst, dst_modseq);
        if let Some(m) = src_modseq {
            self.publish_changed(account, src, m);
        }
        Ok(CopyOutcome {
            dst_uid_validity: dst_validity,
            mapping,
        })
    }

    /// One more reference on the blob of each of `rows` (their bodies get a `messages` row of
    /// another account), blob rows taken in hash order as every writer of several does
    /// (blob_life.rs): two such copies at once cannot deadlock on PostgreSQL. The source rows
    /// hold references, so the blob rows are there and not being removed.
    async fn reference_blobs(&self, tx: &mut super::Tx, rows: &[MessageEntry]) -> Result<()> {
        let mut refs: BTreeMap<String, i64> = BTreeMap::new();
        for e in rows {
            let hash: String = db::query_scalar("SELECT blob_hash FROM messages WHERE id = $1")
                .bind(e.message_id)
                .fetch_one(&mut *tx)
                .await?;
            *refs.entry(hash).or_insert(0) += 1;
        }
        for (hash, n) in refs {
            let referenced = db::query(
                "UPDATE blobs SET refcount = refcount + $1, released_at = NULL \
                 WHERE hash = $2 AND deleting_since IS NULL",
            )
            .bind(n)
            .bind(hash.as_str())
            .execute(&mut *tx)
            .await?;
            if referenced.rows_affected() != 1 {
                return Err(StoreError::Backend(format!(
                    "blob {hash} has no row to reference"
                )));
            }
        }
        Ok(())
    }

    /// A new `messages` row of `account` for the body of `message` (another account's), whose
    /// blob `reference_blobs` referenced, with the same search text.
    async fn clone_message(
        &self,
        tx: &mut super::Tx,
        message: MessageId,
        account: AccountId,
    ) -> Result<MessageId> {
        let columns = "blob_hash, size, internal_date, received_at, sent_date, summary, preview";
        let q = match self.dialect {
            Dialect::Sqlite => {
                let fresh: i64 = db::query_scalar(
                    "UPDATE counters SET value = value + 1 WHERE name = 'message_id' RETURNING value",
                )
                .fetch_one(&mut *tx)
                .await?;
                db::query_scalar(format!(
                    "INSERT INTO messages (id, account_id, {columns}) \
                     SELECT $1, $2, {columns} FROM messages WHERE id = $3 RETURNING id"
                ))
                .bind(fresh)
            }
            Dialect::Postgres => db::query_scalar(format!(
                "INSERT INTO messages (account_id, {columns}) \
                 SELECT $1, {columns} FROM messages WHERE id = $2 RETURNING id"
            )),
        };
        let id: MessageId = q
            .bind(account)
            .bind(message)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message {message}")))?;
        let text = "subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body, text_version, attachments_version";
        db::query(format!(
            "INSERT INTO message_text (message_id, {text}) \
             SELECT $1, {text} FROM message_text WHERE message_id = $2"
        ))
        .bind(id)
        .bind(message)
        .execute(&mut *tx)
        .await?;
        Ok(id)
    }

    /// Deletes one mailbox row and leaves its tombstone.
    async fn remove_row(
        &self,
        tx: &mut super::Tx,
        mailbox: MailboxId,
        uid: Uid,
        modseq: i64,
    ) -> Result<()> {
        db::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2")
            .bind(mailbox)
            .bind(i64::from(uid))
            .execute(&mut *tx)
            .await?;
        db::query(
            "INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(mailbox)
        .bind(i64::from(uid))
        .bind(modseq)
        .bind(super::now_secs())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// `only_deleted`: IMAP EXPUNGE semantics (rows flagged \Deleted); otherwise POP3's (any).
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
        only_deleted: bool,
    ) -> Result<Vec<Uid>> {
        let mut tx = self.begin_write().await?;
        let account = self.mailbox_account(&mut tx, mailbox).await?;
        let rows = match uids {
            Some(u) => self.entries_for_uids(&mut tx, mailbox, u).await?,
            None => {
                let sql = format!(
                    "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
                     WHERE mm.mailbox_id = $1 AND (mm.flags & 8) <> 0 ORDER BY mm.uid"
                );
                let rows = db::query(sql).bind(mailbox).fetch_all(&mut tx).await?;
                rows.iter()
                    .map(entry_from_row)
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let doomed: Vec<&MessageEntry> = rows
            .iter()
            .filter(|e| !only_deleted || e.flags.contains(Flags::DELETED))
            .collect();
        if doomed.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let (_, modseq, _) = self.bump_mailbox(&mut tx, mailbox, 0, 1).await?;
        let mut bytes = 0i64;
        let mut ids = Vec::with_capacity(doomed.len());
        for e in &doomed {
            self.remove_row(&mut tx, mailbox, e.uid, modseq).await?;
            bytes += e.size as i64;
            ids.push(e.message_id);
        }
        let freed = self.release_messages(&mut tx, &ids).await?;
        self.add_used(&mut tx, account, -bytes).await?;
        tx.commit().await?;
        self.collect_garbage(freed).await?;
        self.publish_changed(account, mailbox, modseq);
        Ok(doomed.iter().map(|e| e.uid).collect())
    }

    /// `\Recent` claims on SQLite, where one process owns the store: exact through this process's
    /// floor per mailbox (UIDs only grow and the single writer makes them visible in order, so
    /// every unclaimed `\Recent` message has a UID at or above the floor), read from a reader
    /// connection, so a SELECT never waits for the writer; the flag bits are cleared afterwards by
    /// a relaxed write of their own. If the process dies before that write, those messages are
    /// `\Recent` once more after the restart — as after a crash before the claim's commit.
    pub async fn claim_recent_local(self: &Arc<Self>, mailbox: MailboxId) -> Result<Vec<Uid>> {
        let Some(validity) =
            db::query_scalar::<i64>("SELECT uid_validity FROM mailboxes WHERE id = $1")
                .bind(mailbox)
                .fetch_optional(&self.reader)
                .await?
        else {
            return Ok(Vec::new());
        };
        let mut floors = self.recent_floors.lock().await;
        let floor = match floors.get(&mailbox) {
            Some(&(v, floor)) if v == validity => floor,
            _ => 0,
        };
        let uids: Vec<i64> = db::query_scalar(
            "SELECT uid FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND (flags & 32) <> 0 ORDER BY uid",
        )
        .bind(mailbox)
        .bind(floor)
        .fetch_all(&self.reader)
        .await?;
        let Some(&last) = uids.last() else {
            return Ok(Vec::new());
        };
        floors.insert(mailbox, (validity, last + 1));
        drop(floors);
        let shared = self.clone();
        tokio::spawn(async move {
            let cleared = async {
                let mut tx = shared.begin_write_relaxed().await?;
                db::query(
                    "UPDATE mailbox_messages SET flags = flags - 32 \
                     WHERE mailbox_id = $1 AND uid <= $2 AND (flags & 32) <> 0",
                )
                .bind(mailbox)
                .bind(last)
                .execute(&mut tx)
                .await?;
                tx.commit().await
            };
            if let Err(e) = cleared.await {
                tracing::warn!(error = %e, mailbox, "store: could not clear claimed \\Recent flags");
            }
        });
        uids.into_iter().map(|u| to_u32(u, "uid")).collect()
    }

    /// `\Recent` below this process's claim floor is claimed already (SQLite; none elsewhere):
    /// (the UIDVALIDITY the floor belongs to, the floor).
    pub async fn recent_floor(&self, mailbox: MailboxId) -> Option<(i64, i64)> {
        self.recent_floors.lock().await.get(&mailbox).copied()
    }

    pub async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        if self.dialect == Dialect::Postgres {
            return self.claim_recent_in_one_exchange(mailbox).await;
        }
        let mut tx = self.begin_write_relaxed().await?;
        self.mailbox_account(&mut tx, mailbox).await?;
        // \Recent is not a client-visible change: no modseq, no event. One statement claims and
        // reports (RETURNING has no ORDER BY: sorted here).
        let mut uids: Vec<i64> = db::query_scalar(
            "UPDATE mailbox_messages SET flags = flags - 32 WHERE mailbox_id = $1 AND (flags & 32) <> 0 RETURNING uid",
        )
        .bind(mailbox)
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        uids.sort_unstable();
        uids.into_iter().map(|u| to_u32(u, "uid")).collect()
    }

    /// PostgreSQL: `claim_recent`'s transaction (relaxed durability, the account lock, the
    /// claim) as one simple query: one round trip where it took four, after every APPEND or
    /// delivery a session sees. The only value written into the SQL is the mailbox id, an
    /// integer. The account is locked before any row changes (the claim's `EXISTS` reads the
    /// locking CTE first), as the locking discipline asks; the kind-0 row says the mailbox exists.
    async fn claim_recent_in_one_exchange(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        let sql = format!(
            "SET LOCAL synchronous_commit = off; \
             WITH locked AS (SELECT a.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id \
                             WHERE m.id = {mailbox} FOR UPDATE OF a), \
                  c AS (UPDATE mailbox_messages SET flags = flags - 32 \
                        WHERE mailbox_id = {mailbox} AND (flags & 32) <> 0 AND EXISTS (SELECT 1 FROM locked) \
                        RETURNING uid) \
             SELECT CAST(0 AS BIGINT) AS kind, CAST(0 AS BIGINT) AS uid FROM locked \
             UNION ALL SELECT CAST(1 AS BIGINT), CAST(uid AS BIGINT) FROM c"
        );
        let rows = self.writer.simple_query(sql).await?;
        let mut exists = false;
        let mut uids = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<i64, _>("kind")? == 0 {
                exists = true;
            } else {
                uids.push(to_u32(r.try_get("uid")?, "uid")?);
            }
        }
        if !exists {
            return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
        }
        uids.sort_unstable();
        Ok(uids)
    }

    /// MULTIAPPEND (RFC 3502): every message in one transaction or none. Not group-committed
    /// with deliveries (the writer answers each message on its own); the same steps in one
    /// durable transaction: blobs pinned and written durably first, then the account locked, the
    /// quota checked on the sum, consecutive UIDs allocated, the rows inserted.
    pub async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = tokio::task::spawn_blocking(move || {
            messages
                .into_iter()
                .map(|m| {
                    Ok(Prepared {
                        flags: m.flags.union(Flags::RECENT),
                        keywords: encode_keywords(&normalize_keywords(&m.keywords)),
                        msg: super::writer::prepare(m.raw, m.internal_date)?,
                    })
                })
                .collect::<Result<Vec<Prepared>>>()
        })
        .await
        .map_err(|e| StoreError::Backend(format!("message analysis task: {e}")))??;
        let wanted: Vec<(String, i64)> = prepared
            .iter()
            .map(|p| (p.msg.hash.clone(), p.msg.size))
            .collect();
        let pins = self.pin_blobs(&wanted).await?;
        let items: Vec<(String, bytes::Bytes)> = prepared
            .iter()
            .map(|p| (p.msg.hash.clone(), p.msg.raw.clone()))
            .collect();
        let blobs = self.blobs.clone();
        let written = tokio::task::spawn_blocking(move || {
            let refs: Vec<(&str, &[u8])> = items
                .iter()
                .map(|(h, b)| (h.as_str(), b.as_ref()))
                .collect();
            blobs.put_durable(&refs)
        })
        .await;
        let written = match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Io(e)),
            Err(e) => Err(StoreError::Backend(format!("blob write task: {e}"))),
        };
        if let Err(e) = written {
            self.unpin_blobs(pins).await;
            return Err(e);
        }
        let mut attempt = 0;
        let done = loop {
            attempt += 1;
            match self.append_many_tx(mailbox, &prepared, &pins).await {
                // PostgreSQL deadlock or serialization failure: the transaction is void, redo it.
                Err(StoreError::Conflict(m)) if attempt < 3 => {
                    tracing::warn!(attempt, error = %m, "store: MULTIAPPEND conflicted, retrying");
                }
                other => break other,
            }
        };
        match done {
            Ok((account, highest, outcomes)) => {
                self.publish_changed(account, mailbox, highest);
                Ok(outcomes)
            }
            Err(e) => {
                self.unpin_blobs(pins).await;
                Err(e)
            }
        }
    }

    async fn append_many_tx(
        &self,
        mailbox: MailboxId,
        prepared: &[Prepared],
        pins: &super::blob_life::Pins,
    ) -> Result<(AccountId, i64, Vec<AppendOutcome>)> {
        let mut tx = self.begin_write().await?;
        let (account, state) = self.lock_mailbox_account(&mut tx, mailbox).await?;
        let total: i64 = prepared.iter().map(|p| p.msg.size).sum();
        if state.over_quota(total) {
            return Err(StoreError::OverQuota);
        }
        let n = prepared.len() as i64;
        let (next, highest, uid_validity) = self.bump_mailbox(&mut tx, mailbox, n, n).await?;
        let mut refs: BTreeMap<String, i64> = BTreeMap::new();
        for p in prepared {
            *refs.entry(p.msg.hash.clone()).or_insert(0) += 1;
        }
        self.settle_pins(&mut tx, pins, &refs).await?;
        let received_at = now_secs();
        let mut outcomes = Vec::with_capacity(prepared.len());
        for (k, p) in prepared.iter().enumerate() {
            let uid = next - n + k as i64;
            let modseq = highest - n + 1 + k as i64;
            // As the group writer does: on SQLite a counter that only grows gives the id.
            let q = match self.dialect {
                Dialect::Sqlite => {
                    let fresh: i64 = db::query_scalar(
                        "UPDATE counters SET value = value + 1 WHERE name = 'message_id' RETURNING value",
                    )
                    .fetch_one(&mut tx)
                    .await?;
                    db::query(
                        "INSERT INTO messages (id, account_id, blob_hash, size, internal_date, received_at, sent_date, summary, preview) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    )
                    .bind(fresh)
                }
                Dialect::Postgres => db::query(
                    "INSERT INTO messages (account_id, blob_hash, size, internal_date, received_at, sent_date, summary, preview) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                ),
            };
            let message_id: MessageId = p
                .msg
                .bind_message_row(q, account, received_at)
                .fetch_one(&mut tx)
                .await?
                .try_get(0usize)?;
            p.msg.text.write(&mut tx, message_id, false).await?;
            db::query(
                "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, modseq, size, internal_date, saved_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(mailbox)
            .bind(uid)
            .bind(message_id)
            .bind(i64::from(p.flags.0))
            .bind(&p.keywords)
            .bind(modseq)
            .bind(p.msg.size)
            .bind(p.msg.internal_date)
            .bind(received_at)
            .execute(&mut tx)
            .await?;
            outcomes.push(AppendOutcome {
                mailbox_id: mailbox,
                uid_validity,
                uid: to_u32(uid, "uid")?,
                modseq: to_u64(modseq, "modseq")?,
                message_id,
            });
        }
        self.add_used(&mut tx, account, total).await?;
        tx.commit().await?;
        Ok((account, highest, outcomes))
    }
}

/// One message of `append_many`, analysed, with the flags and keywords it is stored with.
struct Prepared {
    msg: super::writer::Prepared,
    flags: Flags,
    keywords: String,
}
