//! Outbound mail between two real `wharf serve` processes on loopback (A for a.test, B for
//! b.test) with a DNS server in the test answering their MX, A and DKIM records: submission on A
//! to a user of B arrives in B's INBOX over STARTTLS with A's two DKIM signatures passing; a 5xx
//! from B comes back to the sender's INBOX on A as an RFC 3464 report; B down while A is killed
//! with -9 still ends with every message delivered exactly once; and A relaying through B's
//! submission port as a smarthost with AUTH. `wharf queue` shows and acts on A's queue.
//!
//! Needs python3 (smtplib submits, as a mail client would).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, Server};
use mail_auth::DkimResult;
use wharf_testkit::tls::{TestCert, https_sink};
use wharf_testkit::{Zone, dkim_results, start_dns};

const PASSWORD: &str = "correct horse battery outbound";

/// A node's config: every mail listener on an ephemeral 127.0.0.1 port (or `smtp_port`), the
/// outbound side pointed at the test DNS server, retries every second.
fn node_config(domain: &str, smtp_port: u16, outbound: &str) -> String {
    let mut t = format!(
        "[server]\nhostname = \"mail.{domain}\"\nprimary_domain = \"{domain}\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n\
         [outbound]\nretry_schedule = [1]\npoll_interval = 1\nlease = 30\n{outbound}\n"
    );
    for (proto, tls, port) in [
        ("smtp", "starttls", smtp_port),
        ("submission", "starttls", 0),
        ("submission", "implicit", 0),
        ("imap", "implicit", 0),
    ] {
        t.push_str(&format!(
            "[[listener]]\naddress = \"127.0.0.1\"\nport = {port}\nprotocol = \"{proto}\"\ntls = \"{tls}\"\n"
        ));
    }
    t
}

struct Node {
    env: Env,
    domain: String,
    server: Option<Server>,
    ports: Vec<(String, u16)>,
}

impl Node {
    /// Data folder with the domain and its users; not running yet.
    fn new(domain: &str, users: &[&str]) -> Node {
        let env = Env::new();
        env.write_config(&node_config(domain, 0, ""));
        env.ok(&["domain", "add", domain]);
        for u in users {
            let out = env.run_with_stdin(
                &["user", "add", &format!("{u}@{domain}"), "--password-stdin"],
                &format!("{PASSWORD}\n"),
            );
            assert!(out.status.success(), "{out:?}");
        }
        Node {
            env,
            domain: domain.to_string(),
            server: None,
            ports: Vec::new(),
        }
    }

    fn configure(&self, smtp_port: u16, outbound: &str) {
        self.env
            .write_config(&node_config(&self.domain, smtp_port, outbound));
    }

    fn start(&mut self) {
        assert!(self.server.is_none());
        let mut s = Server::start(
            self.env.path(),
            &["--config", self.env.config().to_str().unwrap(), "serve"],
        );
        self.ports = s.wait_ready();
        self.server = Some(s);
    }

    fn stop(&mut self) {
        let mut s = self.server.take().expect("running");
        s.sigterm();
        let st = s.wait_exit(Duration::from_secs(60)).expect("exits");
        assert!(st.success(), "{}", s.rest_of_stderr(Duration::from_secs(1)));
    }

    fn kill9(&mut self) {
        let mut s = self.server.take().expect("running");
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }

