//! Transcripts on the in-memory backend: STARTTLS, LOGIN, AUTHENTICATE (SASL-IR), and the
//! directory's throttling behind the real adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use base64::Engine;
use common::*;
use wharf_imap::{ImapConfig, Input, Next};

#[tokio::test]
async fn login_refused_before_tls() {
    let env = env().await;
    let mut t = T::new(&env, false, ImapConfig::default());
    let r = t.cmd(&format!("a LOGIN {USER} \"{PASS}\"")).await;
    assert_eq!(r, "a NO [PRIVACYREQUIRED] Use STARTTLS before LOGIN\r\n");
    let r = t.cmd("b AUTHENTICATE PLAIN AGFsaWNlAHg=").await;
    assert!(r.starts_with("b NO [PRIVACYREQUIRED]"), "{r}");
    let (r, next) = t.next(b"c STARTTLS\r\n").await;
    assert_eq!(r, "c OK Begin TLS negotiation now\r\n");
    assert_eq!(next, Next::StartTls);
    t.input(Input::TlsStarted).await;
    let r = t.cmd("d CAPABILITY").await;
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("LOGINDISABLED") && !r.contains("STARTTLS"),
        "{r}"
    );
    let r = t.cmd(&format!("e LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.starts_with("e OK [CAPABILITY "), "{r}");
    let r = t.cmd("f STARTTLS").await;
    assert!(r.starts_with("f BAD"), "{r}");
}

#[tokio::test]
async fn loopback_opt_in_allows_plaintext_login() {
    let env = env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ImapConfig::default()
    };
    let mut t = T::new(&env, false, cfg);
    let r = t.cmd("a CAPABILITY").await;
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("LOGINDISABLED"),
        "{r}"
    );
    let r = t.cmd(&format!("a LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.starts_with("a OK"), "{r}");
}

#[tokio::test]
async fn login_failures_and_commands_needing_auth() {
    let env = env().await;
    let mut t = T::new(&env, true, ImapConfig::default());
    let r = t.cmd("a SELECT INBOX").await;
    assert_eq!(r, "a BAD Command not valid before authentication\r\n");
    let r = t.cmd(&format!("b LOGIN {USER} wrongpassword")).await;
    assert_eq!(r, "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    let r = t.cmd("c FETCH 1 FLAGS").await;
    assert!(r.starts_with("c BAD"), "{r}");
}

#[tokio::test]
async fn authenticate_plain_with_and_without_initial_response() {
    let env = env().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let creds = b64.encode(format!("\0{USER}\0{PASS}"));
    let mut t = T::new(&env, true, ImapConfig::default());
    let r = t.cmd(&format!("a AUTHENTICATE PLAIN {creds}")).await;
    assert!(r.starts_with("a OK [CAPABILITY"), "{r}");

    let mut t = T::new(&env, true, ImapConfig::default());
    let (r, next) = t.next(b"a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(next, Next::Line);
    assert!(r.starts_with("+"), "{r}");
    let (out, _) = t
        .input(Input::Line(format!("{creds}\r\n").as_bytes()))
        .await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    assert!(t.s.is_authenticated());

    let mut t = T::new(&env, true, ImapConfig::default());
    let (_, next) = t.next(b"a AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(next, Next::Line);
    let (rep, _) = t.input(Input::Line(b"*\r\n")).await;
    assert_eq!(rep, "a BAD Authentication aborted\r\n");
    let r = t.cmd("b AUTHENTICATE CRAM-MD5").await;
    assert!(r.starts_with("b NO [CANNOT]"), "{r}");
}

#[tokio::test]
async fn repeated_failures_are_throttled_by_the_directory() {
    let env = sql_env().await;
    let directory = wharf_directory::Directory::new(
        env.store.clone(),
        wharf_directory::DirectoryConfig {
            auth_fail_delay_base: std::time::Duration::ZERO,
            auth_fail_max_delay: std::time::Duration::ZERO,
            auth_ip_lockout_after: 3,
            ..wharf_directory::DirectoryConfig::default()
        },
    );
    let info = wharf_imap::ConnInfo {
        peer: "127.0.0.1".parse().unwrap(),
        tls: true,
        starttls_available: false,
    };
    let cfg = ImapConfig::default();
    let shared = wharf_imap::Shared::new(&cfg);
    let s = wharf_imap::Session::new(
        std::sync::Arc::new(cfg),
        wharf_imap::adapters::backend(directory),
        shared,
        info,
        7,
    );
    let mut t = T { s, max_line: 8192 };
    for i in 0..3 {
        let r = t.cmd(&format!("a{i} LOGIN {USER} wrong-password")).await;
        assert_eq!(
            r,
            format!("a{i} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
        );
    }
    let out = t.cmd(&format!("b LOGIN {USER} \"{PASS}\"")).await;
    assert!(
        out.starts_with("b NO [UNAVAILABLE] Too many failures"),
        "locked out even with the right password: {out}"
    );
}
