//! Configuration reload of a running `wharf serve`, by SIGHUP and by `POST /api/v1/reload`,
//! under a live IMAP session: changed `[limits]` apply to new connections while the session
//! (logged in, idling) goes on with NOOP, SELECT and FETCH; a broken file is refused (422) and
//! the running limits stay; the API needs an admin or a `write` token (401/403); a DKIM key
//! added and another removed on disk sign the next submitted message after a reload, as the
//! SMTP server standing in for the remote MX sees it.
//!
//! The mail clients connect from 127.0.0.2, so the per-address limit they test does not count
//! the API's own connections (curl, from 127.0.0.1). Needs curl and python3 (smtplib).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{Env, PASSWORD, Server};
use serde_json::Value;

const HOST: &str = "mail.example.test";
const ADMIN: &str = "boss@example.test";
const USER: &str = "plain@example.test";
/// The source address of the IMAP clients.
const CLIENT_IP: &str = "127.0.0.2";
const TOO_BUSY: &str = "* BYE [UNAVAILABLE] Too many connections";

fn config(limits: &str, extra: &str) -> String {
    format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\npre_auth_timeout = 0\n{limits}\n[inbound]\nenabled = false\n\
         [imap]\nallow_plaintext_auth_on_loopback = true\n\
         [directory]\nauth_fail_delay_base = 0\nauth_fail_max_delay = 0\n\
         [[listener]]\nname = \"imap\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"none\"\n\
         [[listener]]\nname = \"https\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\ntls = \"none\"\n\
         {extra}"
    )
}

/// A TCP connection to 127.0.0.1:`port` from `CLIENT_IP`.
fn connect_from_client_ip(port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{CLIENT_IP}:0").parse().unwrap())
            .unwrap();
        sock.connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

struct Imap {
    w: TcpStream,
    r: BufReader<TcpStream>,
    greeting: String,
}

impl Imap {
    fn open(port: u16) -> Imap {
        let w = connect_from_client_ip(port);
        let mut r = BufReader::new(w.try_clone().unwrap());
        let mut greeting = String::new();
        r.read_line(&mut greeting).unwrap();
        Imap { w, r, greeting }
    }

    /// Sends `tag cmd` and returns every line up to the tagged one, which must be OK.
    fn ok(&mut self, tag: &str, cmd: &str) -> String {
        let all = self.cmd(tag, cmd);
        let last = all.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("{tag} OK")), "{cmd}: {all}");
        all
    }

    fn cmd(&mut self, tag: &str, cmd: &str) -> String {
        write!(self.w, "{tag} {cmd}\r\n").unwrap();
        self.until_tagged(tag)
    }

    fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(self.r.read_line(&mut line).unwrap() > 0, "closed: {all}");
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        line
    }

    /// Logged in, INBOX selected, with one message appended.
    fn logged_in(port: u16, user: &str) -> Imap {
        let mut c = Imap::open(port);
        assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
        c.ok("a1", &format!("LOGIN {user} \"{PASSWORD}\""));
        let msg = "From: <a@example.test>\r\nSubject: kept\r\n\r\nstill here\r\n";
        write!(c.w, "a2 APPEND INBOX {{{}}}\r\n", msg.len()).unwrap();
        assert!(c.line().starts_with('+'));
        write!(c.w, "{msg}\r\n").unwrap();
        let done = c.until_tagged("a2");
        assert!(done.contains("a2 OK"), "{done}");
        c.ok("a3", "SELECT INBOX");
        c
    }

    /// IDLE until `during` has run, then DONE: the session sat through it.
    fn idle_through(&mut self, during: impl FnOnce()) {
        write!(self.w, "i1 IDLE\r\n").unwrap();
        assert!(self.line().starts_with('+'));
        during();
        write!(self.w, "DONE\r\n").unwrap();
        let done = self.until_tagged("i1");
        assert!(done.contains("i1 OK"), "{done}");
    }

    /// NOOP, SELECT and FETCH still answer as before.
    fn still_works(&mut self) {
        self.ok("n1", "NOOP");
        let sel = self.ok("n2", "SELECT INBOX");
        assert!(sel.contains("EXISTS"), "{sel}");
        let fetched = self.ok("n3", "FETCH 1 (BODY[])");
        assert!(fetched.contains("still here"), "{fetched}");
    }
}