    /// The port of the first listener named `name` (`smtp`, `submission`, `submissions`).
    fn port(&self, name: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.ports))
            .1
    }

    fn log_has(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let s = self.server.as_mut().expect("running");
        if let Some(l) = s.seen.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        s.wait_for(needle, timeout)
    }

    /// The raw messages in `user`'s INBOX, read from the store as IMAP would serve them.
    async fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        let store = self.env.store().await;
        let address = format!("{user}@{}", self.domain);
        let acct = store
            .get_account_by_address(&address)
            .await
            .unwrap()
            .unwrap();
        let mbox = store.get_mailbox(acct.id, "INBOX").await.unwrap().unwrap();
        let mut out = Vec::new();
        for e in store.mailbox_index(mbox.id).await.unwrap() {
            out.push(store.message_raw(e.message_id).await.unwrap().to_vec());
        }
        out
    }

    /// Polls `user`'s INBOX until it holds `n` messages.
    async fn wait_inbox(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.inbox(user).await;
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Submits one message over implicit TLS with AUTH PLAIN, as a mail client does.
fn submit(port: u16, user: &str, to: &str, subject: &str) {
    let script = r#"
import smtplib, ssl, sys
port, user, password, to, subject = sys.argv[1:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n"
       "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nHello from %s.\r\n.leading dot\r\n"
       % (user, to, subject, subject, user))
with smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=30) as s:
    s.login(user, password)
    refused = s.sendmail(user, [to], msg.encode())
    assert not refused, refused
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), user, PASSWORD, to, subject])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "submission failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dkim_records(env: &Env, domain: &str) -> Vec<(String, String)> {
    let mut records = Vec::new();
    for (sel, algo) in [("ed", "ed25519"), ("rsa", "rsa")] {
        let out = env.ok(&[
            "dkim",
            "generate",
            domain,
            "--selector",
            sel,
            "--algo",
            algo,
        ]);
        let name = line_value(&out, "name:");
        let value = line_value(&out, "value:");
        records.push((name, value));
    }
    records
}

fn line_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn outbound_keys(dns: std::net::SocketAddr, mx_port: u16) -> String {
    format!("dns_server = \"{dns}\"\nmx_port = {mx_port}\nmta_sts = false\n")
}

