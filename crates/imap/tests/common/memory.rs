//! In-memory doubles of the session's backend traits: accounts with passwords (LOGIN and SASL
//! PLAIN), mailboxes, messages with flags/modseqs/tombstones, change events, and a record of
//! how message bodies were read (loaded whole vs opened as a stream) so FETCH streaming can be
//! asserted. No SQLite, no sockets.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use wharf_imap::backend::{
    AuthFailure, Authenticator, Backend, BodyReader, Login, Mailboxes, Messages, Result,
    SaslOutcome, SaslSession,
};
use wharf_store::{
    AccountId, AclChange, AppendOutcome, CopyOutcome, FlagMask, FlagOp, FlagUpdate, Flags, Mailbox,
    MailboxChanges, MailboxEvent, MailboxId, MailboxStatus, MessageContent, MessageEntry,
    MessageId, MetadataLimits, ModSeq, NewMessage, Rights, SharedMailbox, SpecialUse, StoreError,
    TextField, Uid,
};

struct Blob {
    raw: Bytes,
    summary: Bytes,
    search: wharf_mime::SearchText,
    preview: String,
}

struct Mbox {
    mailbox: Mailbox,
    msgs: Vec<MessageEntry>,
    /// Expunged UIDs with the modseq of their removal.
    tombstones: Vec<(Uid, ModSeq)>,
    /// Highest modseq of the tombstones forgotten (as the store's `vanished_floor`).
    floor: ModSeq,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, (AccountId, String)>,
    mailboxes: BTreeMap<MailboxId, Mbox>,
    blobs: HashMap<MessageId, Blob>,
    next_id: i64,
    modseq: ModSeq,
    uid_validity: u32,
    events: HashMap<AccountId, broadcast::Sender<MailboxEvent>>,
    subscriptions: std::collections::BTreeSet<(AccountId, String)>,
    quotas: HashMap<AccountId, u64>,
    admins: std::collections::HashSet<AccountId>,
    /// METADATA entries: (account, mailbox or 0 for the server, lower-cased name) → value.
    metadata: BTreeMap<(AccountId, MailboxId, String), Vec<u8>>,
    /// ACL entries: (mailbox, grantee or 0 for anyone) → rights.
    acl: BTreeMap<(MailboxId, AccountId), Rights>,
    urlauth_keys: BTreeMap<MailboxId, String>,
}

/// How FETCH read message bodies, for the streaming tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reads {
    /// Messages whose raw octets were loaded into memory (`contents(raw)` or `raw`).
    pub loaded: Vec<MessageId>,
    /// Messages opened as a reader (`open_body`).
    pub streamed: Vec<MessageId>,
}

