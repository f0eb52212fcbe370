//! Shared test fixtures: the in-memory backend doubles with two accounts (`env`), a temp
//! embedded store behind the real adapters (`sql_env`), a transcript driver over the sans-io
//! session (`T`), and an in-process server on 127.0.0.1:0 (`server`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use wharf_directory::{Directory, DirectoryConfig};
use wharf_imap::backend::Backend;
use wharf_imap::{ConnInfo, ImapConfig, ImapService, Input, Next, Session, Shared};
use wharf_net::{Limits, Server};
use wharf_store::{AccountId, Store};
use wharf_testkit::{Loopback, TestCert, test_limits};

pub mod memory;
pub use memory::Memory;

pub const USER: &str = "alice@example.test";
pub const PASS: &str = "correct horse battery";
pub const USER2: &str = "bob@example.test";

/// A session's world in memory: the backend doubles with alice and bob.
pub struct Env {
    pub mem: Arc<Memory>,
    pub alice: AccountId,
    pub bob: AccountId,
}

pub async fn env() -> Env {
    let mem = Memory::new();
    let alice = mem.add_account(USER, PASS);
    let bob = mem.add_account(USER2, PASS);
    Env { mem, alice, bob }
}

/// A temp embedded store behind the real adapters (socket tests, directory behaviour).
pub struct SqlEnv {
    pub dir: tempfile::TempDir,
    pub directory: Directory,
    pub store: Arc<dyn Store>,
}

pub async fn sql_env() -> SqlEnv {
    let dir = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(dir.path()).await.unwrap();
    let directory = Directory::new(store.clone(), DirectoryConfig::default());
    directory.add_domain("example.test").await.unwrap();
    directory.add_account(USER, PASS, 0).await.unwrap();
    directory.add_account(USER2, PASS, 0).await.unwrap();
    SqlEnv {
        dir,
        directory,
        store,
    }
}

/// Whatever a transcript session can run on.
pub trait HasBackend {
    fn backend(&self) -> Backend;
    /// Sets alice's storage limit in octets.
    fn set_alice_quota(&self, bytes: u64) -> impl std::future::Future<Output = ()>;
    /// Adds an account with `PASS` as its password.
    fn add_account(&self, address: &str) -> impl std::future::Future<Output = ()>;
}

impl HasBackend for Env {
    fn backend(&self) -> Backend {
        self.mem.backend()
    }

    async fn set_alice_quota(&self, bytes: u64) {
        self.mem.set_quota(self.alice, bytes);
    }

    async fn add_account(&self, address: &str) {
        self.mem.add_account(address, PASS);
    }
}

impl HasBackend for SqlEnv {
    fn backend(&self) -> Backend {
        wharf_imap::adapters::backend(self.directory.clone())
    }

    async fn set_alice_quota(&self, bytes: u64) {
        let a = self
            .store
            .get_account_by_address(USER)
            .await
            .unwrap()
            .unwrap();
        self.store
            .set_account_quota(a.id, bytes as i64)
            .await
            .unwrap();
    }

    async fn add_account(&self, address: &str) {
        self.directory.add_account(address, PASS, 0).await.unwrap();
    }
}

/// Drives a session from a byte transcript, as the connection loop would: lines, literal
/// octets when the session asks for them, resumed output, and what comes next.
pub struct T {
    pub s: Session,
    pub max_line: usize,
}

impl T {
    pub fn new(env: &impl HasBackend, tls: bool, cfg: ImapConfig) -> T {
        let shared = Shared::new(&cfg);
        T::with_shared(env, tls, cfg, shared)
    }

    pub fn with_shared(
        env: &impl HasBackend,
        tls: bool,
        cfg: ImapConfig,
        shared: Arc<Shared>,
    ) -> T {
        let info = ConnInfo {
            peer: "127.0.0.1".parse().unwrap(),
            tls,
            starttls_available: !tls,
        };
        let max_line = cfg.max_line;
        T {
            s: Session::new(Arc::new(cfg), env.backend(), shared, info, 1),
            max_line,
        }
    }

    /// A TLS session, logged in as alice.
    pub async fn login(env: &impl HasBackend) -> T {
        T::login_as(env, USER, ImapConfig::default()).await
    }

    /// A TLS session with `cfg`, logged in as `user`.
    pub async fn login_as(env: &impl HasBackend, user: &str, cfg: ImapConfig) -> T {
        let mut t = T::new(env, true, cfg);
        let r = t.cmd(&format!("a0 LOGIN {user} \"{PASS}\"")).await;
        assert!(r.contains("a0 OK"), "{r}");
        t
    }

