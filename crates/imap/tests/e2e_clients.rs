//! End to end over real loopback sockets: the service runs in-process (wharf_net::Server, a temp
//! embedded store, the directory, a self-signed certificate) and real clients talk to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use wharf_imap::ImapConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_starttls_and_implicit_tls() {
    let env = sql_env().await;
    let (server, plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let args = vec![
        plain.port().to_string(),
        tls.port().to_string(),
        cert,
        USER.into(),
        PASS.into(),
    ];
    python_client("imaplib_client.py", args, "imaplib OK").await;
    server.shutdown(Duration::from_secs(2)).await;
}

/// MULTIAPPEND, CATENATE and SETQUOTA from Python's imaplib (raw commands; alice is an
/// administrator, bob is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_multiappend_catenate_setquota() {
    let env = sql_env().await;
    let alice = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    env.store
        .set_account_role(alice.id, wharf_store::ROLE_ADMIN)
        .await
        .unwrap();
    let (server, _plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let args = two_user_args(tls, cert);
    python_client("imaplib_extensions.py", args, "imaplib extensions OK").await;
    let bob = env
        .store
        .get_account_by_address(USER2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.quota_bytes, 1024, "SETQUOTA's limit is the account's");
    server.shutdown(Duration::from_secs(2)).await;
}

/// Runs one imapflow script of tests/imapflow against a fresh server over implicit TLS; its
/// stdout.
async fn run_imapflow(script: &'static str) -> String {
    let env = sql_env().await;
    let (server, _plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/imapflow");
    if !std::path::Path::new(dir)
        .join("node_modules/imapflow")
        .exists()
    {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .expect("npm must be installed");
        assert!(st.success(), "npm ci failed in {dir}");
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args([script, &tls.port().to_string(), &cert, USER, PASS])
            .current_dir(dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    server.shutdown(Duration::from_secs(2)).await;
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imapflow_over_implicit_tls() {
    let stdout = run_imapflow("client.mjs").await;
    assert!(stdout.contains("imapflow OK"), "{stdout}");
}

/// QRESYNC with a real client: imapflow's SELECT (QRESYNC …) learns exactly the flag changes and
/// expunges another client made, and UID FETCH (CHANGEDSINCE … VANISHED) the later ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imapflow_qresync_resync() {
    let stdout = run_imapflow("qresync.mjs").await;
    assert!(stdout.contains("imapflow qresync OK"), "{stdout}");
    eprintln!("{stdout}");
}

fn read_until_tag(r: &mut BufReader<TcpStream>, tag: &str) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.starts_with(&format!("{tag} ")) || line.starts_with("* BYE") && tag == "*" {
            return all;
        }
    }
}

/// Raw socket checks of the framer: continuation requests, LITERAL+, over-long lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_over_a_socket() {
    let env = sql_env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        max_line: 1024,
        ..ImapConfig::default()
    };
    let (server, plain, _tls, _cert) = server(&env, cfg).await;
    let res = tokio::task::spawn_blocking(move || {
        let s = TcpStream::connect(plain).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut greet = String::new();
        r.read_line(&mut greet).unwrap();
        assert!(greet.starts_with("* OK [CAPABILITY"), "{greet}");
        // synchronising literal: continuation request first
        write!(w, "a LOGIN {{{}}}\r\n", USER.len()).unwrap();
        let mut cont = String::new();
        r.read_line(&mut cont).unwrap();
        assert!(cont.starts_with("+ "), "{cont}");
        write!(w, "{USER} {{{}+}}\r\n{PASS}\r\n", PASS.len()).unwrap();
        let out = read_until_tag(&mut r, "a");
        assert!(out.contains("a OK"), "{out}");
        // over-long line: discarded, session continues
        let long = "x".repeat(5000);
        write!(w, "b NOOP {long}\r\nc NOOP\r\n").unwrap();
        let out = read_until_tag(&mut r, "c");
        assert!(out.starts_with("* BAD [TOOBIG]"), "{out}");
        assert!(out.contains("c OK NOOP"), "{out}");
        // LITERAL+: after login a non-synchronising literal of any size within the limit is
        // taken without a continuation request
        let big = format!("Subject: plus\r\n\r\n{}", "y".repeat(5000));
        write!(
            w,
            "d APPEND INBOX {{{}+}}\r\n{big}\r\ne NOOP\r\n",
            big.len()
        )
        .unwrap();
        let out = read_until_tag(&mut r, "e");
        assert!(out.starts_with("d OK [APPENDUID"), "{out}");
        assert!(out.contains("e OK NOOP"), "{out}");
        // synchronising literal over the APPEND limit: NO before any data is sent
        write!(w, "f APPEND INBOX {{999999999999}}\r\n").unwrap();
        let out = read_until_tag(&mut r, "f");
        assert_eq!(out, "f NO [TOOBIG] Literal too large\r\n");
        // a normal APPEND with a synchronising literal
        let msg = message(1);
        write!(w, "g APPEND INBOX {{{}}}\r\n", msg.len()).unwrap();
        let mut cont = String::new();
        r.read_line(&mut cont).unwrap();
        assert!(cont.starts_with("+ "), "{cont}");
        write!(w, "{msg}\r\n").unwrap();
        let out = read_until_tag(&mut r, "g");
        assert!(out.contains("g OK [APPENDUID"), "{out}");
        write!(w, "h LOGOUT\r\n").unwrap();
        let out = read_until_tag(&mut r, "h");
        assert!(out.contains("* BYE") && out.contains("h OK"), "{out}");
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
    })
    .await;
    server.shutdown(Duration::from_secs(2)).await;
    res.unwrap();
}

/// IDLE over a socket: another session's APPEND arrives as EXISTS without any command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_over_a_socket() {
    let env = sql_env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ImapConfig::default()
    };
    let (server, plain, _tls, _cert) = server(&env, cfg).await;
    let res = tokio::task::spawn_blocking(move || {
        let connect = || {
            let s = TcpStream::connect(plain).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut greet = String::new();
            r.read_line(&mut greet).unwrap();
            (w, r)
        };
        let (mut w1, mut r1) = connect();
        let (mut w2, mut r2) = connect();
        for (w, r) in [(&mut w1, &mut r1), (&mut w2, &mut r2)] {
            write!(
                w,
                "a LOGIN {USER} \"{PASS}\"\r\na2 ENABLE IMAP4rev2\r\nb SELECT INBOX\r\n"
            )
            .unwrap();
            let out = read_until_tag(r, "b");
            assert!(out.contains("b OK"), "{out}");
        }
        write!(w1, "c IDLE\r\n").unwrap();
        let mut l = String::new();
        r1.read_line(&mut l).unwrap();
        assert!(l.starts_with("+ "), "{l}");
        let msg = message(1);
        write!(w2, "d APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).unwrap();
        let out = read_until_tag(&mut r2, "d");
        assert!(out.contains("d OK"), "{out}");
        let mut l = String::new();
        r1.read_line(&mut l).unwrap();
        assert_eq!(l, "* 1 EXISTS\r\n");
        write!(w2, "e STORE 1 +FLAGS (\\Flagged)\r\n").unwrap();
        read_until_tag(&mut r2, "e");
        let mut l = String::new();
        r1.read_line(&mut l).unwrap();
        assert_eq!(l, "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n");
        write!(w1, "DONE\r\n").unwrap();
        let out = read_until_tag(&mut r1, "c");
        assert_eq!(out, "c OK IDLE terminated\r\n");
    })
    .await;
    server.shutdown(Duration::from_secs(2)).await;
    res.unwrap();
}
