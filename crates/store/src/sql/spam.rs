//! The spam filter's state: the classifier's token counts (global model = account 0, and one
//! model per account), what each message was trained as, the queue of training asked for by
//! users' moves into and out of Junk, greylisting triplets, allow/block lists, the addresses a
//! user has written to, and per-domain reputation. The filter's logic lives in `wharf-spam`;
//! this file only keeps its numbers, so every node sees the same ones.
//!
//! Counts are written in relaxed transactions (not fsynced on their own, like flag changes):
//! a power cut may forget the last training or verdict, never mail.

use std::collections::HashMap;

use super::db::Tx;
use super::{Row, Shared, db, dir_cache, now_secs};
use crate::model::{
    GreylistEntry, SpamListEntry, SpamModelCounts, SpamTrainingRequest, SpecialUse,
};
use crate::{
    AccountId, MAX_CORRESPONDENTS, MAX_PENDING_TRAINING, MAX_TRAINING_PER_CHANGE, MailboxId,
    MessageId, Result, StoreError,
};

/// Rows per multi-row statement (4 parameters each, well under both backends' limits).
const CHUNK: usize = 200;

fn spam_list_entry(r: &Row) -> Result<SpamListEntry> {
    Ok(SpamListEntry {
        scope: r.try_get("scope")?,
        entry: r.try_get("entry")?,
        allow: r.try_get::<String, _>("kind")? == "allow",
    })
}