fn queue_cmd(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["queue"];
    all.extend_from_slice(args);
    env.ok(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn submission_on_a_reaches_b_over_starttls_dkim_signed_and_5xx_bounces_home() {
    let mut b = Node::new("b.test", &["bob"]);
    b.start();
    let mut a = Node::new("a.test", &["alice"]);
    let keys = dkim_records(&a.env, "a.test");
    // b.test takes its TLS-RPT reports by mail and by HTTPS POST (RFC 8460 §3).
    let report_cert = TestCert::new("tlsrpt.b.test", &[]);
    let (report_port, mut posted) = https_sink(&report_cert, "200 OK").await;
    let mut zone = Zone::default()
        .mx("b.test", 10, "mail.b.test")
        .a("mail.b.test", "127.0.0.1")
        .a("tlsrpt.b.test", "127.0.0.1")
        .txt(
            "_smtp._tls.b.test",
            &format!(
                "v=TLSRPTv1; rua=mailto:tlsrpt@b.test,https://tlsrpt.b.test:{report_port}/v1/tlsrpt"
            ),
        );
    for (name, value) in &keys {
        zone = zone.txt(name, value);
    }
    let dns = start_dns(zone).await;
    // A counts its TLS sessions for TLS-RPT (RFC 8460) reports to the domains it sends to.
    let ca_file = report_cert.write_pem(a.env.path());
    a.configure(
        0,
        &format!(
            "{}ca_file = \"{}\"\n[reports]\ntls_rpt = true",
            outbound_keys(dns, b.port("smtp")),
            ca_file.display()
        ),
    );
    a.start();

    submit(a.port("submissions"), "alice@a.test", "bob@b.test", "first");
    let got = b
        .wait_inbox("bob", 1, Duration::from_secs(30))
        .await
        .into_iter()
        .next()
        .expect("delivered to bob on B");
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(
        text.contains("by mail.b.test (Wharf) with ESMTPS"),
        "{text}"
    );
    assert!(text.contains("\r\n.leading dot\r\n"), "{text}");
    let results = dkim_results(dns, &got).await;
    assert_eq!(
        results,
        vec![DkimResult::Pass, DkimResult::Pass],
        "ed25519 and RSA signatures verify on arrival: {text}"
    );
    let line = a
        .log_has("delivery attempt", Duration::from_secs(5))
        .expect("one log line per delivery attempt");
    for field in ["bob@b.test", "mail.b.test", "TLSv1.3", "250"] {
        assert!(line.contains(field), "{field} missing in: {line}");
    }

    // B refuses an unknown user with 5xx: alice finds the report in her own INBOX on A.
    submit(
        a.port("submissions"),
        "alice@a.test",
        "nobody@b.test",
        "second",
    );
    let reports = a.wait_inbox("alice", 1, Duration::from_secs(30)).await;
    assert_eq!(reports.len(), 1, "one DSN for alice");
    let dsn = String::from_utf8_lossy(&reports[0]).to_string();
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed\r\nStatus: 5.1.1"), "{dsn}");
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert_eq!(b.inbox("bob").await.len(), 1, "nothing else reached bob");
    assert_eq!(
        queue_cmd(&a.env, &["list"]),
        "the queue is empty\n",
        "delivered and bounced entries leave the queue"
    );
    a.stop();
    b.stop();

    // The day's TLS-RPT report for b.test: its sessions, negotiated with TLS (B's certificate
    // is self-signed and b.test publishes no MTA-STS or DANE policy: "no-policy-found").
    let saved = a.env.path().join("saved");
    let out = a.env.ok(&[
        "report",
        "send",
        "--day",
        "today",
        "--save",
        saved.to_str().unwrap(),
    ]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("tlsrpt b.test: 1 policies queued as ")
                && l.ends_with("to tlsrpt@b.test")),
        "{out}"
    );
    let file = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("!b.test!"))
        .expect("the report document");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let policy = &json["policies"][0];
    assert_eq!(policy["policy"]["policy-type"], "no-policy-found", "{json}");
    assert_eq!(policy["policy"]["policy-domain"], "b.test", "{json}");
    let ok = policy["summary"]["total-successful-session-count"]
        .as_u64()
        .unwrap();
    assert!(ok >= 1, "{json}");
    assert_eq!(
        policy["summary"]["total-failure-session-count"], 0,
        "{json}"
    );
    assert_eq!(json["organization-name"], "a.test", "{json}");
    assert!(queue_cmd(&a.env, &["list"]).contains("tlsrpt@b.test"));
    // The same report, posted gzipped to the https: destination, its certificate verified.
    assert!(
        out.lines().any(|l| l
            == format!(
                "tlsrpt b.test: 1 policies posted to https://tlsrpt.b.test:{report_port}/v1/tlsrpt (HTTP 200)"
            )),
        "{out}"
    );
    let post = posted.try_recv().expect("one POST");
    assert!(
        post.head.starts_with("POST /v1/tlsrpt HTTP/1.1\r\n"),
        "{}",
        post.head
    );
    assert!(
        post.head
            .contains("\r\nContent-Type: application/tlsrpt+gzip\r\n"),
        "{}",
        post.head
    );
    let mut json = String::new();
    std::io::Read::read_to_string(
        &mut mail_auth::flate2::read::GzDecoder::new(&post.body[..]),
        &mut json,
    )
    .unwrap();
    let posted_json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let saved_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        posted_json, saved_json,
        "the posted report is the saved one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destination_down_and_sender_killed_still_delivers_each_message_once() {
    let mut b = Node::new("b.test", &["bob"]);
    let b_port = free_port();
    b.configure(b_port, "");
    let mut a = Node::new("a.test", &["alice"]);
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mail.b.test")
            .a("mail.b.test", "127.0.0.1"),
    )
    .await;
    a.configure(0, &outbound_keys(dns, b_port));
    a.start();
    for i in 0..5 {
        submit(
            a.port("submissions"),
            "alice@a.test",
            "bob@b.test",
            &format!("queued{i}"),
        );
    }
    // Every attempt fails while B is down; the entries stay queued with the reason.
    a.log_has("connection failed", Duration::from_secs(20))
        .expect("the failed attempt is logged");
    let list = queue_cmd(&a.env, &["list"]);
    assert!(list.contains("5 entries"), "{list}");
    let first_id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let shown = queue_cmd(&a.env, &["show", &first_id]);
    assert!(shown.contains("pending   bob@b.test"), "{shown}");
    assert!(shown.contains("sender:       alice@a.test"), "{shown}");
    a.kill9();

    // B comes up, A restarts after the crash and drains its queue.
    b.start();
    a.start();
    let got = b.wait_inbox("bob", 5, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 5);
    // Give a duplicate the chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = b.inbox("bob").await;
    let mut subjects: Vec<String> = got
        .iter()
        .map(|raw| {
            let t = String::from_utf8_lossy(raw);
            line_value(&t, "Subject:")
        })
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["queued0", "queued1", "queued2", "queued3", "queued4"],
        "each message exactly once"
    );
    assert_eq!(queue_cmd(&a.env, &["list"]), "the queue is empty\n");
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn smarthost_with_auth_through_b_submission() {
    let mut b = Node::new("b.test", &["bob", "relay"]);
    // B lets an account send only as addresses it owns: its admin grants alice@a.test to the
    // relay account with an alias (there is no "may relay for a domain" permission yet).
    b.env.ok(&["domain", "add", "a.test"]);
    b.env.ok(&["alias", "add", "alice@a.test", "relay@b.test"]);
    b.start();
    let mut a = Node::new("a.test", &["alice"]);
    // No MX for anything: only the relay can get mail out.
    let dns = start_dns(Zone::default().a("mail.b.test", "127.0.0.1")).await;
    std::fs::write(a.env.path().join("relay.pw"), format!("{PASSWORD}\n")).unwrap();
    let cafile = b.env.data().join("tls").join("cert.pem");
    let relay = format!(
        "dns_server = \"{dns}\"\nca_file = \"{}\"\n[outbound.relayhost]\nhost = \"mail.b.test\"\nport = {}\n\
         username = \"relay@b.test\"\npassword_file = \"relay.pw\"\ntls = \"required\"\n",
        cafile.display(),
        b.port("submission")
    );
    a.configure(0, &relay);
    a.start();
    submit(
        a.port("submissions"),
        "alice@a.test",
        "bob@b.test",
        "relayed",
    );
    let got = b.wait_inbox("bob", 1, Duration::from_secs(30)).await;
    if got.len() != 1 {
        let log = a
            .server
            .as_mut()
            .unwrap()
            .rest_of_stderr(Duration::from_secs(1));
        panic!("not relayed; A's log:\n{log}");
    }
    let text = String::from_utf8_lossy(&got[0]).to_string();
    // Authenticated submission on B over TLS.
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(text.contains("Subject: relayed"));
    a.stop();
    b.stop();
}

