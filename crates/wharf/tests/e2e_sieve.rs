//! Sieve at delivery, between two real `wharf serve` processes on loopback: A (a.test) runs its
//! users' scripts, B (b.test) is the outside world their redirects, vacation replies and
//! rejection notices reach, with a DNS server in the test answering the MX records. Scripts are
//! installed with the CLI (`wharf sieve put`, `wharf vacation set`, `wharf forward set`); mail
//! is sent with Python's smtplib, as another server or a client would.
//!
//! Needs python3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, Server};
use wharf_testkit::{Zone, start_dns};

const PASSWORD: &str = "correct horse battery sieve";

fn node_config(domain: &str, outbound: &str) -> String {
    let mut t = format!(
        "[server]\nhostname = \"mail.{domain}\"\nprimary_domain = \"{domain}\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n\
         [outbound]\nretry_schedule = [1]\npoll_interval = 1\nlease = 30\n{outbound}\n"
    );
    for (proto, tls) in [
        ("smtp", "starttls"),
        ("submission", "implicit"),
        ("managesieve", "starttls"),
    ] {
        t.push_str(&format!(
            "[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"{proto}\"\ntls = \"{tls}\"\n"
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
    fn new(domain: &str, users: &[&str]) -> Node {
        let env = Env::new();
        env.write_config(&node_config(domain, ""));
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

    fn start(&mut self) {
        let mut s = Server::start(
            self.env.path(),
            &["--config", self.env.config().to_str().unwrap(), "serve"],
        );
        self.ports = s.wait_ready();
        self.server = Some(s);
    }

    fn port(&self, name: &str) -> u16 {
        self.ports.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// (raw message, flags) of each message in `user`'s `mailbox`.
    async fn mailbox(&self, user: &str, mailbox: &str) -> Vec<(String, wharf_store::Flags)> {
        let store = self.env.store().await;
        let acct = store
            .get_account_by_address(&format!("{user}@{}", self.domain))
            .await
            .unwrap()
            .unwrap();
        let Some(mbox) = store.get_mailbox(acct.id, mailbox).await.unwrap() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in store.mailbox_index(mbox.id).await.unwrap() {
            let raw = store.message_raw(e.message_id).await.unwrap();
            out.push((String::from_utf8_lossy(&raw).into_owned(), e.flags));
        }
        out
    }

    async fn wait_mailbox(&self, user: &str, mailbox: &str, n: usize) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.mailbox(user, mailbox).await;
            if got.len() >= n || Instant::now() > end {
                return got.into_iter().map(|(m, _)| m).collect();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sends one message to `port` (port 25 role, no AUTH); the server's final reply to DATA.
fn send(port: u16, from: &str, rcpts: &[&str], subject: &str) -> (u16, String) {
    send_with(port, from, rcpts, subject, "")
}

/// `send` with extra header fields (CRLF-ended) in the message.
fn send_with(port: u16, from: &str, rcpts: &[&str], subject: &str, extra: &str) -> (u16, String) {
    let script = r#"
import smtplib, sys
port, sender, subject, extra = sys.argv[1:5]
rcpts = sys.argv[5:]
msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@b.test>\r\n%s"
       "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\nBody of %s.\r\n"
       % (sender or "mailer-daemon@b.test", ", ".join("<%s>" % r for r in rcpts), subject,
          subject.replace(" ", "-"), extra, subject))
with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as s:
    s.ehlo("mail.b.test")
    try:
        s.sendmail(sender, rcpts, msg.encode())
        print("250 ok")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        print(code, text.decode())
"#;
    let mut args = vec![
        "-c".to_string(),
        script.to_string(),
        port.to_string(),
        from.to_string(),
        subject.to_string(),
        extra.to_string(),
    ];
    args.extend(rcpts.iter().map(|r| r.to_string()));
    let out = Command::new("python3")
        .args(&args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (code, rest) = text.split_once(' ').unwrap_or((&text, ""));
    (code.parse().unwrap_or(0), rest.to_string())
}

const SCRIPT: &str = r#"require ["fileinto", "imap4flags", "mailbox", "reject", "copy", "vacation"];
# Mailing lists, read later.
if header :contains "subject" "[list]" {
    fileinto :create :flags "\\Seen" "Lists";
    stop;
}
if header :contains "subject" "go away" {
    reject "no thanks";
    stop;
}
if header :contains "subject" "drop me" {
    discard;
    stop;
}
if header :contains "subject" "pass on" {
    redirect :copy "bob@b.test";
}
vacation :days 1 :subject "Away" "I am away until Monday.";
"#;

#[tokio::test(flavor = "multi_thread")]
async fn scripts_file_refuse_discard_redirect_and_reply() {
    let mut b = Node::new("b.test", &["bob"]);
    b.start();
    let zone = Zone::default()
        .mx("b.test", 10, "mail.b.test")
        .a("mail.b.test", "127.0.0.1");
    let dns = start_dns(zone).await;
    let mut a = Node::new("a.test", &["alice", "carol", "dave"]);
    a.env.write_config(&node_config(
        "a.test",
        &format!(
            "dns_server = \"{dns}\"\nmx_port = {}\nmta_sts = false\n",
            b.port("smtp")
        ),
    ));
    // A broken script is refused with its line and column, and nothing is stored.
    std::fs::write(
        a.env.path().join("bad.sieve"),
        "require \"fileinto\";\nfileinto;\n",
    )
    .unwrap();
    let err = a.env.fails(&[
        "sieve",
        "put",
        "alice@a.test",
        "main",
        a.env.path().join("bad.sieve").to_str().unwrap(),
    ]);
    assert!(err.contains("line 2, column"), "{err}");
    std::fs::write(a.env.path().join("main.sieve"), SCRIPT).unwrap();
    a.env.ok(&[
        "sieve",
        "put",
        "alice@a.test",
        "main",
        a.env.path().join("main.sieve").to_str().unwrap(),
        "--activate",
    ]);
    let listed = a.env.ok(&["sieve", "list", "alice@a.test"]);
    assert!(
        listed.contains("main") && listed.contains("(active)"),
        "{listed}"
    );
    a.start();
    let mx = a.port("smtp");

    // fileinto :create with imap4flags.
    assert_eq!(
        send(mx, "bob@b.test", &["alice@a.test"], "[list] news").0,
        250
    );
    let lists = a.mailbox("alice", "Lists").await;
    assert_eq!(lists.len(), 1, "filed into Lists");
    assert!(lists[0].1.contains(wharf_store::Flags::SEEN));
    assert!(a.mailbox("alice", "INBOX").await.is_empty());

    // reject, the only recipient: the SMTP reply carries it.
    let (code, text) = send(mx, "bob@b.test", &["alice@a.test"], "go away");
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("5.7.1") && text.contains("no thanks"),
        "{text}"
    );

    // discard: accepted, stored nowhere.
    assert_eq!(send(mx, "bob@b.test", &["alice@a.test"], "drop me").0, 250);

    // Kept, and one vacation reply per sender per period.
    assert_eq!(
        send(mx, "bob@b.test", &["alice@a.test"], "hello one").0,
        250
    );
    assert_eq!(
        send(mx, "bob@b.test", &["alice@a.test"], "hello two").0,
        250
    );
    let inbox = a.mailbox("alice", "INBOX").await;
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    let replies = b.wait_mailbox("bob", "INBOX", 1).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = &replies[0];
    assert!(reply.contains("Subject: Away\r\n"), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(reply.contains("In-Reply-To: <hello-one@b.test>"), "{reply}");
    assert!(reply.contains("I am away until Monday."), "{reply}");
    // The reply's envelope sender is null (RFC 5230 §5.1).
    assert!(reply.starts_with("Return-Path: <>"), "{reply}");
    // Bulk and list mail gets no reply, even from a sender not yet answered.
    assert_eq!(
        send_with(
            mx,
            "news@b.test",
            &["alice@a.test"],
            "bulk news",
            "Precedence: bulk\r\n"
        )
        .0,
        250
    );
    assert_eq!(
        send_with(
            mx,
            "list@b.test",
            &["alice@a.test"],
            "list post",
            "List-Id: <l.b.test>\r\n"
        )
        .0,
        250
    );

    // redirect :copy through the queue, with the envelope sender rewritten by SRS.
    assert_eq!(send(mx, "bob@b.test", &["alice@a.test"], "pass on").0, 250);
    let got = b.wait_mailbox("bob", "INBOX", 2).await;
    let fwd = got
        .iter()
        .find(|m| m.contains("Subject: pass on"))
        .expect("redirected copy at B");
    let return_path = fwd.lines().next().unwrap();
    assert!(
        return_path.starts_with("Return-Path: <SRS0=")
            && return_path.ends_with("=b.test=bob@a.test>"),
        "{return_path}"
    );
    assert_eq!(a.mailbox("alice", "INBOX").await.len(), 5, ":copy keeps");

    // A bounce to the SRS address goes back to the original sender; a forged one is refused.
    let srs = return_path
        .trim_start_matches("Return-Path: <")
        .trim_end_matches('>')
        .to_string();
    assert_eq!(send(mx, "", &[&srs], "bounce back").0, 250);
    let got = b.wait_mailbox("bob", "INBOX", 3).await;
    assert!(
        got.iter().any(|m| m.contains("Subject: bounce back")),
        "{got:?}"
    );
    let forged = srs.replacen("SRS0=", "SRS0=x", 1);
    assert_eq!(send(mx, "", &[&forged], "forged").0, 550);
    // Only bounces (null sender) may use it: otherwise it would relay to the original sender.
    assert_eq!(send(mx, "spammer@b.test", &[&srs], "relay me").0, 550);

    // reject with another local recipient: that one gets the message, the sender a notice.
    let (code, _) = send(
        mx,
        "bob@b.test",
        &["alice@a.test", "carol@a.test"],
        "go away now",
    );
    assert_eq!(code, 250);
    assert_eq!(a.mailbox("carol", "INBOX").await.len(), 1);
    let got = b.wait_mailbox("bob", "INBOX", 4).await;
    let notice = got
        .iter()
        .find(|m| m.contains("disposition-notification"))
        .expect("rejection notice at B");
    assert!(notice.contains("no thanks"), "{notice}");
    assert!(notice.contains("Subject: go away now"), "{notice}");

    // The simple forms: vacation with an end date, and forwarding without a copy.
    let out = a.env.run_with_stdin(
        &[
            "vacation",
            "set",
            "carol@a.test",
            "--subject",
            "Out of office",
            "--body-file",
            "-",
            "--until",
            "2099-12-31",
        ],
        "Carol is out.\n",
    );
    assert!(out.status.success(), "{out:?}");
    let shown = a.env.ok(&["vacation", "show", "carol@a.test"]);
    assert!(
        shown.contains("2099-12-31") && shown.contains("Carol is out."),
        "{shown}"
    );
    a.env.ok(&["forward", "set", "dave@a.test", "bob@b.test"]);
    assert_eq!(
        send(mx, "bob@b.test", &["carol@a.test"], "for carol").0,
        250
    );
    assert_eq!(send(mx, "bob@b.test", &["dave@a.test"], "for dave").0, 250);
    let got = b.wait_mailbox("bob", "INBOX", 6).await;
    assert!(
        got.iter()
            .any(|m| m.contains("Subject: Out of office") && m.contains("Carol is out.")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|m| m.contains("Subject: for dave")),
        "{got:?}"
    );
    assert!(
        a.mailbox("dave", "INBOX").await.is_empty(),
        "forwarded without a copy"
    );
    assert_eq!(a.mailbox("carol", "INBOX").await.len(), 2);
    // Clearing the last rule leaves no script behind.
    a.env.ok(&["forward", "clear", "dave@a.test"]);
    let listed = a.env.ok(&["sieve", "list", "dave@a.test"]);
    assert!(listed.contains("no Sieve script"), "{listed}");
}

/// A user uploads and activates a script with a real ManageSieve client (sievelib) on the
/// server's own listener, and the next delivery follows it.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_uploaded_over_managesieve_filters_the_next_message() {
    let mut a = Node::new("a.test", &["alice"]);
    a.start();
    let script = r#"
import ssl, sys
make = ssl.create_default_context
def unverified(*args, **kwargs):
    # The test server's certificate is self-signed for mail.a.test.
    c = make(*args, **kwargs)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c
ssl.create_default_context = unverified
from sievelib.managesieve import Client
port, user, password = sys.argv[1:4]
c = Client("127.0.0.1", int(port))
assert c.connect(user, password, starttls=True, authmech="PLAIN"), c.errmsg
caps = c.get_sieve_capabilities()
assert "fileinto" in caps and "vacation" in caps, caps
assert not c.putscript("broken", 'require "fileinto";\nfileinto;\n')
print("error:", c.errmsg.decode())
assert c.putscript("main", 'require "fileinto";\nif header :contains "subject" "report" { fileinto "Reports"; }\n'), c.errmsg
assert c.setactive("main"), c.errmsg
c.logout()
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &a.port("managesieve").to_string(),
            "alice@a.test",
            PASSWORD,
        ])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sievelib: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("line 2, column"), "{stdout}");
    let store = a.env.store().await;
    let acct = store
        .get_account_by_address("alice@a.test")
        .await
        .unwrap()
        .unwrap();
    store
        .create_mailbox(acct.id, "Reports", None)
        .await
        .unwrap();
    drop(store);
    assert_eq!(
        send(
            a.port("smtp"),
            "bob@b.test",
            &["alice@a.test"],
            "weekly report"
        )
        .0,
        250
    );
    assert_eq!(a.mailbox("alice", "Reports").await.len(), 1);
    assert!(a.mailbox("alice", "INBOX").await.is_empty());
}

/// Two users redirecting to each other: the message is delivered once, to the user whose script
/// would have sent it round again, and the loop is logged.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_loop_between_two_users_ends_with_one_delivery() {
    let mut a = Node::new("a.test", &["alice", "carol"]);
    a.env
        .ok(&["forward", "set", "alice@a.test", "carol@a.test"]);
    a.env
        .ok(&["forward", "set", "carol@a.test", "alice@a.test"]);
    a.start();
    assert_eq!(
        send(
            a.port("smtp"),
            "bob@b.test",
            &["alice@a.test"],
            "round and round"
        )
        .0,
        250
    );
    let alice = a.mailbox("alice", "INBOX").await;
    let carol = a.mailbox("carol", "INBOX").await;
    assert_eq!(
        alice.len() + carol.len(),
        1,
        "alice {alice:?} carol {carol:?}"
    );
    assert_eq!(alice.len(), 1, "kept by alice, whose redirect would repeat");
    let server = a.server.as_mut().unwrap();
    let logged = server
        .seen
        .iter()
        .any(|l| l.contains("Sieve redirect loop"))
        || server
            .wait_for("Sieve redirect loop", Duration::from_secs(10))
            .is_some();
    assert!(logged, "the loop is logged");
}
