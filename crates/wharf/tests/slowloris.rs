//! `wharf serve` against clients that hold connections without using them (issue 15 item 4):
//! a byte every second keeps no connection open past `[limits] pre_auth_timeout` on any mail
//! port, while a logged-in IMAP session and a port-25 session that delivered a message stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Env;

const DEADLINE_SECS: u64 = 3;

fn config(env: &Env) {
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 2\npre_auth_timeout = {DEADLINE_SECS}\n\
         [imap]\nallow_plaintext_auth_on_loopback = true\n[inbound]\nenabled = false\n\
         [[listener]]\nname = \"mx\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\n\
         [[listener]]\nname = \"submission\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\n\
         [[listener]]\nname = \"imap\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\n\
         [[listener]]\nname = \"pop3\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"pop3\"\n"
    ));
}

fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

/// Sends one byte of a never-ending command line every second; returns how long the server kept
/// the connection and what it wrote after the greeting.
fn drip_until_closed(mut w: TcpStream, mut r: BufReader<TcpStream>) -> (Duration, String) {
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
    });
    loop {
        if let Ok(rest) = rx.try_recv() {
            return (start.elapsed(), rest);
        }
        assert!(
            start.elapsed() < Duration::from_secs(DEADLINE_SECS + 20),
            "the connection outlived the deadline by 20 s"
        );
        // A write may fail once the server has closed: the reader then reports.
        let _ = w.write_all(b"x");
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn dripping_strangers_are_cut_logged_in_users_stay() {
    let env = Env::new();
    config(&env);
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let port = |name: &str| ready.port(name);

    // A logged-in IMAP user and a port-25 client that delivered are not strangers.
    let (mut imap_w, mut imap_r) = connect(port("imap"));
    assert!(line(&mut imap_r).starts_with("* OK"));
    imap_w
        .write_all(b"a LOGIN alice@example.test \"correct horse battery\"\r\n")
        .unwrap();
    let l = line(&mut imap_r);
    assert!(l.starts_with("a OK"), "{l}");
    let (mut mx_w, mut mx_r) = connect(port("mx"));
    assert!(line(&mut mx_r).starts_with("220"));
    mx_w.write_all(b"HELO client.example.org\r\n").unwrap();
    assert!(line(&mut mx_r).starts_with("250"));
    for (cmd, code) in [
        ("MAIL FROM:<bob@example.org>\r\n", "250"),
        ("RCPT TO:<alice@example.test>\r\n", "250"),
        ("DATA\r\n", "354"),
        ("Subject: hi\r\n\r\nhello\r\n.\r\n", "250"),
    ] {
        mx_w.write_all(cmd.as_bytes()).unwrap();
        let l = line(&mut mx_r);
        assert!(l.starts_with(code), "{cmd:?}: {l}");
    }

    // Strangers on every mail port, each dripping a byte a second, all at once.
    let mut drips = Vec::new();
    for name in ["mx", "submission", "imap", "pop3"] {
        let (w, mut r) = connect(port(name));
        let greeting = line(&mut r);
        assert!(!greeting.is_empty(), "{name} greets");
        drips.push((name, std::thread::spawn(move || drip_until_closed(w, r))));
    }
    for (name, t) in drips {
        let (held, said) = t.join().unwrap();
        assert!(
            held >= Duration::from_secs(DEADLINE_SECS - 1)
                && held < Duration::from_secs(DEADLINE_SECS + 10),
            "{name}: held {held:?}"
        );
        // The protocol's own timeout goodbye, not a bare reset.
        let expected = match name {
            "mx" | "submission" => "421",
            "imap" => "* BYE",
            _ => "-ERR",
        };
        assert!(said.contains(expected), "{name} said {said:?}");
    }

    // Past the deadline the user and the sender are still served.
    imap_w.write_all(b"b NOOP\r\n").unwrap();
    let l = line(&mut imap_r);
    assert!(l.starts_with("b OK"), "logged-in IMAP session: {l}");
    mx_w.write_all(b"NOOP\r\n").unwrap();
    let l = line(&mut mx_r);
    assert!(
        l.starts_with("250"),
        "port-25 session after a delivery: {l}"
    );
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
}