#[test]
fn queue_verbs_on_an_empty_store_and_bad_ids() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    assert_eq!(queue_cmd(&env, &["list"]), "the queue is empty\n");
    let e = env.fails(&["queue", "show", "abc"]);
    assert!(e.contains("not a queue id"), "{e}");
    let e = env.fails(&["queue", "drop", "42"]);
    assert!(e.contains("no queue entry 42"), "{e}");
    let e = env.fails(&["queue", "retry"]);
    assert!(e.contains("--all"), "{e}");
    assert!(queue_cmd(&env, &["retry", "--all"]).starts_with("0 entries"));
}

/// A receiving MTA on loopback that counts a message once the sender has gone on after its
/// 250 (next MAIL, RSET, NOOP or QUIT): a sender killed while waiting for the 250 never saw it
/// and must send the message again, so that copy does not count. Each end of DATA is reported on
/// `dots` and answered only after `reply_delay`, the window a test kills the sender in (with
/// one connection at a time, the sender is then always waiting for that 250; RFC 1047's window
/// after it, which no sender can close, is never hit).
struct CountingSink {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>,
    dots: std::sync::mpsc::Receiver<String>,
}

impl CountingSink {
    fn start(port: u16, reply_delay: Duration) -> CountingSink {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let (tx, dots) = std::sync::mpsc::channel();
        let shared = counts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let counts = shared.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    let mut acked: Option<String> = None;
                    let count_acked = |acked: &mut Option<String>| {
                        if let Some(s) = acked.take() {
                            *counts.lock().unwrap().entry(s).or_insert(0) += 1;
                        }
                    };
                    if w.write_all(b"220 sink ESMTP\r\n").is_err() {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return; // gone: a 250 it may not have read is not counted
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "MAIL" | "RSET" | "NOOP" => {
                                count_acked(&mut acked);
                                b"250 ok\r\n"
                            }
                            "RCPT" => b"250 ok\r\n",
                            "QUIT" => {
                                count_acked(&mut acked);
                                let _ = w.write_all(b"221 bye\r\n");
                                return;
                            }
                            "DATA" => {
                                if w.write_all(b"354 go\r\n").is_err() {
                                    return;
                                }
                                let mut subject = String::new();
                                loop {
                                    let mut l = String::new();
                                    if r.read_line(&mut l).unwrap_or(0) == 0 {
                                        return;
                                    }
                                    if l == ".\r\n" {
                                        break;
                                    }
                                    if let Some(s) = l.strip_prefix("Subject: ") {
                                        subject = s.trim().to_string();
                                    }
                                }
                                let _ = tx.send(subject.clone());
                                std::thread::sleep(reply_delay);
                                if w.write_all(b"250 2.0.0 queued\r\n").is_err() {
                                    return;
                                }
                                acked = Some(subject);
                                continue;
                            }
                            _ => b"502 no\r\n",
                        };
                        if w.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        CountingSink { counts, dots }
    }
}

