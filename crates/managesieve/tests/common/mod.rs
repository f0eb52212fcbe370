//! In-memory doubles of the session's ports (credentials and SASL, the script store, the script
//! checker) and a transcript driver that feeds raw client bytes through the session as the
//! connection loop would (lines, literals, oversized literals dropped), so command behaviour is
//! tested without a database. End-to-end tests use the real store and directory instead.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use wharf_managesieve::backend::*;
use wharf_managesieve::{ConnInfo, Input, ManageSieveConfig, Next, Session, Step};
use wharf_store::{AccountId, StoreError};

pub const PASSWORD: &str = "correct horse battery";
pub const ALICE: AccountId = 1;

#[derive(Default)]
pub struct MemState {
    /// address -> (account id, disabled)
    pub accounts: HashMap<String, (AccountId, bool)>,
    /// account -> name -> content
    pub scripts: HashMap<AccountId, BTreeMap<String, String>>,
    pub active: HashMap<AccountId, String>,
    /// The store's own count bound (`StoreError::Limit` past it).
    pub store_limit: usize,
    /// Failure injection.
    pub fail_store: bool,
    pub over_quota: bool,
    pub auth_result: Option<AuthFailure>,
    pub quota: Option<ScriptQuota>,
}

#[derive(Clone, Default)]
pub struct Mem(pub Arc<Mutex<MemState>>);

impl Mem {
    pub fn new() -> Mem {
        let m = Mem::default();
        {
            let mut s = m.0.lock().unwrap();
            s.store_limit = 1000;
            s.accounts.insert("alice@example.org".into(), (1, false));
            s.accounts.insert("bob@example.org".into(), (2, false));
            s.accounts.insert("off@example.org".into(), (3, true));
        }
        m
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut MemState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn script(&self, account: AccountId, name: &str) -> Option<String> {
        self.with(|s| s.scripts.get(&account).and_then(|m| m.get(name).cloned()))
    }

    pub fn active(&self, account: AccountId) -> Option<String> {
        self.with(|s| s.active.get(&account).cloned())
    }

    pub fn add(&self, account: AccountId, name: &str, content: &str) {
        self.with(|s| {
            s.scripts
                .entry(account)
                .or_default()
                .insert(name.into(), content.into())
        });
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
        vec!["PLAIN", "X-FINAL", "X-TWO-STEP"]
    }
    fn start_sasl(&self, name: &str, _ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        let kind = match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Kind::Plain,
            // Like SCRAM: success carries a server-final message.
            "X-FINAL" => Kind::Final,
            // Like LOGIN: a challenge first, then the user, a challenge, the password.
            "X-TWO-STEP" => Kind::TwoStep(None),
            _ => return None,
        };
        Some(Box::new(MemSasl {
            mem: self.clone(),
            kind,
        }))
    }
}

enum Kind {
    Plain,
    Final,
    TwoStep(Option<String>),
}

/// PLAIN (RFC 4616) over the in-memory accounts, and two look-alikes of SCRAM and LOGIN.
pub struct MemSasl {
    mem: Mem,
    kind: Kind,
}

#[async_trait]
impl SaslSession for MemSasl {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        if let Some(f) = self.mem.with(|s| s.auth_result.clone()) {
            return SaslOutcome::Failure(f);
        }
        let (user, pass) = match &mut self.kind {
            Kind::TwoStep(user) => match user.take() {
                None if client.is_empty() => return SaslOutcome::Challenge(b"Username:".to_vec()),
                None => {
                    *user = Some(String::from_utf8_lossy(client).to_string());
                    return SaslOutcome::Challenge(b"Password:".to_vec());
                }
                Some(u) => (u, String::from_utf8_lossy(client).to_string()),
            },
            _ => {
                if client.is_empty() {
                    return SaslOutcome::Challenge(Vec::new());
                }
                let parts: Vec<&[u8]> = client.split(|&b| b == 0).collect();
                if parts.len() != 3 {
                    return SaslOutcome::Failure(AuthFailure::Malformed(
                        "PLAIN needs 3 fields".into(),
                    ));
                }
                (
                    String::from_utf8_lossy(parts[1]).to_string(),
                    String::from_utf8_lossy(parts[2]).to_string(),
                )
            }
        };
        let s = self.mem.0.lock().unwrap();
        if pass != PASSWORD {
            return SaslOutcome::Failure(AuthFailure::InvalidCredentials);
        }
        match login_for(&s, &user) {
            Ok(login) => SaslOutcome::Success {
                login,
                server_final: matches!(self.kind, Kind::Final).then(|| b"v=final".to_vec()),
            },
            Err(f) => SaslOutcome::Failure(f),
        }
    }
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("database is gone".into())
}

