//! `Store` for `SqlStore`: the trait's methods, each handing over to the `Shared` state that
//! implements it (in `mailboxes`, `messages`, `directory`, `queue`, `search`), so the trait's
//! surface reads in one place.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use super::{Dialect, SWEEP_GRACE, Shared, SqlStore, normalize_keywords, writer};
use crate::model::*;
use crate::{Result, Store, StoreError};

#[async_trait]
impl Store for SqlStore {
    async fn create_domain(&self, name: &str) -> Result<Domain> {
        self.shared.create_domain(name).await
    }
    async fn delete_domain(&self, name: &str) -> Result<()> {
        self.shared.delete_domain(name).await
    }
    async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
        self.shared.get_domain(name).await
    }
    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.shared.list_domains().await
    }
    async fn list_domains_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Domain>> {
        self.shared.list_domains_page(after, limit).await
    }
    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        self.shared.create_account(new).await
    }
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        self.shared.get_account(id).await
    }
    async fn get_account_by_address(&self, address: &str) -> Result<Option<Account>> {
        self.shared.get_account_by_address(address).await
    }
    async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        self.shared.list_accounts(domain).await
    }
    async fn list_accounts_page(
        &self,
        domain: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Account>> {
        self.shared.list_accounts_page(domain, after, limit).await
    }
    async fn set_account_secret(
        &self,
        id: AccountId,
        secret_hash: &str,
        scram_sha256: &str,
    ) -> Result<()> {
        self.shared
            .set_account_secret(id, secret_hash, scram_sha256)
            .await
    }
    async fn set_account_quota(&self, id: AccountId, quota_bytes: i64) -> Result<()> {
        self.shared.set_account_quota(id, quota_bytes).await
    }
    async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> Result<()> {
        self.shared.set_account_disabled(id, disabled).await
    }
    async fn set_account_pop3_expire(&self, id: AccountId, days: Option<i64>) -> Result<()> {
        self.shared.set_account_pop3_expire(id, days).await
    }
    async fn delete_account(&self, id: AccountId) -> Result<()> {
        self.shared.delete_account(id).await
    }
    async fn quota_used(&self, id: AccountId) -> Result<u64> {
        self.shared.quota_used(id).await
    }
    async fn add_alias(&self, address: &str, target: &str) -> Result<()> {
        self.shared.add_alias(address, target).await
    }
    async fn delete_alias(&self, address: &str, target: Option<&str>) -> Result<()> {
        self.shared.delete_alias(address, target).await
    }
    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.shared.list_aliases().await
    }
    async fn list_aliases_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Alias>> {
        self.shared.list_aliases_page(after, limit).await
    }
    async fn alias_targets(&self, address: &str) -> Result<Vec<String>> {
        self.shared.alias_targets(address).await
    }

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.shared.list_mailboxes(account).await
    }
    async fn get_mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        self.shared.get_mailbox(account, name).await
    }
    async fn get_mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        self.shared.get_mailbox_by_id(id).await
    }
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        self.shared.create_mailbox(account, name, special_use).await
    }
    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        self.shared.delete_mailbox(account, id).await
    }
    async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        self.shared.rename_mailbox(account, id, new_name).await
    }
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        self.shared.set_subscribed(account, name, subscribed).await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.shared.subscriptions(account).await
    }
    async fn mailbox_acl(&self, mailbox: MailboxId) -> Result<Vec<(Option<AccountId>, Rights)>> {
        self.shared.mailbox_acl(mailbox).await
    }
    async fn change_mailbox_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()> {
        self.shared
            .change_mailbox_acl(owner, mailbox, grantee, change)
            .await
    }
    async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights> {
        self.shared.rights_on(account, mailbox).await
    }
    async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>> {
        self.shared.shared_with(account).await
    }
    async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>> {
        self.shared.urlauth_key(mailbox, create).await
    }
    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()> {
        self.shared.reset_urlauth_keys(account, mailbox).await
    }
    async fn set_special_use(
        &self,
        account: AccountId,
        id: MailboxId,
        role: Option<SpecialUse>,
    ) -> Result<()> {
        self.shared.set_special_use(account, id, role).await
    }
    async fn mailbox_status(&self, id: MailboxId) -> Result<MailboxStatus> {
        self.shared.mailbox_status(id).await
    }
    async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.shared.get_metadata(account, mailbox).await
    }
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()> {
        self.shared
            .set_metadata(account, mailbox, entries, limits)
            .await
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome> {
        let target = writer::Target::Mailbox {
            id: mailbox,
            flags,
            keywords: normalize_keywords(keywords),
        };
        let mut results = writer::submit(&self.jobs, raw, internal_date, vec![target]).await?;
        match results.pop() {
            Some(Ok(DeliveryResult::Stored(o))) => Ok(o),
            Some(Ok(DeliveryResult::OverQuota { .. })) => Err(StoreError::OverQuota),
            Some(Ok(DeliveryResult::NoSuchAccount)) => {
                Err(StoreError::NotFound(format!("mailbox {mailbox}")))
            }
            Some(Err(e)) => Err(e),
            None => Err(StoreError::Backend("writer returned no result".into())),
        }
    }

    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>> {
        self.shared.append_many(mailbox, messages).await
    }

    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>> {
        if delivery.recipients.is_empty() {
            return Ok(Vec::new());
        }
        let targets = delivery
            .recipients
            .iter()
            .map(|a| {
                if delivery.junk {
                    writer::Target::Junk(*a)
                } else {
                    writer::Target::Inbox(*a)
                }
            })
            .collect();
        let results =
            writer::submit(&self.jobs, delivery.raw, delivery.internal_date, targets).await?;
        results.into_iter().collect()
    }

    async fn deliver_copies(
        &self,
        raw: Bytes,
        internal_date: i64,
        copies: Vec<FiledCopy>,
    ) -> Result<Vec<DeliveryResult>> {
        if copies.is_empty() {
            return Ok(Vec::new());
        }
        let targets = copies
            .into_iter()
            .map(|c| match c.target {
                CopyTarget::Inbox(a) => writer::Target::Inbox(a),
                CopyTarget::Junk(a) => writer::Target::Junk(a),
                CopyTarget::Mailbox(id) => writer::Target::Mailbox {
                    id,
                    flags: c.flags,
                    keywords: normalize_keywords(&c.keywords),
                },
            })
            .collect();
        let results = writer::submit(&self.jobs, raw, internal_date, targets).await?;
        results
            .into_iter()
            .map(|r| match r {
                Err(StoreError::NotFound(_)) => Ok(DeliveryResult::NoSuchAccount),
                other => other,
            })
            .collect()
    }

    async fn mailbox_index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        self.shared.mailbox_index(mailbox).await
    }
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        self.shared.changes_since(mailbox, since).await
    }
    async fn message_summary(&self, message: MessageId) -> Result<Bytes> {
        self.shared.message_summary(message).await
    }
    async fn message_raw(&self, message: MessageId) -> Result<Bytes> {
        self.shared.message_raw(message).await
    }
    async fn open_message(
        &self,
        message: MessageId,
        start: u64,
    ) -> Result<(u64, crate::BlobReader)> {
        self.shared.open_message(message, start).await
    }
    async fn message_contents(
        &self,
        messages: &[MessageId],
        summary: bool,
        raw: bool,
    ) -> Result<Vec<Result<MessageContent>>> {
        self.shared.message_contents(messages, summary, raw).await
    }
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)> {
        let Some(groups) = &self.flag_groups else {
            return self
                .shared
                .store_flags(mailbox, uids, op, flags, keywords, unchanged_since)
                .await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = super::flag_batch::FlagRequest {
            mailbox,
            uids: uids.to_vec(),
            op,
            flags,
            keywords: keywords.to_vec(),
            unchanged_since,
            reply,
        };
        groups
            .send(request)
            .await
            .map_err(|_| StoreError::Backend("flag writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("flag writer stopped".into()))?
    }
    async fn copy_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        self.shared
            .copy_or_move(src, uids, dst, false, FlagMask::ALL)
            .await
    }
    async fn move_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        self.shared
            .copy_or_move(src, uids, dst, true, FlagMask::ALL)
            .await
    }
    async fn transfer_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome> {
        self.shared
            .copy_or_move(src, uids, dst, is_move, keep)
            .await
    }
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        self.shared.expunge(mailbox, uids, true).await
    }
    async fn expunge_uids(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        self.shared.expunge(mailbox, Some(uids), false).await
    }
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        match self.shared.dialect {
            Dialect::Sqlite => Shared::claim_recent_local(&self.shared, mailbox).await,
            Dialect::Postgres => self.shared.claim_recent(mailbox).await,
        }
    }
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        self.shared.search_text(mailbox, field, needle).await
    }
    async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>> {
        self.shared.search_words(mailbox, field, needle).await
    }
    async fn account_role(&self, id: AccountId) -> Result<String> {
        self.shared.account_role(id).await
    }
    async fn set_account_role(&self, id: AccountId, role: &str) -> Result<()> {
        self.shared.set_account_role(id, role).await
    }
    async fn create_api_token(&self, new: NewApiToken) -> Result<ApiToken> {
        self.shared.create_api_token(new).await
    }
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.shared.list_api_tokens().await
    }
    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.shared.api_token_by_hash(hash).await
    }
    async fn touch_api_token(&self, id: i64, now: i64) -> Result<()> {
        self.shared.touch_api_token(id, now).await
    }
    async fn delete_api_token(&self, id: i64) -> Result<bool> {
        self.shared.delete_api_token(id).await
    }
    async fn create_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
        limit: usize,
    ) -> Result<Option<AppPassword>> {
        self.shared
            .create_app_password(account, label, hash, limit)
            .await
    }
    async fn delete_app_passwords(&self, account: AccountId) -> Result<u64> {
        self.shared.delete_app_passwords(account).await
    }
    async fn list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>> {
        self.shared.list_app_passwords(account).await
    }
    async fn app_password_by_hash(
        &self,
        account: AccountId,
        hash: &str,
    ) -> Result<Option<AppPassword>> {
        self.shared.app_password_by_hash(account, hash).await
    }
    async fn touch_app_password(&self, id: i64, now: i64) -> Result<()> {
        self.shared.touch_app_password(id, now).await
    }
    async fn delete_app_password(&self, account: AccountId, id: i64) -> Result<bool> {
        self.shared.delete_app_password(account, id).await
    }
    async fn list_sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>> {
        self.shared.list_sieve_scripts(account).await
    }
    async fn get_sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        self.shared.get_sieve_script(account, name).await
    }
    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()> {
        self.shared.put_sieve_script(account, name, content).await
    }
    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        self.shared.delete_sieve_script(account, name).await
    }
    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        self.shared.rename_sieve_script(account, from, to).await
    }
    async fn set_active_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        self.shared.set_active_sieve_script(account, name).await
    }
    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>> {
        self.shared.active_sieve_script(account).await
    }
    async fn sieve_tracked(&self, account: AccountId, now: i64) -> Result<Vec<String>> {
        self.shared.sieve_tracked(account, now).await
    }
    async fn track_sieve_ids(&self, account: AccountId, ids: &[(String, i64)]) -> Result<()> {
        self.shared.track_sieve_ids(account, ids).await
    }
    async fn claim_sieve_reply(
        &self,
        account: AccountId,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.shared
            .claim_sieve_reply(account, id, expires_at, now)
            .await
    }
    async fn spam_counts(&self, models: &[i64], tokens: &[i64]) -> Result<Vec<SpamModelCounts>> {
        self.shared.spam_counts(models, tokens).await
    }
    async fn spam_train(
        &self,
        account: AccountId,
        message: Option<MessageId>,
        spam: bool,
        tokens: &[i64],
    ) -> Result<bool> {
        self.shared.spam_train(account, message, spam, tokens).await
    }
    async fn queue_spam_training(
        &self,
        account: AccountId,
        messages: &[MessageId],
        spam: bool,
    ) -> Result<()> {
        let mut tx = self.shared.begin_write_relaxed().await?;
        self.shared
            .queue_training(&mut tx, account, messages, spam)
            .await?;
        tx.commit().await
    }
    async fn take_spam_training(&self, limit: usize) -> Result<Vec<SpamTrainingRequest>> {
        self.shared.take_spam_training(limit).await
    }
    async fn greylist_entry(&self, triplet: &str) -> Result<Option<GreylistEntry>> {
        self.shared.greylist_entry(triplet).await
    }
    async fn put_greylist_entry(&self, triplet: &str, entry: &GreylistEntry) -> Result<()> {
        self.shared.put_greylist_entry(triplet, entry).await
    }
    async fn prune_greylist(&self, before: i64) -> Result<u64> {
        self.shared.prune_greylist(before).await
    }
    async fn spam_list_entries(&self, scopes: Option<&[String]>) -> Result<Vec<SpamListEntry>> {
        self.shared.spam_list_entries(scopes).await
    }
    async fn spam_list_entries_page(
        &self,
        scope: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<SpamListEntry>> {
        self.shared
            .spam_list_entries_page(scope, after, limit)
            .await
    }
    async fn put_spam_list_entry(&self, entry: &SpamListEntry) -> Result<()> {
        self.shared.put_spam_list_entry(entry).await
    }
    async fn delete_spam_list_entry(&self, scope: &str, entry: &str) -> Result<bool> {
        self.shared.delete_spam_list_entry(scope, entry).await
    }
    async fn note_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        self.shared.note_correspondents(account, addresses).await
    }
    async fn is_correspondent(&self, account: AccountId, address: &str) -> Result<bool> {
        self.shared
            .any_correspondent(account, &[address.to_string()])
            .await
    }
    async fn any_correspondent(&self, account: AccountId, addresses: &[String]) -> Result<bool> {
        self.shared.any_correspondent(account, addresses).await
    }
    async fn spam_reputation(&self, domain: &str) -> Result<(u64, u64)> {
        self.shared.spam_reputation(domain).await
    }
    async fn add_spam_reputation(&self, domain: &str, spam: bool) -> Result<()> {
        self.shared.add_spam_reputation(domain, spam).await
    }
    async fn prune_spam_state(&self, before: i64) -> Result<u64> {
        self.shared.prune_spam_state(before).await
    }
    async fn register_node(&self, node: &NodeInfo) -> Result<()> {
        self.shared.register_node(node).await
    }
    async fn node_seen(&self, id: &str, now: i64) -> Result<()> {
        self.shared.node_seen(id, now).await
    }
    async fn remove_node(&self, id: &str) -> Result<()> {
        self.shared.remove_node(id).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.shared.list_nodes().await
    }
    async fn node_state_get(&self, scope: &str, name: &str) -> Result<Option<NodeStateEntry>> {
        self.shared.node_state_get(scope, name).await
    }
    async fn node_state_list(&self, scope: &str) -> Result<Vec<NodeStateEntry>> {
        self.shared.node_state_list(scope).await
    }
    async fn node_state_put(
        &self,
        scope: &str,
        name: &str,
        value: &[u8],
        expires_at: Option<i64>,
        now: i64,
        only_if_absent: bool,
    ) -> Result<bool> {
        self.shared
            .node_state_put(scope, name, value, expires_at, now, only_if_absent)
            .await
    }
    async fn node_state_delete(&self, scope: &str, name: &str) -> Result<bool> {
        self.shared.node_state_delete(scope, name).await
    }
    async fn node_state_prune(&self, scope: &str, now: i64) -> Result<u64> {
        self.shared.node_state_prune(scope, now).await
    }
    async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl_secs: i64) -> Result<bool> {
        self.shared.try_lease(name, holder, now, ttl_secs).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.shared.release_lease(name, holder).await
    }
    async fn report_auth_failures(
        &self,
        node: &str,
        counts: &[AuthFailureCount],
        now: i64,
    ) -> Result<()> {
        self.shared.report_auth_failures(node, counts, now).await
    }
    async fn auth_failures_elsewhere(
        &self,
        node: &str,
        since: i64,
    ) -> Result<Vec<AuthFailureCount>> {
        self.shared.auth_failures_elsewhere(node, since).await
    }
    async fn prune_tombstones(&self, horizon: std::time::Duration) -> Result<usize> {
        self.shared.prune_tombstones(horizon).await
    }
    async fn backfill_header_text(&self, batch: usize) -> Result<usize> {
        self.shared.backfill_header_text(batch).await
    }
    async fn index_stems(&self, batch: usize) -> Result<usize> {
        if self.shared.dialect == Dialect::Sqlite {
            return Ok(0);
        }
        self.shared.index_stems(batch).await
    }
    async fn stems_pending(&self) -> Result<u64> {
        if self.shared.dialect == Dialect::Sqlite {
            return Ok(0);
        }
        let n: i64 = super::db::query_scalar("SELECT count(*) FROM message_stems_pending")
            .fetch_one(&self.shared.reader)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
    async fn extract_attachment_text(
        &self,
        batch: usize,
        limits: wharf_mime::attachments::Limits,
    ) -> Result<usize> {
        self.shared.extract_attachment_text(batch, limits).await
    }
    async fn mark_for_reindex(&self, account: Option<AccountId>) -> Result<u64> {
        self.shared.mark_for_reindex(account).await
    }

    async fn lock_maildrop(&self, account: AccountId, owner: &str, ttl_secs: i64) -> Result<bool> {
        self.shared.lock_maildrop(account, owner, ttl_secs).await
    }
    async fn unlock_maildrop(&self, account: AccountId, owner: &str) -> Result<()> {
        self.shared.unlock_maildrop(account, owner).await
    }

    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent> {
        self.shared.events.subscribe(account)
    }
    async fn sweep_orphans(&self) -> Result<u64> {
        self.shared.sweep(SWEEP_GRACE).await
    }
}