/// Submits `n` messages (`Subject: {prefix}{i}`) over one submission session.
fn submit_many(port: u16, user: &str, to: &str, prefix: &str, n: usize) {
    let script = r#"
import smtplib, ssl, sys
port, user, password, to, prefix, n = sys.argv[1:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=30) as s:
    s.login(user, password)
    for i in range(int(n)):
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s%d\r\nMessage-ID: <%s%d@test>\r\n"
               "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n" % (user, to, prefix, i, prefix, i))
        assert not s.sendmail(user, [to], msg.encode())
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            user,
            PASSWORD,
            to,
            prefix,
            &n.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "submission failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 19 item 4: the delivering node is killed with -9 in the middle of its rounds, 20
/// times; the receiver counts every message exactly once (no duplicate of a message whose 250
/// the sender saw, no loss), because each recipient's result is recorded as it happens and a
/// dead node's leases, kept alive only by its heartbeat, run out within seconds.
#[tokio::test(flavor = "multi_thread")]
async fn sender_killed_mid_round_20_times_sends_each_message_exactly_once() {
    const MESSAGES: usize = 80;
    const KILLS: usize = 20;
    let sink_port = free_port();
    let mut a = Node::new("a.test", &["alice"]);
    let dns = start_dns(
        Zone::default()
            .mx("c.test", 10, "mail.c.test")
            .a("mail.c.test", "127.0.0.1"),
    )
    .await;
    // Leases of 2 s (renewed every second while a round runs), so a dead node's mail waits
    // seconds, not the default minute; one connection, so a kill always finds it waiting.
    let config = node_config(
        "a.test",
        0,
        &format!(
            "{}max_connections_per_domain = 1\n",
            outbound_keys(dns, sink_port)
        ),
    )
    .replace("lease = 30\n", "lease = 2\n");
    a.env.write_config(&config);
    // Everything queued first, while the receiver is not up yet.
    a.start();
    submit_many(
        a.port("submissions"),
        "alice@a.test",
        "rcpt@c.test",
        "m",
        MESSAGES,
    );
    let sink = CountingSink::start(sink_port, Duration::from_millis(150));
    for round in 0..KILLS {
        if a.server.is_none() {
            a.start();
        }
        // Let a few messages of this round be answered, then kill the sender while it waits for
        // the next 250.
        let wanted = 2 + round % 3;
        for _ in 0..wanted {
            sink.dots
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("round {round}: no delivery"));
        }
        a.kill9();
        // Drain dots of transactions cut by the kill.
        while sink.dots.try_recv().is_ok() {}
    }
    a.start();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = queue_cmd(&a.env, &["list"]);
        if list == "the queue is empty\n" {
            break;
        }
        assert!(Instant::now() < deadline, "queue never drained: {list}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    a.stop();
    let counts = sink.counts.lock().unwrap().clone();
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "sent twice: {duplicates:?}");
    let expected: std::collections::BTreeSet<String> =
        (0..MESSAGES).map(|i| format!("m{i}")).collect();
    let got: std::collections::BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(got, expected, "every message delivered");
}
