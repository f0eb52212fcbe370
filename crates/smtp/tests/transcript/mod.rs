//! Transcript harness: in-memory doubles of the session's ports (`backend`) and a sans-io driver
//! that feeds client bytes to `Session::handle` the way the connection loop does (lines while a
//! command is expected, raw octets during DATA/BDAT, optionally in small pieces) and collects what
//! the session writes. No database, no sockets.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use wharf_smtp::spool::Spool;
use wharf_smtp::{
    Arrival, ArrivalAction, ArrivalCheck, ArrivalVerdict, AuthFailure, Authenticator, Backend,
    ConnInfo, Input, LocalDelivery, Login, Next, Origin, Recipients, RemoteHandoff, Resolution,
    SaslOutcome, SaslSession, Session, SmtpConfig, SmtpRole,
};
use wharf_store::queue::{NewQueueEntry, QueueError, QueueId};
use wharf_store::{AccountId, AppendOutcome, Delivery, DeliveryResult, StoreError};

pub const HOST: &str = "mx.example.test";
pub const PASSWORD: &str = "secret";

pub struct Account {
    pub id: AccountId,
    pub address: String,
    /// 0 = unlimited.
    pub quota: u64,
    pub used: u64,
}

/// The directory and the mailboxes, in memory.
#[derive(Default)]
pub struct World {
    pub domains: Vec<String>,
    pub accounts: Mutex<Vec<Account>>,
    /// alias address -> targets.
    pub aliases: HashMap<String, Vec<String>>,
    /// What local delivery stored: (account, message).
    pub stored: Mutex<Vec<(AccountId, Vec<u8>)>>,
    /// Accounts whose copy was filed as junk.
    pub junked: Mutex<Vec<AccountId>>,
    pub fail_lookups: AtomicBool,
    pub fail_delivery: AtomicBool,
}

/// example.test with alice (1), bob (2), full (3, quota used up), tiny (4, 2000 octets); the alias
/// team@ → alice and bob, fwd@ → alice and out@remote.test.
pub fn world() -> Arc<World> {
    let mut aliases = HashMap::new();
    aliases.insert(
        "team@example.test".to_string(),
        vec!["alice@example.test".into(), "bob@example.test".into()],
    );
    aliases.insert(
        "fwd@example.test".to_string(),
        vec!["alice@example.test".into(), "out@remote.test".into()],
    );
    let acct = |id, address: &str, quota, used| Account {
        id,
        address: address.into(),
        quota,
        used,
    };
    Arc::new(World {
        domains: vec!["example.test".into()],
        accounts: Mutex::new(vec![
            acct(1, "alice@example.test", 0, 0),
            acct(2, "bob@example.test", 0, 0),
            acct(3, "full@example.test", 100, 100),
            acct(4, "tiny@example.test", 2000, 0),
        ]),
        aliases,
        ..World::default()
    })
}

impl World {
    fn account(&self, address: &str) -> Option<(AccountId, String)> {
        let a = address.to_ascii_lowercase();
        self.accounts
            .lock()
            .unwrap()
            .iter()
            .find(|x| x.address == a)
            .map(|x| (x.id, x.address.clone()))
    }

    fn is_local(&self, address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(_, d)| self.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
    }