impl Shared {
    /// Token counts of the given models (0 = global, else an account id) for `tokens`, with
    /// each model's totals; tokens a model never saw are absent from its map.
    pub async fn spam_counts(
        &self,
        models: &[i64],
        tokens: &[i64],
    ) -> Result<Vec<SpamModelCounts>> {
        let mut out = Vec::with_capacity(models.len());
        // Every model's totals in one statement (a delivery asks for the global and the
        // recipient's); a model with none has seen no message.
        let mut totals: HashMap<i64, (u64, u64)> = HashMap::new();
        for chunk in models.chunks(CHUNK) {
            let sql = format!(
                "SELECT account_id, ham, spam FROM spam_totals WHERE account_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = db::query(sql);
            for m in chunk {
                q = q.bind(*m);
            }
            for r in q.fetch_all(&self.reader).await? {
                totals.insert(
                    r.try_get::<i64, _>("account_id")?,
                    (count(&r, "ham")?, count(&r, "spam")?),
                );
            }
        }
        for &model in models {
            let (ham_messages, spam_messages) = totals.get(&model).copied().unwrap_or((0, 0));
            let mut counts = HashMap::new();
            if ham_messages + spam_messages > 0 {
                for chunk in tokens.chunks(CHUNK * 2) {
                    let list = placeholders(2, chunk.len());
                    let mut q = db::query(format!(
                        "SELECT token, ham, spam FROM spam_tokens WHERE account_id = $1 AND token IN ({list})"
                    ))
                    .bind(model);
                    for t in chunk {
                        q = q.bind(*t);
                    }
                    for r in q.fetch_all(&self.reader).await? {
                        counts.insert(
                            r.try_get::<i64, _>("token")?,
                            (count(&r, "ham")?, count(&r, "spam")?),
                        );
                    }
                }
            }
            out.push(SpamModelCounts {
                model,
                ham_messages,
                spam_messages,
                tokens: counts,
            });
        }
        Ok(out)
    }

    /// Trains `message` of `account` as spam or ham, in the account's model and the global one,
    /// with its token set. A message already trained the same way changes nothing (false); one
    /// trained the other way is first unlearned. Serialised per account (the account row lock),
    /// so two nodes cannot count one move twice. `message: None` is a message from outside the
    /// store (`wharf spam train` on files): it always counts.
    pub async fn spam_train(
        &self,
        account: AccountId,
        message: Option<MessageId>,
        spam: bool,
        tokens: &[i64],
    ) -> Result<bool> {
        let mut tokens = tokens.to_vec();
        tokens.sort_unstable();
        tokens.dedup();
        let tokens = &tokens[..];
        let mut tx = self.begin_write_relaxed().await?;
        if self.lock_account(&mut tx, account).await?.is_none() {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        let verdict = i64::from(spam);
        let previous: Option<i64> =
            match message {
                Some(message) => db::query_scalar(
                    "SELECT verdict FROM spam_trained WHERE account_id = $1 AND message_id = $2",
                )
                .bind(account)
                .bind(message)
                .fetch_optional(&mut tx)
                .await?,
                None => None,
            };
        if previous == Some(verdict) {
            tx.commit().await?;
            return Ok(false);
        }
        for model in [0, account] {
            if let Some(old) = previous {
                self.add_training(&mut tx, model, old != 0, tokens, -1)
                    .await?;
            }
            self.add_training(&mut tx, model, spam, tokens, 1).await?;
        }
        if let Some(message) = message {
            db::query(
                "INSERT INTO spam_trained (account_id, message_id, verdict) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, message_id) DO UPDATE SET verdict = excluded.verdict",
            )
            .bind(account)
            .bind(message)
            .bind(verdict)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Adds `delta` (±1) to one class of one model: its message total and each token's count
    /// (never below zero).
    async fn add_training(
        &self,
        tx: &mut Tx,
        model: i64,
        spam: bool,
        tokens: &[i64],
        delta: i64,
    ) -> Result<()> {
        let column = if spam { "spam" } else { "ham" };
        let max = self.dialect.pick("MAX", "GREATEST");
        let (ham_d, spam_d) = if spam { (0i64, 1i64) } else { (1, 0) };
        db::query(
            "INSERT INTO spam_totals (account_id, ham, spam) VALUES ($1, 0, 0) \
             ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(model)
        .execute(&mut *tx)
        .await?;
        db::query(format!(
            "UPDATE spam_totals SET {column} = {max}(0, {column} + $2) WHERE account_id = $1"
        ))
        .bind(model)
        .bind(delta)
        .execute(&mut *tx)
        .await?;
        if delta < 0 {
            // Unlearning only lowers rows that exist.
            for chunk in tokens.chunks(CHUNK * 2) {
                let list = placeholders(2, chunk.len());
                let mut q = db::query(format!(
                    "UPDATE spam_tokens SET {column} = {max}(0, {column} - 1) \
                     WHERE account_id = $1 AND token IN ({list})"
                ))
                .bind(model);
                for t in chunk {
                    q = q.bind(*t);
                }
                q.execute(&mut *tx).await?;
            }
            return Ok(());
        }
        for chunk in tokens.chunks(CHUNK) {
            let mut values = String::new();
            for i in 0..chunk.len() {
                if i > 0 {
                    values.push_str(", ");
                }
                let p = 3 + i * 3;
                values.push_str(&format!("($1, ${p}, ${}, ${}, $2)", p + 1, p + 2));
            }
            let mut q = db::query(format!(
                "INSERT INTO spam_tokens (account_id, token, ham, spam, last_seen) VALUES {values} \
                 ON CONFLICT (account_id, token) DO UPDATE SET {column} = spam_tokens.{column} + 1, \
                 last_seen = excluded.last_seen"
            ))
            .bind(model)
            .bind(now_secs());
            for t in chunk {
                q = q.bind(*t).bind(ham_d).bind(spam_d);
            }
            q.execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Queues training for the messages a move or copy put into (spam) or took out of (ham)
    /// the account's Junk mailbox, inside the transaction of that change. Leaving Junk for the
    /// Trash is not a ham verdict (the user is throwing spam away).
    pub async fn queue_training_for_transfer(
        &self,
        tx: &mut Tx,
        account: AccountId,
        src: MailboxId,
        dst: MailboxId,
        messages: &[MessageId],
    ) -> Result<()> {
        let roles = db::query("SELECT id, special_use FROM mailboxes WHERE id = $1 OR id = $2")
            .bind(src)
            .bind(dst)
            .fetch_all(&mut *tx)
            .await?;
        let mut src_role = None;
        let mut dst_role = None;
        for r in &roles {
            let id: i64 = r.try_get("id")?;
            let role: Option<String> = r.try_get("special_use")?;
            let role = role.as_deref().and_then(SpecialUse::from_attribute);
            if id == src {
                src_role = role;
            }
            if id == dst {
                dst_role = role;
            }
        }
        let junk = Some(SpecialUse::Junk);
        let verdict = if dst_role == junk && src_role != junk {
            true
        } else if src_role == junk && dst_role != junk && dst_role != Some(SpecialUse::Trash) {
            false
        } else {
            return Ok(());
        };
        self.queue_training(tx, account, messages, verdict).await
    }

    /// Queues training of `messages` as spam or ham (at most `MAX_TRAINING_PER_CHANGE`).
    pub async fn queue_training(
        &self,
        tx: &mut Tx,
        account: AccountId,
        messages: &[MessageId],
        spam: bool,
    ) -> Result<()> {
        if messages.len() > MAX_TRAINING_PER_CHANGE {
            tracing::info!(
                account,
                messages = messages.len(),
                trained = MAX_TRAINING_PER_CHANGE,
                "large move into or out of Junk: training on its first messages only"
            );
        }
        let pending: i64 =
            db::query_scalar("SELECT COUNT(*) FROM spam_training WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await?;
        let room = usize::try_from(MAX_PENDING_TRAINING.saturating_sub(pending)).unwrap_or(0);
        let take = messages.len().min(MAX_TRAINING_PER_CHANGE).min(room);
        if take < messages.len().min(MAX_TRAINING_PER_CHANGE) {
            tracing::warn!(
                account,
                pending,
                dropped = messages.len().min(MAX_TRAINING_PER_CHANGE) - take,
                "spam training queue of the account is full: these moves are not trained"
            );
        }
        let now = now_secs();
        for chunk in messages[..take].chunks(CHUNK) {
            let mut values = String::new();
            for i in 0..chunk.len() {
                if i > 0 {
                    values.push_str(", ");
                }
                values.push_str(&format!("($1, ${}, $2, $3)", 4 + i));
            }
            let mut q = db::query(format!(
                "INSERT INTO spam_training (account_id, message_id, verdict, queued_at) VALUES {values}"
            ))
            .bind(account)
            .bind(i64::from(spam))
            .bind(now);
            for m in chunk {
                q = q.bind(*m);
            }
            q.execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Takes up to `limit` queued training requests, oldest first, removing them (a node that
    /// dies while training loses those requests; the messages stay where the user put them).
    pub async fn take_spam_training(&self, limit: usize) -> Result<Vec<SpamTrainingRequest>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = self.dialect.pick(
            "DELETE FROM spam_training WHERE id IN (SELECT id FROM spam_training ORDER BY id LIMIT $1) \
             RETURNING id, account_id, message_id, verdict",
            "DELETE FROM spam_training WHERE id IN \
             (SELECT id FROM spam_training ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, account_id, message_id, verdict",
        );
        let mut tx = self.begin_write_relaxed().await?;
        let rows = db::query(sql).bind(limit).fetch_all(&mut tx).await?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(SpamTrainingRequest {
                    id: r.try_get("id")?,
                    account: r.try_get("account_id")?,
                    message: r.try_get("message_id")?,
                    spam: r.try_get::<i64, _>("verdict")? != 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    pub async fn greylist_entry(&self, triplet: &str) -> Result<Option<GreylistEntry>> {
        let row = db::query(
            "SELECT first_seen, last_seen, passed_until FROM greylist WHERE triplet = $1",
        )
        .bind(triplet)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(GreylistEntry {
                first_seen: r.try_get("first_seen")?,
                last_seen: r.try_get("last_seen")?,
                passed_until: r.try_get("passed_until")?,
            })
        })
        .transpose()
    }

    pub async fn put_greylist_entry(&self, triplet: &str, e: &GreylistEntry) -> Result<()> {
        let mut tx = self.begin_write_relaxed().await?;
        db::query(
            "INSERT INTO greylist (triplet, first_seen, last_seen, passed_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (triplet) DO UPDATE SET first_seen = excluded.first_seen, \
             last_seen = excluded.last_seen, passed_until = excluded.passed_until",
        )
        .bind(triplet)
        .bind(e.first_seen)
        .bind(e.last_seen)
        .bind(e.passed_until)
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// Forgets triplets not seen since `before` whose pass has run out; returns how many.
    pub async fn prune_greylist(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin_write_relaxed().await?;
        let done = db::query("DELETE FROM greylist WHERE last_seen < $1 AND passed_until < $1")
            .bind(before)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Entries of the given scopes (domain names, account addresses), or of every scope.
    pub async fn spam_list_entries(&self, scopes: Option<&[String]>) -> Result<Vec<SpamListEntry>> {
        let rows = match scopes {
            None => {
                db::query("SELECT scope, entry, kind FROM spam_lists ORDER BY scope, entry")
                    .fetch_all(&self.reader)
                    .await?
            }
            Some(scopes) => return self.spam_list_entries_of(scopes).await,
        };
        rows.iter().map(spam_list_entry).collect()
    }

    /// The entries of `scopes`, ordered by (scope, entry) as bytes (the same order on both
    /// backends, whatever PostgreSQL's collation); each scope's entries are cached on
    /// PostgreSQL (`dir_cache`), so the spam filter's lookups per delivery cost nothing.
    async fn spam_list_entries_of(&self, scopes: &[String]) -> Result<Vec<SpamListEntry>> {
        let mut scopes: Vec<String> = scopes.iter().map(|s| s.to_ascii_lowercase()).collect();
        scopes.sort();
        scopes.dedup();
        let mut all = Vec::new();
        for scope in scopes {
            let entries = self
                .cached(dir_cache::SpamLists, scope.clone(), async {
                    let rows =
                        db::query("SELECT scope, entry, kind FROM spam_lists WHERE scope = $1")
                            .bind(scope)
                            .fetch_all(&self.reader)
                            .await?;
                    let mut v = rows
                        .iter()
                        .map(spam_list_entry)
                        .collect::<Result<Vec<_>>>()?;
                    v.sort_by(|a, b| a.entry.cmp(&b.entry));
                    Ok(v)
                })
                .await?;
            all.extend(entries);
        }
        Ok(all)
    }

    /// Up to `limit` entries of one scope (or all) after the key `(scope, entry)`, in the
    /// order of `spam_list_entries`.
    pub async fn spam_list_entries_page(
        &self,
        scope: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<SpamListEntry>> {
        let (after_scope, after_entry) = after.unwrap_or(("", ""));
        let rows = db::query(
            "SELECT scope, entry, kind FROM spam_lists WHERE ($1 = '' OR scope = $1) \
             AND (scope > $2 OR (scope = $2 AND entry > $3)) \
             ORDER BY scope, entry LIMIT $4",
        )
        .bind(scope.unwrap_or("").to_ascii_lowercase())
        .bind(after_scope.to_string())
        .bind(after_entry.to_string())
        .bind(super::directory::page_limit(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SpamListEntry {
                    scope: r.try_get("scope")?,
                    entry: r.try_get("entry")?,
                    allow: r.try_get::<String, _>("kind")? == "allow",
                })
            })
            .collect()
    }

    pub async fn put_spam_list_entry(&self, e: &SpamListEntry) -> Result<()> {
        db::query(
            "INSERT INTO spam_lists (scope, entry, kind) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, entry) DO UPDATE SET kind = excluded.kind",
        )
        .bind(e.scope.to_ascii_lowercase())
        .bind(e.entry.to_ascii_lowercase())
        .bind(if e.allow { "allow" } else { "block" })
        .execute(&self.writer)
        .await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn delete_spam_list_entry(&self, scope: &str, entry: &str) -> Result<bool> {
        let done = db::query("DELETE FROM spam_lists WHERE scope = $1 AND entry = $2")
            .bind(scope.to_ascii_lowercase())
            .bind(entry.to_ascii_lowercase())
            .execute(&self.writer)
            .await?;
        self.directory_changed();
        Ok(done.rows_affected() > 0)
    }

    /// Remembers that `account` wrote to `addresses` (lowercased), keeping the newest
    /// `MAX_CORRESPONDENTS`.
    pub async fn note_correspondents(
        &self,
        account: AccountId,
        addresses: &[String],
    ) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let now = now_secs();
        let mut tx = self.begin_write_relaxed().await?;
        for a in addresses {
            db::query(
                "INSERT INTO spam_correspondents (account_id, address, last_seen) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, address) DO UPDATE SET last_seen = excluded.last_seen",
            )
            .bind(account)
            .bind(a.to_ascii_lowercase())
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        let n: i64 =
            db::query_scalar("SELECT COUNT(*) FROM spam_correspondents WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut tx)
                .await?;
        if n > MAX_CORRESPONDENTS {
            db::query(
                "DELETE FROM spam_correspondents WHERE account_id = $1 AND address IN \
                 (SELECT address FROM spam_correspondents WHERE account_id = $1 \
                  ORDER BY last_seen, address LIMIT $2)",
            )
            .bind(account)
            .bind(n - MAX_CORRESPONDENTS)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await
    }

    /// Whether the account wrote to any of `addresses`: one statement for the lot (a delivery
    /// asks for its envelope sender and its From together).
    pub async fn any_correspondent(
        &self,
        account: AccountId,
        addresses: &[String],
    ) -> Result<bool> {
        let mut wanted: Vec<String> = addresses
            .iter()
            .filter(|a| !a.is_empty())
            .map(|a| a.to_ascii_lowercase())
            .collect();
        wanted.sort();
        wanted.dedup();
        // More than a few is not a delivery's question; the first CHUNK are enough to answer.
        wanted.truncate(CHUNK);
        if wanted.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "SELECT 1 FROM spam_correspondents WHERE account_id = $1 AND address IN ({}) LIMIT 1",
            placeholders(2, wanted.len())
        );
        let mut q = db::query_scalar::<i64>(sql).bind(account);
        for a in &wanted {
            q = q.bind(a.as_str());
        }
        Ok(q.fetch_optional(&self.reader).await?.is_some())
    }

    /// Past (ham, spam) verdicts of mail authenticated as from `domain`.
    pub async fn spam_reputation(&self, domain: &str) -> Result<(u64, u64)> {
        let row = db::query("SELECT ham, spam FROM spam_reputation WHERE domain = $1")
            .bind(domain.to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(r) => Ok((count(&r, "ham")?, count(&r, "spam")?)),
            None => Ok((0, 0)),
        }
    }

    pub async fn add_spam_reputation(&self, domain: &str, spam: bool) -> Result<()> {
        let (h, s) = if spam { (0, 1) } else { (1, 0) };
        let mut tx = self.begin_write_relaxed().await?;
        db::query(
            "INSERT INTO spam_reputation (domain, ham, spam, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (domain) DO UPDATE SET ham = spam_reputation.ham + excluded.ham, \
             spam = spam_reputation.spam + excluded.spam, updated_at = excluded.updated_at",
        )
        .bind(domain.to_ascii_lowercase())
        .bind(h)
        .bind(s)
        .bind(now_secs())
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// Forgets what no longer counts: tokens trained at most once and not since `before`
    /// (most of a model's rows, and noise), tokens unlearned to zero, and the reputation of
    /// domains not seen since `before`. Returns the rows removed.
    pub async fn prune_spam_state(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin_write_relaxed().await?;
        let tokens = db::query(
            "DELETE FROM spam_tokens WHERE ham + spam = 0 OR (ham + spam <= 1 AND last_seen < $1)",
        )
        .heavy()
        .bind(before)
        .execute(&mut tx)
        .await?;
        let domains = db::query("DELETE FROM spam_reputation WHERE updated_at < $1")
            .bind(before)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(tokens.rows_affected() + domains.rows_affected())
    }

    /// The per-account rows a deleted account leaves (no foreign key: model 0 is global).
    pub async fn delete_spam_model(&self, tx: &mut Tx, account: AccountId) -> Result<()> {
        for table in ["spam_tokens", "spam_totals"] {
            db::query(format!("DELETE FROM {table} WHERE account_id = $1"))
                .heavy()
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

fn count(r: &super::Row, column: &str) -> Result<u64> {
    Ok(u64::try_from(r.try_get::<i64, _>(column)?).unwrap_or(0))
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s
}
