//! In-memory doubles of the session's two ports, and a transcript driver, so command behaviour is
//! tested without a database. End-to-end tests use the real store and directory instead.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use wharf_pop3::backend::*;
use wharf_pop3::transfer::transfer_size;
use wharf_pop3::{ConnInfo, Input, Next, Pop3Config, Session, Shared, Step};
use wharf_store::{AccountId, MailboxId, MessageId, ModSeq, StoreError, Uid};

pub const PASSWORD: &str = "correct horse battery";

#[derive(Default)]
pub struct MemState {
    /// address -> (account id, disabled)
    pub accounts: HashMap<String, (AccountId, bool)>,
    /// account -> INBOX: uid -> (message id, internal_date, seen)
    pub inbox: HashMap<AccountId, BTreeMap<Uid, (MessageId, i64, bool)>>,
    pub blobs: HashMap<MessageId, Bytes>,
    pub next_uid: Uid,
    pub next_msg: MessageId,
    pub modseq: ModSeq,
    /// (uid, modseq) expunged
    pub tombstones: Vec<(Uid, ModSeq)>,
    pub locks: HashMap<AccountId, String>,
    pub expire: HashMap<AccountId, i64>,
    /// Failure injection.
    pub fail_snapshot: bool,
    pub fail_load: bool,
    pub fail_expunge: bool,
    pub fail_lock: bool,
    pub auth_result: Option<AuthFailure>,
    pub expunge_calls: Vec<Vec<Uid>>,
    pub seen_calls: Vec<Vec<Uid>>,
}

#[derive(Clone, Default)]
pub struct Mem(pub Arc<Mutex<MemState>>);

impl Mem {
    pub fn new() -> Mem {
        let m = Mem::default();
        {
            let mut s = m.0.lock().unwrap();
            s.next_uid = 1;
            s.next_msg = 1;
            s.modseq = 1;
            s.accounts.insert("alice@example.org".into(), (1, false));
            s.accounts.insert("bob@example.org".into(), (2, false));
            s.accounts.insert("off@example.org".into(), (3, true));
        }
        m
    }

    pub fn add(&self, account: AccountId, raw: &[u8], internal_date: i64) -> Uid {
        let mut s = self.0.lock().unwrap();
        let uid = s.next_uid;
        s.next_uid += 1;
        let id = s.next_msg;
        s.next_msg += 1;
        s.modseq += 1;
        s.blobs.insert(id, Bytes::copy_from_slice(raw));
        s.inbox
            .entry(account)
            .or_default()
            .insert(uid, (id, internal_date, false));
        uid
    }

    /// What IMAP would do: expunge behind the POP3 session's back.
    pub fn expunge_elsewhere(&self, account: AccountId, uid: Uid) {
        let mut s = self.0.lock().unwrap();
        s.modseq += 1;
        let m = s.modseq;
        if let Some(b) = s.inbox.get_mut(&account) {
            b.remove(&uid);
        }
        s.tombstones.push((uid, m));
    }

    pub fn uids(&self, account: AccountId) -> Vec<Uid> {
        let s = self.0.lock().unwrap();
        s.inbox
            .get(&account)
            .map(|b| b.keys().copied().collect())
            .unwrap_or_default()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut MemState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

fn login_for(s: &MemState, user: &str) -> Result<Login, AuthFailure> {
    match s.accounts.get(user) {
        Some((_, true)) => Err(AuthFailure::Disabled),
        Some((id, false)) => Ok(Login {
            account_id: *id,
            address: user.to_string(),
        }),
        None => Err(AuthFailure::InvalidCredentials),
    }
}

#[async_trait]
impl Authenticator for Mem {
    async fn authenticate(
        &self,
        user: &str,
        pass: &str,
        _ip: IpAddr,
    ) -> Result<Login, AuthFailure> {
        let s = self.0.lock().unwrap();
        if let Some(f) = s.auth_result.clone() {
            return Err(f);
        }
        if pass != PASSWORD {
            return Err(AuthFailure::InvalidCredentials);
        }
        login_for(&s, user)
    }
    fn mechanisms(&self) -> Vec<&'static str> {
        vec!["PLAIN", "X-FINAL"]
    }
    fn start_sasl(&self, name: &str, _ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Box::new(MemSasl {
                mem: self.clone(),
                final_step: false,
                sent_final: false,
            })),
            // Like SCRAM: success carries a server-final message.
            "X-FINAL" => Some(Box::new(MemSasl {
                mem: self.clone(),
                final_step: true,
                sent_final: false,
            })),
            _ => None,
        }
    }
}