/// A new IMAP connection from `CLIENT_IP` is turned away by a connection limit.
fn refused(port: u16) -> bool {
    let mut c = Imap::open(port);
    if c.greeting.starts_with(TOO_BUSY) {
        let mut rest = String::new();
        let _ = c.r.read_to_string(&mut rest);
        return true;
    }
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    false
}

/// An SMTP session on `port`; `ehlo` returns the SIZE it advertises.
struct Smtp {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Smtp {
    fn open(port: u16) -> Smtp {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = BufReader::new(w.try_clone().unwrap());
        assert!(common::smtp_reply(&mut r).starts_with("220"));
        Smtp { w, r }
    }

    fn ehlo_size(&mut self) -> u64 {
        self.w.write_all(b"EHLO client.test\r\n").unwrap();
        let reply = common::smtp_reply(&mut self.r);
        reply
            .lines()
            .find_map(|l| l.get(4..)?.strip_prefix("SIZE "))
            .unwrap_or_else(|| panic!("no SIZE in {reply}"))
            .trim()
            .parse()
            .unwrap()
    }
}

fn hup(server: &Server) {
    let st = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sighup_applies_limits_under_a_live_imap_session() {
    let env = Env::new();
    env.write_config(&config("max_connections = 100\nmax_per_ip = 10", ""));
    env.add_user(USER);
    let (mut server, ready) = env.serve();
    let imap = ready.port("imap");
    let mut session = Imap::logged_in(imap, USER);
    let mut smtp_before = Smtp::open(ready.port("smtp"));
    assert_eq!(smtp_before.ehlo_size(), 52_428_800);

    // The global cap lowered below the two sessions running: they go on, a newcomer is refused.
    env.write_config(&config("max_connections = 1\nmax_per_ip = 1", ""));
    session.idle_through(|| {
        hup(&server);
        let line = server
            .wait_for("configuration reloaded", Duration::from_secs(20))
            .expect("reload logged");
        assert!(line.contains("limits"), "{line}");
        assert!(!line.contains("restart"), "nothing needs a restart: {line}");
    });
    session.still_works();
    assert!(refused(imap), "a new connection sees the cap of 1");
    server
        .wait_for("server connection limit", Duration::from_secs(10))
        .expect("refused by the global cap");
    session.still_works();

    // Per address: raised cap, one more from the same address, then no more. The message size
    // limit applies to the next SMTP session; the one already open keeps its own.
    env.write_config(&config(
        "max_connections = 100\nmax_per_ip = 2\nmax_message_size = 1000000",
        "",
    ));
    hup(&server);
    let line = server
        .wait_for("configuration reloaded", Duration::from_secs(20))
        .expect("reload logged");
    assert!(line.contains("smtp"), "{line}");
    assert_eq!(Smtp::open(ready.port("smtp")).ehlo_size(), 1_000_000);
    assert_eq!(smtp_before.ehlo_size(), 52_428_800);
    let mut second = Imap::open(imap);
    assert!(second.greeting.starts_with("* OK"), "{}", second.greeting);
    assert!(refused(imap), "a third from one address is refused");
    second.ok("s1", "NOOP");
    session.still_works();

    // A change only read at start is named, and stays named until the restart.
    env.write_config(&config(
        "max_connections = 100\nmax_per_ip = 2\nmax_message_size = 1000000",
        "[pop3]\nidle_timeout_secs = 100\n",
    ));
    hup(&server);
    let line = server
        .wait_for("need a restart", Duration::from_secs(20))
        .expect("restart named");
    assert!(line.contains("pop3"), "{line}");
    session.ok("z1", "LOGOUT");
    second.ok("z2", "LOGOUT");
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
}

struct Api {
    port: u16,
    cacert: String,
}

enum Auth<'a> {
    None,
    Basic(&'a str),
    Bearer(&'a str),
}

impl Api {
    fn reload(&self, auth: Auth) -> (u16, Value) {
        let url = format!("https://{HOST}:{}/api/v1/reload", self.port);
        let resolve = format!("{HOST}:{}:127.0.0.1", self.port);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert", &self.cacert])
            .args(["--resolve", &resolve, "-X", "POST"])
            .args(["-o", "-", "-w", "\n%{http_code}"]);
        match auth {
            Auth::None => {}
            Auth::Basic(user) => {
                cmd.args(["-u", &format!("{user}:{PASSWORD}")]);
            }
            Auth::Bearer(t) => {
                cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
            }
        }
        let out = cmd.arg(&url).output().expect("curl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status.parse().unwrap(), json)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn token(env: &Env, name: &str, scope: &str) -> String {
    let out = env.ok(&["token", "create", name, "--scope", scope]);
    out.split("shown only this once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn api_reload_reports_applies_and_keeps_the_running_settings_on_a_broken_file() {
    let env = Env::new();
    env.write_config(&config("max_per_ip = 1", ""));
    env.add_user(ADMIN);
    env.add_user(USER);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    let read_only = token(&env, "ro", "read");
    let writer = token(&env, "rw", "read,write");
    let (mut server, ready) = env.serve();
    let imap = ready.port("imap");
    let api = Api {
        port: ready.port("https"),
        cacert: env.data().join("tls/cert.pem").display().to_string(),
    };
    let mut session = Imap::logged_in(imap, USER);
    assert!(refused(imap), "one connection per address");

    // Who may reload: nobody anonymous, no plain account, no read-only token.
    let (status, body) = api.reload(Auth::None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = api.reload(Auth::Basic(USER));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = api.reload(Auth::Bearer(&read_only));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // An admin's reload applies the raised limit to the next connection.
    env.write_config(&config("max_per_ip = 2", ""));
    let (status, report) = api.reload(Auth::Basic(ADMIN));
    assert_eq!(status, 200, "{report}");
    let applied = strings(&report["applied"]);
    for s in ["tls", "dkim", "limits"] {
        assert!(applied.iter().any(|a| a == s), "{s} not in {report}");
    }
    assert!(strings(&report["restart_needed"]).is_empty(), "{report}");
    assert!(report["failed"].as_array().unwrap().is_empty(), "{report}");
    server
        .wait_for("configuration reloaded", Duration::from_secs(10))
        .expect("an API reload is logged too");
    let mut second = Imap::open(imap);
    assert!(second.greeting.starts_with("* OK"), "{}", second.greeting);
    session.still_works();

    // A broken file: 422 naming the file, line and key, and the running limits stay.
    env.write_config(&config("max_per_ip = \"many\"", ""));
    let (status, body) = api.reload(Auth::Bearer(&writer));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("wharf.toml:8:"), "{message}");
    assert!(message.contains("max_per_ip"), "{message}");
    env.write_config("[limits\nmax_per_ip = 5\n");
    let (status, body) = api.reload(Auth::Bearer(&writer));
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wharf.toml:1:"),
        "file and line: {message}"
    );
    assert!(refused(imap), "still 2 per address");
    session.still_works();
    second.ok("s1", "NOOP");

    // A token with the write scope reloads too; a start-time setting is reported, not applied.
    env.write_config(&config(
        "max_per_ip = 2",
        "[pop3]\nidle_timeout_secs = 100\n",
    ));
    let (status, report) = api.reload(Auth::Bearer(&writer));
    assert_eq!(status, 200, "{report}");
    assert_eq!(strings(&report["restart_needed"]), ["pop3"], "{report}");
    session.still_works();
    session.ok("z1", "LOGOUT");
    second.ok("z2", "LOGOUT");
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
}

/// A one-connection-at-a-time SMTP server standing in for the remote MX: every message it
/// receives goes to the channel.
fn smtp_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut w) = conn else { return };
            let mut r = BufReader::new(w.try_clone().unwrap());
            let _ = w.write_all(b"220 sink.test ESMTP\r\n");
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 sink.test\r\n",
                    "DATA" => {
                        let _ = w.write_all(b"354 go on\r\n");
                        let mut msg = String::new();
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                            msg.push_str(&l);
                        }
                        let _ = tx.send(msg);
                        b"250 2.0.0 taken\r\n"
                    }
                    "QUIT" => {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 2.0.0 ok\r\n",
                };
                let _ = w.write_all(reply);
            }
        }
    });
    (port, rx)
}