#[derive(Default)]
pub struct Memory {
    state: Mutex<State>,
    reads: Mutex<Reads>,
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl Memory {
    pub fn new() -> Arc<Memory> {
        Arc::new(Memory::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn backend(self: &Arc<Self>) -> Backend {
        Backend {
            auth: self.clone(),
            mailboxes: self.clone(),
            messages: self.clone(),
        }
    }

    /// An account with its INBOX.
    pub fn add_account(&self, address: &str, pass: &str) -> AccountId {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.accounts
            .insert(address.to_ascii_lowercase(), (id, pass.to_string()));
        drop(st);
        // As the store does: the default mailboxes, subscribed.
        for (name, role) in wharf_store::DEFAULT_MAILBOXES {
            if self.create_sync(id, name, *role).is_ok() {
                self.lock().subscriptions.insert((id, name.to_string()));
            }
        }
        id
    }

    pub fn reads(&self) -> Reads {
        self.reads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear_reads(&self) {
        *self.reads.lock().unwrap_or_else(|e| e.into_inner()) = Reads::default();
    }

    pub fn mailbox_names(&self, account: AccountId) -> Vec<String> {
        self.lock()
            .mailboxes
            .values()
            .filter(|m| m.mailbox.account_id == account)
            .map(|m| m.mailbox.name.clone())
            .collect()
    }

    /// Delivers a message to the account's INBOX as SMTP would (another "session").
    pub fn deliver(&self, account: AccountId, raw: &[u8]) -> Uid {
        let inbox = {
            let st = self.lock();
            st.mailboxes
                .values()
                .find(|m| m.mailbox.account_id == account && m.mailbox.name == "INBOX")
                .map(|m| m.mailbox.id)
        };
        let Some(inbox) = inbox else { return 0 };
        self.append_sync(inbox, Bytes::copy_from_slice(raw), Flags::empty(), &[], 0)
            .map(|o| o.uid)
            .unwrap_or(0)
    }

    /// What a session sees between another session's expunge and its announcement: the
    /// message's data is gone while this session's index still lists it.
    pub fn drop_data_unannounced(&self, account: AccountId, mailbox: &str, uid: Uid) {
        let mut st = self.lock();
        let id = st
            .mailboxes
            .values()
            .find(|m| m.mailbox.account_id == account && m.mailbox.name == mailbox)
            .and_then(|m| m.msgs.iter().find(|e| e.uid == uid))
            .map(|e| e.message_id);
        if let Some(id) = id {
            st.blobs.remove(&id);
        }
    }

    /// Sets the account's storage limit in octets (0: none), as `wharf user quota` does.
    pub fn set_quota(&self, account: AccountId, limit: u64) {
        self.lock().quotas.insert(account, limit);
    }

    /// Gives the account the administrator role.
    pub fn set_admin(&self, account: AccountId) {
        self.lock().admins.insert(account);
    }

    /// Forgets every tombstone of the mailbox, as the store's prune past its horizon does.
    pub fn forget_tombstones(&self, account: AccountId, mailbox: &str) {
        let mut st = self.lock();
        if let Some(m) = st
            .mailboxes
            .values_mut()
            .find(|m| m.mailbox.account_id == account && m.mailbox.name == mailbox)
        {
            m.floor = m
                .tombstones
                .iter()
                .map(|t| t.1)
                .max()
                .unwrap_or(0)
                .max(m.floor);
            m.tombstones.clear();
        }
    }

    fn publish(st: &mut State, account: AccountId, ev: MailboxEvent) {
        if let Some(tx) = st.events.get(&account) {
            let _ = tx.send(ev);
        }
    }

    fn changed(st: &mut State, mailbox: MailboxId) {
        let Some(mb) = st.mailboxes.get(&mailbox) else {
            return;
        };
        let (account, modseq) = (mb.mailbox.account_id, mb.mailbox.highest_modseq);
        Self::publish(
            st,
            account,
            MailboxEvent::Changed {
                mailbox_id: mailbox,
                highest_modseq: modseq,
            },
        );
    }

    fn create_sync(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let mut st = self.lock();
        if st
            .mailboxes
            .values()
            .any(|m| m.mailbox.account_id == account && m.mailbox.name == name)
        {
            return Err(StoreError::AlreadyExists(name.to_string()));
        }
        st.next_id += 1;
        st.uid_validity += 1;
        let mailbox = Mailbox {
            id: st.next_id,
            account_id: account,
            name: name.to_string(),
            special_use,
            uid_validity: st.uid_validity,
            uid_next: 1,
            highest_modseq: 0,
        };
        st.mailboxes.insert(
            mailbox.id,
            Mbox {
                mailbox: mailbox.clone(),
                msgs: Vec::new(),
                tombstones: Vec::new(),
                floor: 0,
            },
        );
        Self::publish(&mut st, account, MailboxEvent::MailboxesChanged);
        Ok(mailbox)
    }

    fn append_sync(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome> {
        let analysis = wharf_mime::analyze(&raw);
        let mut st = self.lock();
        Self::check_quota(&st, mailbox, raw.len() as u64)?;
        st.next_id += 1;
        st.modseq += 1;
        let (message_id, modseq) = (st.next_id, st.modseq);
        let size = raw.len() as u64;
        st.blobs.insert(
            message_id,
            Blob {
                raw,
                summary: Bytes::from(analysis.summary),
                search: analysis.search,
                preview: analysis.preview,
            },
        );
        let mb = st
            .mailboxes
            .get_mut(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let uid = mb.mailbox.uid_next;
        mb.mailbox.uid_next += 1;
        mb.mailbox.highest_modseq = modseq;
        mb.msgs.push(MessageEntry {
            uid,
            message_id,
            flags: flags.union(Flags::RECENT),
            keywords: keywords.to_vec(),
            modseq,
            size,
            internal_date,
            saved_at: chrono_now(),
        });
        let uid_validity = mb.mailbox.uid_validity;
        Self::changed(&mut st, mailbox);
        Ok(AppendOutcome {
            mailbox_id: mailbox,
            uid_validity,
            uid,
            modseq,
            message_id,
        })
    }

    /// As the store does: adding `more` octets to the account of `mailbox` must stay within
    /// its limit.
    fn check_quota(st: &State, mailbox: MailboxId, more: u64) -> Result<()> {
        let Some(account) = st.mailboxes.get(&mailbox).map(|m| m.mailbox.account_id) else {
            return Ok(());
        };
        let limit = st.quotas.get(&account).copied().unwrap_or(0);
        let used: u64 = st
            .mailboxes
            .values()
            .filter(|m| m.mailbox.account_id == account)
            .flat_map(|m| m.msgs.iter().map(|e| e.size))
            .sum();
        if limit > 0 && used + more > limit {
            return Err(StoreError::OverQuota);
        }
        Ok(())
    }

    fn copy_sync(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        remove: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome> {
        let mut st = self.lock();
        let picked: Vec<MessageEntry> = {
            let s = st
                .mailboxes
                .get(&src)
                .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
            s.msgs
                .iter()
                .filter(|m| uids.contains(&m.uid))
                .cloned()
                .collect()
        };
        if !st.mailboxes.contains_key(&dst) {
            return Err(StoreError::NotFound("mailbox".into()));
        }
        let owner = |id: MailboxId| st.mailboxes.get(&id).map(|m| m.mailbox.account_id);
        if !remove || owner(src) != owner(dst) {
            Self::check_quota(&st, dst, picked.iter().map(|m| m.size).sum())?;
        }
        let mut mapping = Vec::new();
        for m in &picked {
            st.modseq += 1;
            let modseq = st.modseq;
            let Some(d) = st.mailboxes.get_mut(&dst) else {
                break;
            };
            let uid = d.mailbox.uid_next;
            d.mailbox.uid_next += 1;
            d.mailbox.highest_modseq = modseq;
            d.msgs.push(MessageEntry {
                uid,
                modseq,
                flags: Flags(m.flags.0 & keep.flags.0).union(Flags::RECENT),
                keywords: if keep.keywords {
                    m.keywords.clone()
                } else {
                    Vec::new()
                },
                saved_at: chrono_now(),
                ..m.clone()
            });
            mapping.push((m.uid, uid));
        }
        let dst_uid_validity = st
            .mailboxes
            .get(&dst)
            .map(|d| d.mailbox.uid_validity)
            .unwrap_or(0);
        Self::changed(&mut st, dst);
        if remove {
            st.modseq += 1;
            let modseq = st.modseq;
            if let Some(s) = st.mailboxes.get_mut(&src) {
                s.msgs.retain(|m| !uids.contains(&m.uid));
                for m in &picked {
                    s.tombstones.push((m.uid, modseq));
                }
                s.mailbox.highest_modseq = modseq;
            }
            Self::changed(&mut st, src);
        }
        Ok(CopyOutcome {
            dst_uid_validity,
            mapping,
        })
    }
}

struct PlainExchange {
    mem: Arc<Memory>,
    /// SASL LOGIN: the user name once given (`None` for PLAIN).
    login_user: Option<Option<String>>,
}

#[async_trait]
impl SaslSession for PlainExchange {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        if let Some(user) = self.login_user.as_mut() {
            return match user.take() {
                None if client.is_empty() => SaslOutcome::Challenge(b"Username:".to_vec()),
                None => {
                    *user = Some(String::from_utf8_lossy(client).into_owned());
                    SaslOutcome::Challenge(b"Password:".to_vec())
                }
                Some(u) => match self.mem.check(&u, &String::from_utf8_lossy(client)) {
                    Ok(login) => SaslOutcome::Success {
                        login,
                        server_final: None,
                    },
                    Err(e) => SaslOutcome::Failure(e),
                },
            };
        }
        if client.is_empty() {
            return SaslOutcome::Challenge(Vec::new());
        }
        let parts: Vec<&[u8]> = client.split(|&b| b == 0).collect();
        if parts.len() != 3 {
            return SaslOutcome::Failure(AuthFailure::Malformed("PLAIN needs 3 fields".into()));
        }
        let user = String::from_utf8_lossy(parts[1]).into_owned();
        let pass = String::from_utf8_lossy(parts[2]).into_owned();
        match self.mem.check(&user, &pass) {
            Ok(login) => SaslOutcome::Success {
                login,
                server_final: None,
            },
            Err(e) => SaslOutcome::Failure(e),
        }
    }
}

impl Memory {
    fn check(&self, user: &str, pass: &str) -> std::result::Result<Login, AuthFailure> {
        let st = self.lock();
        match st.accounts.get(&user.to_ascii_lowercase()) {
            Some((id, p)) if p == pass => Ok(Login {
                account_id: *id,
                address: user.to_ascii_lowercase(),
            }),
            _ => Err(AuthFailure::InvalidCredentials),
        }
    }
}

#[async_trait]
impl Authenticator for Memory {
    async fn authenticate(
        &self,
        user: &str,
        pass: &str,
        _ip: IpAddr,
    ) -> std::result::Result<Login, AuthFailure> {
        self.check(user, pass)
    }

    fn mechanisms(&self) -> Vec<&'static str> {
        vec!["PLAIN", "LOGIN"]
    }

    fn start_sasl(&self, name: &str, _ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        // The exchange needs an owner of the accounts; the doubles are always behind an Arc.
        let login_user = if name.eq_ignore_ascii_case("LOGIN") {
            Some(None)
        } else if name.eq_ignore_ascii_case("PLAIN") {
            None
        } else {
            return None;
        };
        let st = self.lock();
        let accounts = st.accounts.clone();
        drop(st);
        let mem = Memory::default();
        mem.lock().accounts = accounts;
        Some(Box::new(PlainExchange {
            mem: Arc::new(mem),
            login_user,
        }))
    }
}

#[async_trait]
impl Mailboxes for Memory {
    async fn list(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        let mut v: Vec<Mailbox> = self
            .lock()
            .mailboxes
            .values()
            .filter(|m| m.mailbox.account_id == account)
            .map(|m| m.mailbox.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn get(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        Ok(self
            .lock()
            .mailboxes
            .values()
            .find(|m| {
                m.mailbox.account_id == account
                    && (m.mailbox.name == name
                        || (name.eq_ignore_ascii_case("INBOX") && m.mailbox.name == "INBOX"))
            })
            .map(|m| m.mailbox.clone()))
    }

    async fn get_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        Ok(self.lock().mailboxes.get(&id).map(|m| m.mailbox.clone()))
    }

    async fn create(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        self.create_sync(account, name, special_use)
    }

    async fn delete(&self, account: AccountId, id: MailboxId) -> Result<()> {
        let mut st = self.lock();
        match st.mailboxes.get(&id) {
            Some(m) if m.mailbox.account_id == account => {}
            _ => return Err(StoreError::NotFound("mailbox".into())),
        }
        st.mailboxes.remove(&id);
        // As the store's cascade: a mailbox's entries go with it.
        st.metadata.retain(|(_, m, _), _| *m != id);
        Self::publish(&mut st, account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    async fn rename(&self, account: AccountId, id: MailboxId, new_name: &str) -> Result<()> {
        let mut st = self.lock();
        let old = match st.mailboxes.get(&id) {
            Some(m) if m.mailbox.account_id == account => m.mailbox.name.clone(),
            _ => return Err(StoreError::NotFound("mailbox".into())),
        };
        let prefix = format!("{old}/");
        let mut renamed = Vec::new();
        for m in st.mailboxes.values_mut() {
            if m.mailbox.account_id != account {
                continue;
            }
            let to = if m.mailbox.id == id {
                new_name.to_string()
            } else if let Some(rest) = m.mailbox.name.strip_prefix(&prefix) {
                format!("{new_name}/{rest}")
            } else {
                continue;
            };
            renamed.push((std::mem::replace(&mut m.mailbox.name, to.clone()), to));
        }
        // As the store does: subscriptions follow.
        let carried: Vec<String> = renamed
            .into_iter()
            .filter(|(from, _)| st.subscriptions.remove(&(account, from.clone())))
            .map(|(_, to)| to)
            .collect();
        for to in carried {
            st.subscriptions.insert((account, to));
        }
        Self::publish(&mut st, account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, on: bool) -> Result<()> {
        let mut st = self.lock();
        if on {
            st.subscriptions.insert((account, name.to_string()));
        } else {
            st.subscriptions.remove(&(account, name.to_string()));
        }
        Self::publish(&mut st, account, MailboxEvent::MailboxesChanged);
        Ok(())
    }

    async fn quota(&self, account: AccountId) -> Result<(u64, u64)> {
        let st = self.lock();
        let used = st
            .mailboxes
            .values()
            .filter(|m| m.mailbox.account_id == account)
            .flat_map(|m| m.msgs.iter().map(|e| e.size))
            .sum();
        Ok((used, st.quotas.get(&account).copied().unwrap_or(0)))
    }

    async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let key = mailbox.unwrap_or(0);
        Ok(self
            .lock()
            .metadata
            .iter()
            .filter(|((a, m, _), _)| *a == account && *m == key)
            .map(|((_, _, n), v)| (n.clone(), v.clone()))
            .collect())
    }

    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()> {
        let mut st = self.lock();
        if let Some(id) = mailbox
            && st
                .mailboxes
                .get(&id)
                .is_none_or(|m| m.mailbox.account_id != account)
        {
            return Err(StoreError::NotFound("mailbox".into()));
        }
        let key = mailbox.unwrap_or(0);
        // All or none, as the store's transaction: work on a copy.
        let mut next = st.metadata.clone();
        for (name, value) in entries {
            if value
                .as_ref()
                .is_some_and(|v| v.len() as u64 > limits.max_value)
            {
                return Err(StoreError::Limit("value".into()));
            }
            let k = (account, key, name.to_lowercase());
            match value {
                Some(v) => next.insert(k, v.clone()),
                None => next.remove(&k),
            };
        }
        if entries.iter().any(|(_, v)| v.is_some()) {
            let mine = next.iter().filter(|((a, _, _), _)| *a == account);
            let here = mine.clone().filter(|((_, m, _), _)| *m == key).count() as u64;
            let total = mine.clone().count() as u64;
            let bytes: u64 = mine.map(|((_, _, n), v)| (n.len() + v.len()) as u64).sum();
            if here > limits.max_entries_per_mailbox
                || total > limits.max_entries
                || bytes > limits.max_bytes
            {
                return Err(StoreError::Limit("metadata".into()));
            }
        }
        st.metadata = next;
        let mut names: Vec<String> = entries.iter().map(|(n, _)| n.to_lowercase()).collect();
        names.sort();
        names.dedup();
        Self::publish(
            &mut st,
            account,
            MailboxEvent::MetadataChanged {
                mailbox_id: mailbox,
                entries: names,
            },
        );
        Ok(())
    }

    async fn set_quota(&self, account: AccountId, limit: u64) -> Result<()> {
        self.lock().quotas.insert(account, limit);
        Ok(())
    }

    async fn is_admin(&self, account: AccountId) -> Result<bool> {
        Ok(self.lock().admins.contains(&account))
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<AccountId>> {
        Ok(self
            .lock()
            .accounts
            .get(&address.to_ascii_lowercase())
            .map(|a| a.0))
    }

    async fn account_address(&self, account: AccountId) -> Result<Option<String>> {
        Ok(self
            .lock()
            .accounts
            .iter()
            .find(|(_, (id, _))| *id == account)
            .map(|(addr, _)| addr.clone()))
    }

    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(Option<AccountId>, Rights)>> {
        Ok(self
            .lock()
            .acl
            .iter()
            .filter(|((m, _), _)| *m == mailbox)
            .map(|((_, g), r)| ((*g != 0).then_some(*g), *r))
            .collect())
    }

    async fn set_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()> {
        let mut st = self.lock();
        if st
            .mailboxes
            .get(&mailbox)
            .is_none_or(|m| m.mailbox.account_id != owner)
        {
            return Err(StoreError::NotFound("mailbox".into()));
        }
        if grantee == Some(owner) {
            return Err(StoreError::Invalid("owner".into()));
        }
        let key = (mailbox, grantee.unwrap_or(0));
        let rights = change.apply(st.acl.get(&key).copied().unwrap_or_default());
        if rights.is_empty() {
            st.acl.remove(&key);
        } else {
            st.acl.insert(key, rights);
        }
        Self::publish(&mut st, owner, MailboxEvent::MailboxesChanged);
        if let Some(g) = grantee {
            Self::publish(&mut st, g, MailboxEvent::MailboxesChanged);
        }
        Ok(())
    }

    async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights> {
        let st = self.lock();
        match st.mailboxes.get(&mailbox) {
            None => Ok(Rights::NONE),
            Some(m) if m.mailbox.account_id == account => Ok(Rights::ALL),
            Some(_) => Ok(st
                .acl
                .iter()
                .filter(|((m, g), _)| *m == mailbox && (*g == 0 || *g == account))
                .fold(Rights::NONE, |acc, (_, r)| acc.union(*r))),
        }
    }

    async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>> {
        let mut st = self.lock();
        if !st.mailboxes.contains_key(&mailbox) {
            return Ok(None);
        }
        if let Some(k) = st.urlauth_keys.get(&mailbox) {
            return Ok(Some(k.clone()));
        }
        if !create {
            return Ok(None);
        }
        st.next_id += 1;
        let key = format!(
            "{:064x}",
            u128::from(st.next_id as u64) * 0x9e37_79b9_7f4a_7c15
        );
        st.urlauth_keys.insert(mailbox, key.clone());
        Ok(Some(key))
    }

    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()> {
        let mut st = self.lock();
        let doomed: Vec<MailboxId> = st
            .mailboxes
            .values()
            .filter(|m| {
                m.mailbox.account_id == account && mailbox.is_none_or(|id| id == m.mailbox.id)
            })
            .map(|m| m.mailbox.id)
            .collect();
        for id in doomed {
            st.urlauth_keys.remove(&id);
        }
        Ok(())
    }

    async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>> {
        let st = self.lock();
        let mut out: Vec<SharedMailbox> = Vec::new();
        for m in st.mailboxes.values() {
            let mb = &m.mailbox;
            if mb.account_id == account {
                continue;
            }
            let rights = st
                .acl
                .iter()
                .filter(|((id, g), _)| *id == mb.id && (*g == 0 || *g == account))
                .fold(Rights::NONE, |acc, (_, r)| acc.union(*r));
            if rights.is_empty() {
                continue;
            }
            let Some(owner) = st
                .accounts
                .iter()
                .find(|(_, (id, _))| *id == mb.account_id)
                .map(|(addr, _)| addr.clone())
            else {
                continue;
            };
            out.push(SharedMailbox {
                mailbox: mb.clone(),
                owner,
                rights,
            });
        }
        out.sort_by(|a, b| (&a.owner, &a.mailbox.name).cmp(&(&b.owner, &b.mailbox.name)));
        Ok(out)
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        let st = self.lock();
        Ok(st
            .subscriptions
            .iter()
            .filter(|(a, _)| *a == account)
            .map(|(_, n)| n.clone())
            .collect())
    }

    async fn status(&self, id: MailboxId) -> Result<MailboxStatus> {
        let st = self.lock();
        let m = st
            .mailboxes
            .get(&id)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let count = |f: Flags| m.msgs.iter().filter(|e| e.flags.contains(f)).count() as u32;
        Ok(MailboxStatus {
            messages: m.msgs.len() as u32,
            unseen: m.msgs.len() as u32 - count(Flags::SEEN),
            recent: count(Flags::RECENT),
            deleted: count(Flags::DELETED),
            size: m.msgs.iter().map(|e| e.size).sum(),
            deleted_size: m
                .msgs
                .iter()
                .filter(|e| e.flags.contains(Flags::DELETED))
                .map(|e| e.size)
                .sum(),
            uid_next: m.mailbox.uid_next,
            uid_validity: m.mailbox.uid_validity,
            highest_modseq: m.mailbox.highest_modseq,
        })
    }
}

#[async_trait]
impl Messages for Memory {
    async fn index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        self.lock()
            .mailboxes
            .get(&mailbox)
            .map(|m| m.msgs.clone())
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))
    }

    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        let st = self.lock();
        let m = st
            .mailboxes
            .get(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        Ok(MailboxChanges {
            changed: m
                .msgs
                .iter()
                .filter(|e| e.modseq > since)
                .cloned()
                .collect(),
            expunged: m
                .tombstones
                .iter()
                .filter(|t| t.1 > since)
                .map(|t| t.0)
                .collect(),
            expunged_complete: since >= m.floor,
            highest_modseq: m.mailbox.highest_modseq,
            uid_next: m.mailbox.uid_next,
        })
    }

    async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        let mut st = self.lock();
        let m = st
            .mailboxes
            .get_mut(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let mut out = Vec::new();
        for e in &mut m.msgs {
            if e.flags.contains(Flags::RECENT) {
                e.flags = e.flags.difference(Flags::RECENT);
                out.push(e.uid);
            }
        }
        Ok(out)
    }

    async fn contents(
        &self,
        messages: &[MessageId],
        summary: bool,
        raw: bool,
    ) -> Result<Vec<Result<MessageContent>>> {
        if raw {
            self.reads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .loaded
                .extend_from_slice(messages);
        }
        let st = self.lock();
        Ok(messages
            .iter()
            .map(|id| match st.blobs.get(id) {
                Some(b) => Ok(MessageContent {
                    summary: summary.then(|| b.summary.clone()),
                    raw: raw.then(|| b.raw.clone()),
                    preview: summary.then(|| b.preview.clone()),
                    email_id: summary.then(|| format!("E{id}-mem")),
                }),
                None => Err(StoreError::NotFound("message".into())),
            })
            .collect())
    }

    async fn raw(&self, message: MessageId) -> Result<Bytes> {
        self.reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .loaded
            .push(message);
        self.lock()
            .blobs
            .get(&message)
            .map(|b| b.raw.clone())
            .ok_or_else(|| StoreError::NotFound("message".into()))
    }

    async fn open_body(&self, message: MessageId) -> Result<BodyReader> {
        self.reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .streamed
            .push(message);
        let raw = self
            .lock()
            .blobs
            .get(&message)
            .map(|b| b.raw.clone())
            .ok_or_else(|| StoreError::NotFound("message".into()))?;
        Ok(BodyReader {
            len: raw.len() as u64,
            reader: Box::new(std::io::Cursor::new(raw)),
        })
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
        let mut st = self.lock();
        // One STORE, one modseq, as the store does.
        let modseq = st.modseq + 1;
        let m = st
            .mailboxes
            .get_mut(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let mut out = Vec::new();
        let mut modified = Vec::new();
        for e in m.msgs.iter_mut().filter(|e| uids.contains(&e.uid)) {
            if unchanged_since.is_some_and(|u| e.modseq > u) {
                modified.push(e.uid);
                continue;
            }
            let recent = e.flags.contains(Flags::RECENT);
            let (nf, mut nk) = match op {
                FlagOp::Add => (e.flags.union(flags), e.keywords.clone()),
                FlagOp::Remove => (e.flags.difference(flags), e.keywords.clone()),
                FlagOp::Replace => (flags, Vec::new()),
                FlagOp::ReplaceWithin(mask) => {
                    let within = mask.flags.difference(Flags::RECENT);
                    let kw = if mask.keywords {
                        Vec::new()
                    } else {
                        e.keywords.clone()
                    };
                    (
                        e.flags.difference(within).union(Flags(flags.0 & within.0)),
                        kw,
                    )
                }
            };
            match op {
                FlagOp::ReplaceWithin(mask) if !mask.keywords => {}
                FlagOp::Add | FlagOp::Replace | FlagOp::ReplaceWithin(_) => {
                    for k in keywords {
                        if !nk.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                            nk.push(k.clone());
                        }
                    }
                }
                FlagOp::Remove => {
                    nk.retain(|x| !keywords.iter().any(|k| k.eq_ignore_ascii_case(x)))
                }
            }
            let nf = if recent {
                nf.union(Flags::RECENT)
            } else {
                nf.difference(Flags::RECENT)
            };
            if nf != e.flags || nk != e.keywords {
                e.flags = nf;
                e.keywords = nk;
                e.modseq = modseq;
                out.push(FlagUpdate {
                    uid: e.uid,
                    flags: e.flags,
                    keywords: e.keywords.clone(),
                    modseq: e.modseq,
                });
            }
        }
        if !out.is_empty() {
            m.mailbox.highest_modseq = m.mailbox.highest_modseq.max(modseq);
            st.modseq = modseq;
            Self::changed(&mut st, mailbox);
        }
        Ok((out, modified))
    }

    async fn copy(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.copy_sync(src, uids, dst, false, FlagMask::ALL)
    }

    async fn move_to(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.copy_sync(src, uids, dst, true, FlagMask::ALL)
    }

    async fn transfer(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome> {
        self.copy_sync(src, uids, dst, is_move, keep)
    }

    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let mut st = self.lock();
        st.modseq += 1;
        let modseq = st.modseq;
        let m = st
            .mailboxes
            .get_mut(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let gone: Vec<Uid> = m
            .msgs
            .iter()
            .filter(|e| e.flags.contains(Flags::DELETED))
            .filter(|e| uids.is_none_or(|u| u.contains(&e.uid)))
            .map(|e| e.uid)
            .collect();
        m.msgs.retain(|e| !gone.contains(&e.uid));
        m.tombstones.extend(gone.iter().map(|&u| (u, modseq)));
        if !gone.is_empty() {
            m.mailbox.highest_modseq = modseq;
        }
        Self::changed(&mut st, mailbox);
        Ok(gone)
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome> {
        self.append_sync(mailbox, raw, flags, keywords, internal_date)
    }

    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>> {
        {
            // All or none, as the store: the mailbox and the quota for the sum first.
            let st = self.lock();
            if !st.mailboxes.contains_key(&mailbox) {
                return Err(StoreError::NotFound("mailbox".into()));
            }
            Self::check_quota(
                &st,
                mailbox,
                messages.iter().map(|m| m.raw.len() as u64).sum(),
            )?;
        }
        messages
            .into_iter()
            .map(|m| self.append_sync(mailbox, m.raw, m.flags, &m.keywords, m.internal_date))
            .collect()
    }

    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        let needle = fold(needle);
        let st = self.lock();
        let m = st
            .mailboxes
            .get(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        Ok(m.msgs
            .iter()
            .filter(|e| {
                let Some(b) = st.blobs.get(&e.message_id) else {
                    return false;
                };
                let s = &b.search;
                let hay: Vec<&String> = match field {
                    TextField::Text => vec![&s.subject, &s.from, &s.to, &s.cc, &s.bcc, &s.body],
                    TextField::Body => vec![&s.body],
                    TextField::Subject => vec![&s.subject],
                    TextField::From => vec![&s.from],
                    TextField::To => vec![&s.to],
                    TextField::Cc => vec![&s.cc],
                    TextField::Bcc => vec![&s.bcc],
                };
                hay.iter().any(|h| fold(h).contains(&needle))
            })
            .map(|e| e.uid)
            .collect())
    }

    async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>> {
        let Some(mut q) = wharf_store::words::WordQuery::new(needle) else {
            return Ok(Vec::new());
        };
        let st = self.lock();
        let m = st
            .mailboxes
            .get(&mailbox)
            .ok_or_else(|| StoreError::NotFound("mailbox".into()))?;
        let mut out = Vec::new();
        for e in &m.msgs {
            let Some(b) = st.blobs.get(&e.message_id) else {
                continue;
            };
            let s = &b.search;
            let fields: Vec<(&String, f64)> = match field {
                TextField::Text => vec![
                    (&s.subject, 3.0),
                    (&s.from, 2.0),
                    (&s.to, 2.0),
                    (&s.cc, 2.0),
                    (&s.bcc, 2.0),
                    (&s.headers, 1.0),
                    (&s.body, 1.0),
                ],
                TextField::Body => vec![(&s.body, 1.0)],
                TextField::Subject => vec![(&s.subject, 3.0)],
                TextField::From => vec![(&s.from, 2.0)],
                TextField::To => vec![(&s.to, 2.0)],
                TextField::Cc => vec![(&s.cc, 2.0)],
                TextField::Bcc => vec![(&s.bcc, 2.0)],
            };
            let folded: Vec<(String, f64)> = fields
                .into_iter()
                .map(|(t, w)| (wharf_store::words::fold(t), w))
                .collect();
            let refs: Vec<(&str, f64)> = folded.iter().map(|(t, w)| (t.as_str(), *w)).collect();
            if let Some(score) = q.score(&refs) {
                out.push((e.uid, score));
            }
        }
        Ok(out)
    }

    fn events(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent> {
        self.lock()
            .events
            .entry(account)
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }
}

/// Unix seconds now (the save date of APPEND, COPY and MOVE).
fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
