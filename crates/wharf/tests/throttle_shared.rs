//! Two `wharf serve` nodes on one PostgreSQL database throttle password guessing as one (issue 19
//! item 3): wrong IMAP passwords spread over both nodes add up to one lockout, and a source that
//! failed only on one node is refused by the other, where it never failed. Clients connect from
//! different loopback addresses (127.0.0.x) to be different sources.
//!
//! Needs python3 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, PASSWORD, Server};
use wharf_testkit::TempDatabase;

const LOCKOUT_AFTER: usize = 6;

fn node_config(db: &str, blobs: &std::path::Path) -> String {
    format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [store]\nurl = \"{db}\"\nblob_dir = \"{}\"\n[limits]\nshutdown_timeout = 5\n\
         [directory]\nauth_fail_delay_base = 0\nauth_fail_max_delay = 0\n\
         auth_ip_lockout_after = {LOCKOUT_AFTER}\nauth_lockout = 300\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n",
        blobs.display()
    )
}

/// One IMAP LOGIN per (port, source address, password), each on its own IMAPS connection from
/// that source: `OK`, or `NO` with the server's text.
fn logins(attempts: &[(u16, &str, &str)]) -> Vec<String> {
    let script = r#"
import imaplib, socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
args = sys.argv[1:]
for i in range(0, len(args), 3):
    port, src, pw = int(args[i]), args[i + 1], args[i + 2]
    class FromSource(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            s = socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
            return self.ssl_context.wrap_socket(s, server_hostname=self.host)
    m = FromSource("127.0.0.1", port, ssl_context=ctx, timeout=30)
    try:
        m.login("alice@example.test", pw)
        print("OK", flush=True)
        m.logout()
    except imaplib.IMAP4.error as e:
        print("NO", e, flush=True)
        try:
            m.logout()
        except Exception:
            pass
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    for (port, src, pw) in attempts {
        cmd.args([port.to_string().as_str(), src, pw]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), attempts.len(), "{lines:?}");
    lines
}

fn wrong(port: u16, src: &str) {
    let got = logins(&[(port, src, "not the password")]);
    assert!(got[0].contains("AUTHENTICATIONFAILED"), "{got:?}");
}

fn throttled(answer: &str) -> bool {
    answer.starts_with("NO") && answer.contains("Too many failures")
}

/// The right password from `src` on `port`, until it is refused as throttled; how long that took.
/// Panics after 15 s (the nodes exchange counts every 2 s).
fn refused_within(port: u16, src: &str) -> Duration {
    let start = Instant::now();
    loop {
        let got = logins(&[(port, src, PASSWORD)]);
        if throttled(&got[0]) {
            return start.elapsed();
        }
        assert!(
            got[0] == "OK",
            "only throttled or logged in expected: {got:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{src} is still let in on port {port}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn start(env: &Env) -> (Server, u16) {
    let mut s = Server::start(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
    );
    let ports = s.wait_ready();
    let port = ports.iter().find(|(n, _)| n == "imaps").unwrap().1;
    (s, port)
}

#[test]
fn two_nodes_on_postgres_lock_out_a_source_together() {
    let db = TempDatabase::create("wharf_throttle");
    let shared = tempfile::tempdir().unwrap();
    let blobs = shared.path().join("blobs");
    let (a, b) = (Env::new(), Env::new());
    for env in [&a, &b] {
        env.write_config(&node_config(&db.url(), &blobs));
    }
    a.add_user("alice@example.test");
    let (mut na, pa) = start(&a);
    // Secrets the nodes share are sealed with A's node-state key, if it made one.
    let key = a.data().join("state.key");
    if key.exists() {
        std::fs::create_dir_all(b.data()).unwrap();
        std::fs::copy(&key, b.data().join("state.key")).unwrap();
    }
    let (mut nb, pb) = start(&b);

    // Both nodes let the right password in, from every source.
    assert_eq!(
        logins(&[
            (pa, "127.0.0.1", PASSWORD),
            (pb, "127.0.0.2", PASSWORD),
            (pb, "127.0.0.3", PASSWORD)
        ]),
        ["OK", "OK", "OK"]
    );

    // 127.0.0.2 guesses on A only, as often as the lockout needs: A refuses it at once, and B,
    // where it never failed, within a few seconds.
    for _ in 0..LOCKOUT_AFTER {
        wrong(pa, "127.0.0.2");
    }
    assert!(throttled(&logins(&[(pa, "127.0.0.2", PASSWORD)])[0]));
    let took = refused_within(pb, "127.0.0.2");
    assert!(
        nb.wait_for("authentication source locked out", Duration::from_secs(5))
            .is_some_and(|l| l.contains("127.0.0.2") && l.contains("on_other_nodes=6")),
        "B logs the lockout it took from A: {}",
        nb.seen.join("\n")
    );
    // Other sources are not affected, on either node.
    assert_eq!(
        logins(&[(pa, "127.0.0.3", PASSWORD), (pb, "127.0.0.3", PASSWORD)]),
        ["OK", "OK"]
    );

    // 127.0.0.4 spreads its guesses, fewer than the lockout on each node, more in all: the
    // failures add up and both nodes refuse it.
    let spread = [pa, pb, pa, pb, pa];
    for port in spread {
        wrong(port, "127.0.0.4");
    }
    // Let one exchange carry A's three failures to B (and B's two to A).
    std::thread::sleep(Duration::from_secs(5));
    wrong(pb, "127.0.0.4");
    assert!(throttled(&logins(&[(pb, "127.0.0.4", PASSWORD)])[0]));
    refused_within(pa, "127.0.0.4");

    eprintln!("B refused a source locked on A after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    na.sigterm();
    nb.sigterm();
    assert!(na.wait_exit(Duration::from_secs(20)).is_some());
    assert!(nb.wait_exit(Duration::from_secs(20)).is_some());
    drop(db);
}