/// Submits one message over implicit TLS with AUTH PLAIN, as a mail client does.
fn submit(port: u16, subject: &str) {
    let script = r#"
import smtplib, ssl, sys
port, user, password, subject = sys.argv[1:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = ("From: <%s>\r\nTo: <far@remote.test>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n"
       "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n" % (user, subject, subject))
with smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=30) as s:
    s.login(user, password)
    refused = s.sendmail(user, ["far@remote.test"], msg.encode())
    assert not refused, refused
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), USER, PASSWORD, subject])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "submission failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The selectors (`s=`) of the message's DKIM signatures, in order.
fn selectors(msg: &str) -> Vec<String> {
    let mut unfolded = String::new();
    for line in msg.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            unfolded.push_str(line.trim_start());
        } else {
            unfolded.push('\n');
            unfolded.push_str(line);
        }
    }
    unfolded
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .filter_map(|l| {
            l.split(';')
                .map(str::trim)
                .find_map(|t| t.strip_prefix("s="))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn a_dkim_key_added_or_removed_in_the_store_signs_the_next_message_after_a_reload() {
    let (sink, received) = smtp_sink();
    let env = Env::new();
    let submission = "[[listener]]\nname = \"submissions\"\naddress = \"127.0.0.1\"\nport = 0\n\
                      protocol = \"submission\"\ntls = \"implicit\"\n";
    let outbound = format!(
        "[outbound]\nmta_sts = false\nretry_schedule = [1]\npoll_interval = 1\n\
         [outbound.routes.\"remote.test\"]\nhost = \"[127.0.0.1]\"\nport = {sink}\ntls = \"disabled\"\n"
    );
    env.write_config(&config("", &format!("{submission}{outbound}")));
    env.add_user(USER);
    env.ok(&["dkim", "generate", "example.test", "--selector", "first"]);
    let (mut server, ready) = env.serve();
    let port = ready.port("submissions");
    let next = |subject: &str| {
        submit(port, subject);
        let msg = received
            .recv_timeout(Duration::from_secs(30))
            .expect("relayed to the sink");
        assert!(msg.contains(subject), "{msg}");
        selectors(&msg)
    };
    assert_eq!(next("one"), ["first"]);

    // A key added while the server runs signs only once the server reloads.
    env.ok(&["dkim", "generate", "example.test", "--selector", "second"]);
    assert_eq!(next("two"), ["first"], "not before the reload");
    hup(&server);
    let line = server
        .wait_for("configuration reloaded", Duration::from_secs(20))
        .expect("reloaded");
    assert!(line.contains("dkim_keys=2"), "{line}");
    let mut both = next("three");
    both.sort();
    assert_eq!(both, ["first", "second"]);

    // Rotated out: the next message is signed by the remaining key only.
    env.ok(&["dkim", "delete", "example.test", "first"]);
    let mut still_both = next("four-before");
    still_both.sort();
    assert_eq!(still_both, ["first", "second"], "not before the reload");
    hup(&server);
    server
        .wait_for("configuration reloaded", Duration::from_secs(20))
        .expect("reloaded");
    assert_eq!(next("four"), ["second"]);

    // A key file of an earlier version that does not load keeps the keys in use.
    std::fs::create_dir_all(env.data().join("dkim/example.test")).unwrap();
    std::fs::write(env.data().join("dkim/example.test/broken.pem"), "not a key").unwrap();
    hup(&server);
    let line = server
        .wait_for("reload: not applied", Duration::from_secs(20))
        .expect("failure logged");
    assert!(line.contains("broken.pem"), "{line}");
    assert_eq!(next("five"), ["second"]);
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
}