/// PLAIN (RFC 4616) over the in-memory accounts; `final_step` mimics SCRAM's server-final.
pub struct MemSasl {
    mem: Mem,
    final_step: bool,
    sent_final: bool,
}

#[async_trait]
impl SaslSession for MemSasl {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        let _ = self.sent_final;
        if client.is_empty() {
            return SaslOutcome::Challenge(Vec::new());
        }
        let parts: Vec<&[u8]> = client.split(|&b| b == 0).collect();
        if parts.len() != 3 {
            return SaslOutcome::Failure(AuthFailure::Malformed("PLAIN needs 3 fields".into()));
        }
        let user = String::from_utf8_lossy(parts[1]).to_string();
        let pass = String::from_utf8_lossy(parts[2]).to_string();
        let s = self.mem.0.lock().unwrap();
        if pass != PASSWORD {
            return SaslOutcome::Failure(AuthFailure::InvalidCredentials);
        }
        match login_for(&s, &user) {
            Ok(login) => SaslOutcome::Success {
                login,
                server_final: self.final_step.then(|| b"v=final".to_vec()),
            },
            Err(f) => SaslOutcome::Failure(f),
        }
    }
}

#[async_trait]
impl Maildrop for Mem {
    async fn lock(&self, account: AccountId, owner: &str, _ttl: i64) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_lock {
            return Err(StoreError::Backend("lock table unavailable".into()));
        }
        match s.locks.get(&account) {
            Some(o) if o != owner => Ok(false),
            _ => {
                s.locks.insert(account, owner.to_string());
                Ok(true)
            }
        }
    }
    async fn unlock(&self, account: AccountId, owner: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.locks.get(&account).map(String::as_str) == Some(owner) {
            s.locks.remove(&account);
        }
        Ok(())
    }
    async fn snapshot(&self, account: AccountId) -> Result<Snapshot, StoreError> {
        let s = self.0.lock().unwrap();
        if s.fail_snapshot {
            return Err(StoreError::Backend("database is locked".into()));
        }
        let entries = s
            .inbox
            .get(&account)
            .map(|b| {
                b.iter()
                    .map(|(uid, (id, date, seen))| DropEntry {
                        uid: *uid,
                        message_id: *id,
                        size: transfer_size(&s.blobs[id]),
                        stored_size: s.blobs[id].len() as u64,
                        internal_date: *date,
                        seen: *seen,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Snapshot {
            mailbox_id: account * 100,
            uid_validity: 1_700_000_000,
            modseq: s.modseq,
            entries,
            expire_days: s.expire.get(&account).copied(),
        })
    }
    async fn open(&self, message: MessageId) -> Result<Option<MessageBody>, StoreError> {
        let s = self.0.lock().unwrap();
        if s.fail_load {
            return Err(StoreError::Backend("blob read failed".into()));
        }
        Ok(s.blobs.get(&message).cloned().map(|raw| MessageBody {
            size: raw.len() as u64,
            reader: Box::new(std::io::Cursor::new(raw)),
        }))
    }
    async fn vanished_since(
        &self,
        _mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Vanished, StoreError> {
        let s = self.0.lock().unwrap();
        Ok(Vanished {
            uids: s
                .tombstones
                .iter()
                .filter(|(_, m)| *m > since)
                .map(|(u, _)| *u)
                .collect(),
            modseq: s.modseq,
        })
    }
    async fn mark_seen(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.seen_calls.push(uids.to_vec());
        if let Some(b) = s.inbox.get_mut(&(mailbox / 100)) {
            for u in uids {
                if let Some(e) = b.get_mut(u) {
                    e.2 = true;
                }
            }
        }
        Ok(())
    }
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_expunge {
            return Err(StoreError::Backend("disk full".into()));
        }
        s.expunge_calls.push(uids.to_vec());
        let mut out = Vec::new();
        s.modseq += 1;
        if let Some(b) = s.inbox.get_mut(&(mailbox / 100)) {
            for u in uids {
                if b.remove(u).is_some() {
                    out.push(*u);
                }
            }
        }
        Ok(out)
    }
}

/// Drives one session with byte strings, as the connection loop would.
pub struct Transcript {
    pub session: Session,
    pub mem: Mem,
    pub closed: bool,
    pub tls_requested: bool,
}

pub fn config() -> Pop3Config {
    Pop3Config {
        allow_plaintext_auth_on_loopback: true,
        ..Pop3Config::default()
    }
}

pub fn loopback() -> ConnInfo {
    ConnInfo {
        peer: "127.0.0.1".parse().unwrap(),
        tls: false,
        starttls_available: false,
    }
}

impl Transcript {
    pub fn new(mem: &Mem) -> Transcript {
        Self::with(mem, config(), loopback(), Arc::new(Shared::new()))
    }

    pub fn with(mem: &Mem, cfg: Pop3Config, info: ConnInfo, shared: Arc<Shared>) -> Transcript {
        let session = Session::new(
            Arc::new(cfg),
            "pop.example.org".into(),
            info,
            Arc::new(mem.clone()),
            Arc::new(mem.clone()),
            shared,
        );
        Transcript {
            session,
            mem: mem.clone(),
            closed: false,
            tls_requested: false,
        }
    }

    pub async fn greeting(&self) -> String {
        let step = self.session.greeting();
        assert_eq!(step.next, Next::ReadLine);
        String::from_utf8(step.output.collect().await.unwrap()).unwrap()
    }

    /// Sends one line (CRLF added) and returns the whole answer.
    pub async fn send(&mut self, line: &str) -> String {
        String::from_utf8_lossy(&self.send_bytes(format!("{line}\r\n").as_bytes()).await)
            .to_string()
    }

    pub async fn send_bytes(&mut self, line: &[u8]) -> Vec<u8> {
        self.input(Input::Line(line)).await
    }

    pub async fn too_long(&mut self) -> String {
        String::from_utf8(self.input(Input::LineTooLong).await).unwrap()
    }

    /// Hands one input to the session as the loop would; returns what it wrote, messages
    /// streamed to the end.
    pub async fn input(&mut self, input: Input<'_>) -> Vec<u8> {
        assert!(!self.closed, "session already closed");
        let Step { output, next } = self.session.handle(input).await;
        match next {
            Next::ReadLine => {}
            Next::Close => self.closed = true,
            Next::StartTls => self.tls_requested = true,
        }
        output.collect().await.unwrap()
    }

    pub async fn login(&mut self, user: &str) {
        assert_eq!(
            self.send(&format!("USER {user}")).await,
            "+OK send PASS\r\n"
        );
        let r = self.send(&format!("PASS {PASSWORD}")).await;
        assert!(r.starts_with("+OK "), "login failed: {r}");
    }
}

/// A small sample maildrop for alice: three messages, one with bare LFs and a dot line.
pub fn sample() -> (Mem, Vec<Vec<u8>>) {
    let mem = Mem::new();
    let msgs = vec![
        b"Subject: one\r\n\r\nbody one\r\n".to_vec(),
        b"Subject: two\n\n.dot line\nline 2\nline 3\n".to_vec(),
        b"Subject: three\r\nX: y\r\n\r\na\r\nb\r\nc\r\nd".to_vec(),
    ];
    for m in &msgs {
        mem.add(1, m, 1_000_000);
    }
    (mem, msgs)
}