#[async_trait]
impl ScriptStore for Mem {
    async fn list(&self, account: AccountId) -> Result<Vec<ScriptInfo>, StoreError> {
        let s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        let active = s.active.get(&account);
        Ok(s.scripts
            .get(&account)
            .map(|m| {
                m.iter()
                    .map(|(n, c)| ScriptInfo {
                        name: n.clone(),
                        active: active == Some(n),
                        size: c.len() as u64,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
    async fn get(&self, account: AccountId, name: &str) -> Result<Option<String>, StoreError> {
        let s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        Ok(s.scripts.get(&account).and_then(|m| m.get(name).cloned()))
    }
    async fn put(&self, account: AccountId, name: &str, content: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        if s.over_quota {
            return Err(StoreError::OverQuota);
        }
        let limit = s.store_limit;
        let m = s.scripts.entry(account).or_default();
        if !m.contains_key(name) && m.len() >= limit {
            return Err(StoreError::Limit("too many sieve scripts".into()));
        }
        m.insert(name.into(), content.into());
        Ok(())
    }
    async fn delete(&self, account: AccountId, name: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        match s.scripts.get_mut(&account).and_then(|m| m.remove(name)) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(name.into())),
        }
    }
    async fn rename(&self, account: AccountId, from: &str, to: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        let m = s.scripts.entry(account).or_default();
        if !m.contains_key(from) {
            return Err(StoreError::NotFound(from.into()));
        }
        if m.contains_key(to) {
            return Err(StoreError::AlreadyExists(to.into()));
        }
        let c = m.remove(from).unwrap();
        m.insert(to.into(), c);
        if s.active.get(&account).map(String::as_str) == Some(from) {
            s.active.insert(account, to.into());
        }
        Ok(())
    }
    async fn set_active(&self, account: AccountId, name: Option<&str>) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        match name {
            None => {
                s.active.remove(&account);
                Ok(())
            }
            Some(n) => {
                if !s.scripts.get(&account).is_some_and(|m| m.contains_key(n)) {
                    return Err(StoreError::NotFound(n.into()));
                }
                s.active.insert(account, n.into());
                Ok(())
            }
        }
    }
    async fn quota(&self, _account: AccountId) -> Result<ScriptQuota, StoreError> {
        let s = self.0.lock().unwrap();
        if s.fail_store {
            return Err(unavailable());
        }
        Ok(s.quota.unwrap_or(ScriptQuota {
            max_scripts: u32::MAX,
            max_script_size: u64::MAX,
        }))
    }
}

/// Accepts scripts unless they contain "bad" (an error at its line and column) and warns
/// about "warn".
pub struct Checker;

impl ScriptChecker for Checker {
    fn extensions(&self) -> String {
        "fileinto vacation enotify".into()
    }
    fn check(&self, source: &str) -> Result<(), String> {
        for (i, line) in source.split('\n').enumerate() {
            if let Some(c) = line.find("bad") {
                return Err(format!(
                    "line {}, column {}: unknown command \"bad\"",
                    i + 1,
                    line[..c].chars().count() + 1
                ));
            }
        }
        Ok(())
    }
    fn check_with_warnings(&self, source: &str) -> Result<Vec<String>, String> {
        self.check(source)?;
        Ok(if source.contains("warn") {
            vec!["line 1, column 1: something to warn about".into()]
        } else {
            Vec::new()
        })
    }
}

pub fn config() -> ManageSieveConfig {
    ManageSieveConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ManageSieveConfig::default()
    }
}

pub fn loopback() -> ConnInfo {
    ConnInfo {
        peer: "127.0.0.1".parse().unwrap(),
        tls: false,
        starttls_available: false,
    }
}

pub fn plain_ir(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

pub fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Drives one session with the raw bytes a client sends, as the connection loop would.
pub struct Transcript {
    pub session: Session,
    pub mem: Mem,
    pub closed: bool,
    pub tls_requested: bool,
    /// Client bytes not yet consumed (what the loop would have buffered).
    pub input: Vec<u8>,
    pub next: Next,
    /// Octets of oversized literals dropped.
    pub discarded: u64,
}

impl Transcript {
    pub fn new(mem: &Mem) -> Transcript {
        Self::with(mem, config(), loopback())
    }

    pub fn with(mem: &Mem, cfg: ManageSieveConfig, info: ConnInfo) -> Transcript {
        let session = Session::new(
            Arc::new(cfg),
            "sieve.example.org".into(),
            info,
            Arc::new(mem.clone()),
            Arc::new(mem.clone()),
            Arc::new(Checker),
        );
        Transcript {
            session,
            mem: mem.clone(),
            closed: false,
            tls_requested: false,
            input: Vec::new(),
            next: Next::ReadLine,
            discarded: 0,
        }
    }

    pub fn greeting(&self) -> String {
        let step = self.session.greeting();
        assert_eq!(step.next, Next::ReadLine);
        String::from_utf8(step.output.bytes).unwrap()
    }

    /// Sends raw client bytes and returns everything the server answered, once it waits for
    /// more input (or closed, or asked for TLS).
    pub async fn raw(&mut self, data: &[u8]) -> String {
        assert!(!self.closed, "session already closed");
        self.input.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.closed || self.tls_requested {
                break;
            }
            let step = match self.next {
                Next::ReadLine => {
                    let max = self.session.max_line();
                    match self.input.iter().position(|&b| b == b'\n') {
                        Some(i) if i < max => {
                            let line: Vec<u8> = self.input.drain(..=i).collect();
                            self.session.handle(Input::Line(&line)).await
                        }
                        Some(i) => {
                            self.input.drain(..=i);
                            self.session.handle(Input::LineTooLong).await
                        }
                        None => break,
                    }
                }
                Next::ReadLiteral(n) => {
                    if self.input.len() < n {
                        break;
                    }
                    let lit: Vec<u8> = self.input.drain(..n).collect();
                    self.session.handle(Input::Literal(&lit)).await
                }
                Next::DiscardLiteral(n) => {
                    let n = usize::try_from(n).unwrap();
                    if self.input.len() < n {
                        break;
                    }
                    self.input.drain(..n);
                    self.discarded += n as u64;
                    self.next = Next::ReadLine;
                    continue;
                }
                Next::StartTls | Next::Close => break,
            };
            self.apply(step, &mut out);
        }
        String::from_utf8_lossy(&out).to_string()
    }

    fn apply(&mut self, step: Step, out: &mut Vec<u8>) {
        out.extend_from_slice(&step.output.bytes);
        self.next = step.next;
        match step.next {
            Next::Close => self.closed = true,
            Next::StartTls => self.tls_requested = true,
            _ => {}
        }
    }

    /// Sends one line (CRLF added).
    pub async fn send(&mut self, line: &str) -> String {
        self.raw(format!("{line}\r\n").as_bytes()).await
    }

    /// Hands one input to the session directly.
    pub async fn input(&mut self, input: Input<'_>) -> String {
        let step = self.session.handle(input).await;
        let mut out = Vec::new();
        self.apply(step, &mut out);
        String::from_utf8_lossy(&out).to_string()
    }

    pub async fn login(&mut self, user: &str) {
        let r = self
            .send(&format!(
                "AUTHENTICATE \"PLAIN\" \"{}\"",
                plain_ir(user, PASSWORD)
            ))
            .await;
        assert_eq!(r, "OK \"Authentication successful\"\r\n", "login failed");
    }

    /// PUTSCRIPT with the script as a non-synchronising literal.
    pub async fn put(&mut self, name: &str, script: &str) -> String {
        self.raw(format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes())
            .await
    }
}

/// A transcript logged in as alice.
pub async fn alice(mem: &Mem) -> Transcript {
    let mut t = Transcript::new(mem);
    t.login("alice@example.org").await;
    t
}
