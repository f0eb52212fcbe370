//! Shared test helpers: a real SCRAM client (Python `scramp`) driven as a subprocess, and a
//! directory with the test domain on a fresh store (from `wharf_testkit`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Client side of a SCRAM-SHA-256 exchange, performed by the `scramp` library.
/// Protocol on its stdio: it prints client-first, reads server-first, prints client-final, reads
/// server-final, then prints `OK` or `FAIL <reason>`.
const CLIENT: &str = r#"
import sys
try:
    import scramp
except ImportError:
    print("NOSCRAMP", flush=True)
    sys.exit(3)
user, password = sys.argv[1], sys.argv[2]
c = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
print(c.get_client_first(), flush=True)
c.set_server_first(sys.stdin.readline().rstrip("\n"))
print(c.get_client_final(), flush=True)
try:
    c.set_server_final(sys.stdin.readline().rstrip("\n"))
except Exception as e:
    print("FAIL", e, flush=True)
    sys.exit(1)
print("OK", flush=True)
"#;

pub struct ScrampClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ScrampClient {
    pub fn start(user: &str, password: &str) -> ScrampClient {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(CLIENT)
            .arg(user)
            .arg(password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed for the SCRAM client tests");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        ScrampClient {
            child,
            stdin,
            stdout,
        }
    }

    pub fn read(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim_end_matches('\n').to_string();
        assert_ne!(
            line, "NOSCRAMP",
            "the Python package scramp is required: pip install scramp"
        );
        line
    }

    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for ScrampClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use wharf_directory::{Directory, DirectoryConfig};
pub use wharf_testkit::Backend;
use wharf_testkit::TestDirectory;

pub const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "correct horse battery";

/// Short delays so tests can watch them; a long window, so that slow machines still count every
/// failure of a test in one window (tests of recovery shorten it).
pub fn fast_config() -> DirectoryConfig {
    DirectoryConfig {
        auth_fail_delay_base: Duration::from_millis(20),
        auth_fail_max_delay: Duration::from_millis(80),
        auth_ip_lockout_after: 100,
        auth_account_lockout_after: 5,
        auth_lockout: Duration::from_secs(60),
        auth_known_source_ttl: Duration::from_secs(3600),
        credential_cache_ttl: Duration::from_secs(60),
        min_password_len: 10,
        postmaster: None,
    }
}

/// A directory on a fresh embedded store with the domain `example.test` (the first element
/// holds the store's files: keep it alive).
pub async fn directory(cfg: DirectoryConfig) -> (TestDirectory, Directory) {
    let fx = fixture(Backend::Sqlite, cfg).await;
    let dir = fx.directory.clone();
    (fx, dir)
}

/// A directory with the domain `example.test` on a fresh store of the given backend.
pub type Fixture = TestDirectory;

pub async fn fixture(backend: Backend, cfg: DirectoryConfig) -> Fixture {
    let fx = TestDirectory::new(backend, cfg).await;
    fx.directory.add_domain(DOMAIN).await.unwrap();
    fx
}
