//! Two `wharf serve` nodes on one PostgreSQL database and one blob folder, behind Debian's
//! HAProxy sending PROXY v2 (the set-up docs/scale-out.md describes): mail sent through the
//! balancer lands on both nodes and every message is seen from either; when one node dies, the
//! balancer's checks take it out and mail keeps flowing through the other.
//!
//! Needs haproxy (Debian package `haproxy`), python3 and PostgreSQL on 127.0.0.1:5432.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server};
use wharf_testkit::TempDatabase;

const PASSWORD: &str = "correct horse battery scale";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_config(db: &str, blobs: &std::path::Path) -> String {
    let mut t = format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [store]\nurl = \"{db}\"\nblob_dir = \"{}\"\n[limits]\nshutdown_timeout = 5\n",
        blobs.display()
    );
    for (proto, tls) in [("smtp", "starttls"), ("imap", "implicit")] {
        t.push_str(&format!(
            "[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"{proto}\"\ntls = \"{tls}\"\nproxy_protocol = true\n"
        ));
    }
    t
}

struct Balancer {
    child: Child,
    smtp: u16,
    imap: u16,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy in front of the nodes' (smtp, imaps) ports, round robin, PROXY v2 on every
/// connection and on its health checks.
fn haproxy(dir: &std::path::Path, nodes: &[(u16, u16)]) -> Balancer {
    let (smtp, imap) = (free_port(), free_port());
    let mut cfg = String::from(
        "global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n",
    );
    for (name, port, idx) in [("smtp", smtp, 0usize), ("imap", imap, 1)] {
        cfg.push_str(&format!(
            "frontend {name}_in\n  bind 127.0.0.1:{port}\n  default_backend {name}_nodes\nbackend {name}_nodes\n  balance roundrobin\n"
        ));
        for (i, n) in nodes.iter().enumerate() {
            let target = if idx == 0 { n.0 } else { n.1 };
            cfg.push_str(&format!(
                "  server n{i} 127.0.0.1:{target} send-proxy-v2 check check-send-proxy inter 300ms fall 2 rise 1\n"
            ));
        }
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (Debian package haproxy) runs");
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", imap)).is_err() {
        assert!(Instant::now() < end, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Balancer { child, smtp, imap }
}

/// Sends `n` messages through `port`, one connection each (so the balancer spreads them).
fn send(port: u16, first: usize, n: usize) {
    let script = r#"
import smtplib, sys
port, first, n = map(int, sys.argv[1:4])
for i in range(first, first + n):
    msg = ("From: <bob@remote.test>\r\nTo: <alice@example.test>\r\nSubject: m%d\r\n"
           "Message-ID: <m%d@remote.test>\r\n\r\nbody %d\r\n" % (i, i, i))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("bob@remote.test", ["alice@example.test"], msg.encode())
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            &first.to_string(),
            &n.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `commands` (Python, with `m` logged in as alice and INBOX selected, `arg` in `sys.argv[3]`)
/// over IMAPS through `port`; their standard output.
fn imap(port: u16, commands: &str, arg: &str) -> String {
    let script = format!(
        r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx, timeout=30)
m.login("alice@example.test", sys.argv[2])
m.select("INBOX")
{commands}
m.logout()
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script, &port.to_string(), PASSWORD, arg])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subjects in alice's INBOX, read over IMAPS through `port`.
fn subjects(port: u16) -> Vec<String> {
    let out = imap(
        port,
        r#"
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for part in data:
    if isinstance(part, tuple):
        print(part[1].decode().strip().split(": ", 1)[1])
"#,
        "",
    );
    let mut s: Vec<String> = out.lines().map(str::to_string).collect();
    s.sort();
    s
}

fn expected(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    v.sort();
    v
}

/// Log lines of `server` containing `needle`, once at least `at_least` arrived (or 10 s passed).
fn count(server: &mut Server, needle: &str, at_least: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        while let Ok(l) = server.lines.try_recv() {
            server.seen.push(l);
        }
        let n = server.seen.iter().filter(|l| l.contains(needle)).count();
        if n >= at_least || Instant::now() > end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_nodes_behind_haproxy_share_mail_and_survive_a_node_death() {
    let db = TempDatabase::create("wharf_haproxy");
    let shared = tempfile::tempdir().unwrap();
    let blobs = shared.path().join("blobs");
    let (a, b) = (Env::new(), Env::new());
    for env in [&a, &b] {
        env.write_config(&node_config(&db.url(), &blobs));
    }
    a.ok(&["domain", "add", "example.test"]);
    let out = a.run_with_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let start = |env: &Env| {
        let mut s = Server::start(
            env.path(),
            &["--config", env.config().to_str().unwrap(), "serve"],
        );
        let ports = s.wait_ready();
        let port = |name: &str| ports.iter().find(|(n, _)| n == name).unwrap().1;
        let p = (port("smtp"), port("imaps"));
        (s, p)
    };
    let (mut na, pa) = start(&a);
    // As an operator does: the secrets the nodes share (DKIM and SRS keys) are sealed with the
    // first node's node-state key, which every other node needs (docs/scale-out.md).
    std::fs::create_dir_all(b.data()).unwrap();
    std::fs::copy(a.data().join("state.key"), b.data().join("state.key")).unwrap();
    let (mut nb, pb) = start(&b);
    let lb = haproxy(shared.path(), &[pa, pb]);

    // Round robin: both nodes take mail, and either shows all of it.
    send(lb.smtp, 0, 10);
    let (da, db_) = (
        count(&mut na, "message delivered", 1),
        count(&mut nb, "message delivered", 1),
    );
    assert!(da > 0 && db_ > 0, "both nodes take mail: a {da}, b {db_}");
    assert_eq!(da + db_, 10);
    assert_eq!(subjects(lb.imap), expected(10));
    assert_eq!(
        subjects(lb.imap),
        expected(10),
        "through the other node too"
    );
    // The nodes' own ports expect the PROXY header, so the balancer is the only way in; round
    // robin sent the two sessions to alternate nodes.
    let (ia, ib) = (
        count(&mut na, "authenticated", 1),
        count(&mut nb, "authenticated", 1),
    );
    assert!(ia > 0 && ib > 0, "both nodes served IMAP: a {ia}, b {ib}");

    // Node a dies: the checks take it out, and mail keeps flowing through b.
    na.child.kill().unwrap();
    na.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send(lb.smtp, 10, 4);
    assert_eq!(count(&mut nb, "message delivered", db_ + 4), db_ + 4);
    assert_eq!(subjects(lb.imap), expected(14));
    // Each node's store writer fills the stem index (FUZZY, migration 0026) when idle; b alone now.
    let end = Instant::now() + Duration::from_secs(20);
    let unindexed = || {
        let out = Command::new("psql")
            .args([
                db.url().as_str(),
                "-tAc",
                "SELECT count(*) FROM message_stems_pending",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    while unindexed() != "0" {
        assert!(
            Instant::now() < end,
            "{} messages left unindexed",
            unindexed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fuzzy(lb.imap, "bodies"), 14);
    drop(lb);
    drop(db);
}

/// How many messages of alice's INBOX a FUZZY BODY search for `needle` finds, over IMAPS.
fn fuzzy(port: u16, needle: &str) -> usize {
    imap(
        port,
        r#"
typ, data = m.uid("SEARCH", "FUZZY BODY " + sys.argv[3])
assert typ == "OK", (typ, data)
print(len(data[0].split()))
"#,
        needle,
    )
    .trim()
    .parse()
    .unwrap()
}