    /// Messages stored for `address`.
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let Some((id, _)) = self.account(address) else {
            return Vec::new();
        };
        self.stored
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail_lookups.load(Ordering::Relaxed) {
            return Err(StoreError::Backend("lookup down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Recipients for World {
    async fn resolve(&self, address: &str) -> Result<Resolution, StoreError> {
        self.check()?;
        if !self.is_local(address) {
            return Ok(Resolution::NotLocalDomain);
        }
        if let Some((id, _)) = self.account(address) {
            return Ok(Resolution::Local {
                accounts: vec![id],
                external: Vec::new(),
            });
        }
        let Some(targets) = self.aliases.get(&address.to_ascii_lowercase()) else {
            return Ok(Resolution::UnknownUser);
        };
        let (mut accounts, mut external) = (Vec::new(), Vec::new());
        for t in targets {
            match self.account(t) {
                Some((id, _)) => accounts.push(id),
                None if !self.is_local(t) => external.push(t.clone()),
                None => {}
            }
        }
        Ok(Resolution::Local { accounts, external })
    }

    async fn may_send_as(&self, login: &Login, address: &str) -> Result<bool, StoreError> {
        self.check()?;
        let a = address.to_ascii_lowercase();
        Ok(a == login.address
            || self
                .aliases
                .get(&a)
                .is_some_and(|t| t.contains(&login.address)))
    }

    async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>, StoreError> {
        self.check()?;
        let accts = self.accounts.lock().unwrap();
        Ok(accts.iter().find(|a| a.id == account).map(|a| a.quota))
    }

    async fn quota_used(&self, account: AccountId) -> Result<u64, StoreError> {
        self.check()?;
        let accts = self.accounts.lock().unwrap();
        Ok(accts.iter().find(|a| a.id == account).map_or(0, |a| a.used))
    }
}

#[async_trait]
impl LocalDelivery for World {
    async fn deliver(&self, d: Delivery) -> Result<Vec<DeliveryResult>, StoreError> {
        if self.fail_delivery.load(Ordering::Relaxed) {
            return Err(StoreError::Backend("disk on fire".into()));
        }
        let size = d.raw.len() as u64;
        if d.junk {
            self.junked
                .lock()
                .unwrap()
                .extend(d.recipients.iter().copied());
        }
        let mut accts = self.accounts.lock().unwrap();
        let mut stored = self.stored.lock().unwrap();
        let mut out = Vec::new();
        for id in d.recipients {
            let Some(a) = accts.iter_mut().find(|a| a.id == id) else {
                out.push(DeliveryResult::NoSuchAccount);
                continue;
            };
            if a.quota > 0 && a.used + size > a.quota {
                out.push(DeliveryResult::OverQuota {
                    message_alone_exceeds: size > a.quota,
                });
                continue;
            }
            a.used += size;
            stored.push((id, d.raw.to_vec()));
            out.push(DeliveryResult::Stored(AppendOutcome {
                mailbox_id: id,
                uid_validity: 1,
                uid: stored.len() as u32,
                modseq: 1,
                message_id: stored.len() as i64,
            }));
        }
        Ok(out)
    }
}

/// PLAIN and LOGIN over the world's accounts (password `PASSWORD`), and a SCRAM-shaped mechanism
/// whose success carries a server-final message.
#[async_trait]
impl Authenticator for World {
    /// SMTP logs in through SASL only; this is the same check for completeness of the port.
    async fn authenticate(
        &self,
        user: &str,
        pass: &str,
        _ip: IpAddr,
    ) -> Result<Login, AuthFailure> {
        let accounts = self.accounts.lock().unwrap();
        match accounts.iter().find(|a| a.address == user) {
            Some(a) if pass == PASSWORD => Ok(Login {
                account_id: a.id,
                address: a.address.clone(),
            }),
            _ => Err(AuthFailure::InvalidCredentials),
        }
    }

    fn mechanisms(&self) -> Vec<&'static str> {
        vec!["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    }

    fn start_sasl(&self, name: &str, _ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        let logins: Vec<(AccountId, String)> = self
            .accounts
            .lock()
            .unwrap()
            .iter()
            .map(|a| (a.id, a.address.clone()))
            .collect();
        let kind = match name {
            "PLAIN" => Mech::Plain,
            "LOGIN" => Mech::Login,
            "SCRAM-SHA-256" => Mech::Final,
            _ => return None,
        };
        Some(Box::new(Exchange {
            kind,
            logins,
            user: None,
            steps: 0,
        }))
    }
}

enum Mech {
    Plain,
    Login,
    Final,
}

struct Exchange {
    kind: Mech,
    logins: Vec<(AccountId, String)>,
    user: Option<String>,
    steps: u32,
}

impl Exchange {
    fn check(&self, user: &str, pass: &str) -> SaslOutcome {
        match self.logins.iter().find(|(_, a)| a == user) {
            Some((id, a)) if pass == PASSWORD => SaslOutcome::Success {
                login: Login {
                    account_id: *id,
                    address: a.clone(),
                },
                server_final: matches!(self.kind, Mech::Final).then(|| b"v=final".to_vec()),
            },
            _ => SaslOutcome::Failure(AuthFailure::InvalidCredentials),
        }
    }
}

#[async_trait]
impl SaslSession for Exchange {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        self.steps += 1;
        let text = String::from_utf8_lossy(client).to_string();
        match self.kind {
            Mech::Plain | Mech::Final => {
                if client.is_empty() && self.steps == 1 {
                    return SaslOutcome::Challenge(Vec::new());
                }
                let parts: Vec<&str> = text.split('\0').collect();
                match parts.as_slice() {
                    [_, user, pass] => self.check(user, pass),
                    _ => SaslOutcome::Failure(AuthFailure::Malformed("not PLAIN".into())),
                }
            }
            Mech::Login => match self.user.take() {
                None if self.steps == 1 && client.is_empty() => {
                    SaslOutcome::Challenge(b"Username:".to_vec())
                }
                None => {
                    self.user = Some(text);
                    SaslOutcome::Challenge(b"Password:".to_vec())
                }
                Some(user) => self.check(&user, &text),
            },
        }
    }
}

/// The outbound queue, in memory.
#[derive(Default)]
pub struct Queue {
    pub next_id: AtomicI64,
    pub entries: Mutex<Vec<(QueueId, NewQueueEntry, Origin)>>,
    pub released: Mutex<Vec<QueueId>>,
    pub withdrawn: Mutex<Vec<QueueId>>,
    pub refuse: AtomicBool,
}

#[async_trait]
impl RemoteHandoff for Queue {
    async fn enqueue(&self, entry: NewQueueEntry, origin: Origin) -> Result<QueueId, QueueError> {
        if self.refuse.load(Ordering::Relaxed) {
            return Err(QueueError::Backend("queue full".into()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 100;
        self.entries.lock().unwrap().push((id, entry, origin));
        Ok(id)
    }
    async fn release(&self, id: QueueId) {
        self.released.lock().unwrap().push(id);
    }
    async fn withdraw(&self, id: QueueId) {
        self.withdrawn.lock().unwrap().push(id);
    }
}

/// One session with its world, driven like the connection loop drives it.
pub struct Client {
    pub session: Session,
    pub world: Arc<World>,
    pub queue: Arc<Queue>,
    pub spool: Arc<Spool>,
    pub next: Next,
    /// Received and not yet consumed.
    pending: Vec<u8>,
    /// Message octets are handed in at most this many at a time (a small read).
    pub piece: usize,
    pub _tmp: tempfile::TempDir,
}

pub struct Options {
    pub role: SmtpRole,
    pub tls: bool,
    pub handoff: bool,
    /// The listener could offer STARTTLS (it has a certificate).
    pub starttls: bool,
    pub cfg: SmtpConfig,
    /// The trust checks of port-25 mail.
    pub arrival: Option<Arc<dyn ArrivalCheck>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            role: SmtpRole::Mx,
            tls: false,
            handoff: true,
            starttls: true,
            cfg: SmtpConfig::default(),
            arrival: None,
        }
    }
}

pub fn mx() -> Options {
    Options::default()
}

pub fn submission(tls: bool) -> Options {
    Options {
        role: SmtpRole::Submission,
        tls,
        ..Options::default()
    }
}

impl Options {
    pub fn cfg(mut self, f: impl FnOnce(&mut SmtpConfig)) -> Options {
        f(&mut self.cfg);
        self
    }
    pub fn arrival(mut self, check: Arc<dyn ArrivalCheck>) -> Options {
        self.arrival = Some(check);
        self
    }
    pub fn without_handoff(mut self) -> Options {
        self.handoff = false;
        self
    }

    /// Connects: the session has sent its greeting (returned).
    pub async fn connect(self) -> (Client, String) {
        let tmp = tempfile::tempdir().unwrap();
        let world = world();
        let queue = Arc::new(Queue::default());
        let backend = Backend {
            auth: world.clone(),
            recipients: world.clone(),
            delivery: world.clone(),
            handoff: self
                .handoff
                .then(|| queue.clone() as Arc<dyn RemoteHandoff>),
            arrival: self.arrival.clone(),
        };
        let cfg = self.cfg;
        let spool = Arc::new(Spool::new(
            tmp.path().join("spool"),
            cfg.spool_threshold,
            cfg.memory_budget,
            cfg.max_large_deliveries,
        ));
        let conn = ConnInfo {
            peer: "192.0.2.7:40000".parse().unwrap(),
            tls: self
                .tls
                .then(|| ("TLSv1.3".into(), "TLS13_AES_128_GCM_SHA256".into())),
            starttls_available: self.starttls && !self.tls,
        };
        let session = Session::new(
            Arc::new(cfg),
            HOST.into(),
            self.role,
            backend,
            spool.clone(),
            "SID".into(),
            conn,
        );
        let mut c = Client {
            session,
            world,
            queue,
            spool,
            next: Next::Command,
            pending: Vec::new(),
            piece: usize::MAX,
            _tmp: tmp,
        };
        let greeting = c.input(Input::Connected).await;
        (c, greeting)
    }
}

impl Client {
    /// Hands one input to the session and returns what it wrote.
    pub async fn input(&mut self, input: Input<'_>) -> String {
        let step = self.session.handle(input).await;
        self.next = step.next;
        let mut out = Vec::new();
        step.output.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// The client sends `bytes`; everything the session can answer from them is returned.
    /// STARTTLS handshakes succeed at once.
    pub async fn send(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let step = match self.next {
                Next::Close => break,
                Next::StartTls => {
                    self.session
                        .handle(Input::TlsStarted {
                            version: "TLSv1.3".into(),
                            cipher: "TLS13_AES_128_GCM_SHA256".into(),
                        })
                        .await
                }
                Next::Command | Next::AuthResponse => {
                    let Some(i) = self.pending.iter().position(|b| *b == b'\n') else {
                        break;
                    };
                    let line: Vec<u8> = self.pending.drain(..=i).collect();
                    if line.len() > self.session.max_line() {
                        self.session.handle(Input::LineTooLong).await
                    } else {
                        self.session.handle(Input::Line(&line)).await
                    }
                }
                Next::Data | Next::Chunk { .. } => {
                    if self.pending.is_empty() {
                        break;
                    }
                    let mut n = self.pending.len().min(self.piece);
                    if let Next::Chunk { remaining } = self.next {
                        n = n.min(remaining as usize);
                    }
                    let step = self.session.handle(Input::Data(&self.pending[..n])).await;
                    assert!(step.consumed <= n);
                    self.pending.drain(..step.consumed);
                    step
                }
            };
            self.next = step.next;
            step.output.write_to(&mut out);
        }
        String::from_utf8(out).unwrap()
    }

    /// Sends one command line (CRLF added) and returns the reply text.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await
    }

    /// The reply codes of one command line.
    pub async fn codes(&mut self, line: &str) -> Vec<u16> {
        codes(&self.cmd(line).await)
    }

    /// EHLO, MAIL FROM, each RCPT TO; asserts each was accepted.
    pub async fn envelope(&mut self, from: &str, rcpts: &[&str]) {
        let r = self.cmd("EHLO client.test").await;
        assert!(r.starts_with("250"), "{r}");
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250"), "{r}");
        for rc in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rc}>")).await;
            assert!(r.starts_with("250"), "{r}");
        }
    }

    /// Logs in with AUTH PLAIN (the session must allow it).
    pub async fn login(&mut self, user: &str) {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{PASSWORD}"));
        let r = self.cmd(&format!("AUTH PLAIN {token}")).await;
        assert!(r.starts_with("235"), "{r}");
    }
}

/// Reply codes of a transcript's replies (last lines only, for multi-line replies).
pub fn codes(text: &str) -> Vec<u16> {
    text.split("\r\n")
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .filter_map(|l| l[..3].parse().ok())
        .collect()
}

/// What an `ArrivalCheck` was shown: (ip, helo, mail from, recipients, content).
pub type Shown = (IpAddr, String, String, Vec<String>, Vec<u8>);

/// An `ArrivalCheck` with a fixed answer that records what it was shown.
pub struct FixedVerdict {
    pub action: ArrivalAction,
    pub prepend: String,
    /// Remove the content's first header field (standing for a forged verdict).
    pub remove_first_field: bool,
    pub seen: Mutex<Vec<Shown>>,
}

impl FixedVerdict {
    pub fn new(action: ArrivalAction) -> Arc<FixedVerdict> {
        Arc::new(FixedVerdict {
            action,
            prepend: "Authentication-Results: mx.example.test; spf=pass\r\n".into(),
            remove_first_field: false,
            seen: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl ArrivalCheck for FixedVerdict {
    async fn check(&self, a: &Arrival<'_>, content: &[u8]) -> ArrivalVerdict {
        self.seen.lock().unwrap().push((
            a.ip,
            a.helo.to_string(),
            a.mail_from.to_string(),
            a.recipients.to_vec(),
            content.to_vec(),
        ));
        let remove = if self.remove_first_field {
            let end = content
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(0, |i| i + 2);
            std::iter::once(0..end).collect()
        } else {
            Vec::new()
        };
        ArrivalVerdict {
            prepend: self.prepend.clone(),
            remove,
            forward_prepend: if a.forwarding {
                "ARC-Seal: i=1; test\r\n".into()
            } else {
                String::new()
            },
            action: self.action.clone(),
            junk_for: Vec::new(),
        }
    }
}