    /// Sends one command line (CRLF added); literals inline.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.raw(format!("{line}\r\n").as_bytes()).await
    }

    pub async fn raw(&mut self, bytes: &[u8]) -> String {
        self.next(bytes).await.0
    }

    /// One input to the session, its output as text.
    pub async fn input(&mut self, input: Input<'_>) -> (String, Next) {
        let step = self.s.handle(input).await;
        let out = step.output.into_bytes().await.unwrap();
        (String::from_utf8_lossy(&out).into_owned(), step.next)
    }

    /// Feeds the bytes (any number of commands, literals inline) until they are used up or the
    /// session waits for something else; returns all output and what the session wants next.
    pub async fn next(&mut self, bytes: &[u8]) -> (String, Next) {
        let mut out = String::new();
        let mut rest = bytes;
        let mut next = Next::Line;
        loop {
            let (o, n) = match next {
                Next::Line | Next::Idle => {
                    if rest.is_empty() {
                        break;
                    }
                    let end = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|i| i + 1)
                        .unwrap_or(rest.len());
                    let (line, r) = rest.split_at(end);
                    rest = r;
                    if line.len() > self.max_line {
                        self.input(Input::LineTooLong).await
                    } else {
                        self.input(Input::Line(line)).await
                    }
                }
                Next::Literal { len } => {
                    if rest.is_empty() {
                        break;
                    }
                    let n = (len as usize).min(rest.len()).min(64 * 1024);
                    let (data, r) = rest.split_at(n);
                    rest = r;
                    self.input(Input::Data(data)).await
                }
                Next::Discard { len } => {
                    let n = (len as usize).min(rest.len());
                    rest = &rest[n..];
                    next = Next::Line;
                    continue;
                }
                Next::More => self.input(Input::Resume).await,
                Next::StartTls | Next::Compress | Next::Close => break,
            };
            out.push_str(&o);
            next = n;
        }
        (out, next)
    }

    /// APPENDs a message to a mailbox, returning its UID.
    pub async fn append(&mut self, mailbox: &str, flags: &str, msg: &str) -> u32 {
        let cmd = format!("ap APPEND {mailbox} {flags}{{{}}}\r\n{msg}\r\n", msg.len());
        let r = self.raw(cmd.as_bytes()).await;
        assert!(r.contains("ap OK [APPENDUID"), "{r}");
        let code = r.split("APPENDUID ").nth(1).unwrap();
        code.split([' ', ']']).nth(1).unwrap().parse().unwrap()
    }
}

/// Runs one Python client script of `tests/clients` with `args` (off the runtime's threads) and
/// asserts it succeeded and printed `done`; its standard output.
/// The arguments the two-user Python clients take: the implicit-TLS port, the CA file, alice,
/// bob and their password.
pub fn two_user_args(tls: SocketAddr, cert: String) -> Vec<String> {
    vec![
        tls.port().to_string(),
        cert,
        USER.into(),
        USER2.into(),
        PASS.into(),
    ]
}

pub async fn python_client(script: &str, args: Vec<String>, done: &str) -> String {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(path)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(done), "{stdout}");
    stdout
}

pub fn message(i: usize) -> String {
    format!(
        "From: Sender {i} <sender{i}@example.org>\r\nTo: alice@example.test\r\nSubject: Message number {i}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <m{i}@example.org>\r\n\r\nHello body {i}\r\n"
    )
}

/// Starts the IMAP service on two loopback listeners: STARTTLS (143-like) and implicit TLS.
pub async fn server(env: &SqlEnv, cfg: ImapConfig) -> (Server, SocketAddr, SocketAddr, String) {
    server_with(env, cfg, env.dir.path()).await
}

/// The same over any backend (the certificate is written into `cert_dir`).
pub async fn server_with(
    env: &impl HasBackend,
    cfg: ImapConfig,
    cert_dir: &std::path::Path,
) -> (Server, SocketAddr, SocketAddr, String) {
    let cert = TestCert::new("localhost", &[]);
    let limits = Limits {
        max_connections: 1000,
        max_per_ip: 1000,
        ..test_limits()
    };
    let mut listeners = Loopback::new(Some(&cert), limits);
    let handler = Arc::new(ImapService::with_backend(
        cfg,
        "localhost".into(),
        env.backend(),
    ));
    let (plain, implicit) = listeners.listen_pair("imap", "imaps", handler).await;
    let cert_path = cert.write_pem(cert_dir);
    (
        listeners.start(),
        plain,
        implicit,
        cert_path.to_string_lossy().into_owned(),
    )
}

/// Sizes of the spool files this process holds open under `dir`. Spool files have no name
/// (unlinked at creation), so they are found through the process's open descriptors.
pub fn spool_files(dir: &std::path::Path) -> Vec<u64> {
    let dir = dir.canonicalize().unwrap();
    let mut sizes = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
    {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if target.starts_with(&dir)
            && let Ok(m) = std::fs::metadata(fd.path())
        {
            sizes.push(m.len());
        }
    }
    sizes
}

/// Runs each named `async fn(&impl HasBackend)` of the test file twice: on the in-memory double
/// (`memory::name`) and on the embedded store behind the real adapters (`sqlite::name`).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&super::env().await).await
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&super::sql_env().await).await
            })*
        }
    };
}
