//! Transcripts of the non-authenticated state: greeting and CAPABILITY, AUTHENTICATE (initial
//! response, continuations as quoted strings and literals, cancel, SASL data on success, every
//! failure and its response code), STARTTLS, NOOP, LOGOUT, UNAUTHENTICATE, error limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use wharf_managesieve::{AuthFailure, ConnInfo, Input, ManageSieveConfig};

const CAPS_LOOPBACK: &str = "\"IMPLEMENTATION\" \"Wharf\"\r\n\"SIEVE\" \"fileinto vacation enotify\"\r\n\"SASL\" \"PLAIN X-FINAL X-TWO-STEP\"\r\n\"NOTIFY\" \"mailto\"\r\n\"MAXREDIRECTS\" \"4\"\r\n\"VERSION\" \"1.0\"\r\n";

fn starttls_listener() -> ConnInfo {
    ConnInfo {
        peer: "192.0.2.7".parse().unwrap(),
        tls: false,
        starttls_available: true,
    }
}

#[tokio::test]
async fn greeting_is_the_capability_list() {
    let mem = Mem::new();
    let t = Transcript::new(&mem);
    assert_eq!(
        t.greeting(),
        format!("{CAPS_LOOPBACK}OK \"sieve.example.org ManageSieve ready\"\r\n")
    );
}

#[tokio::test]
async fn capability_before_and_after_login() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.send("capability").await,
        format!("{CAPS_LOOPBACK}OK \"Capability completed\"\r\n")
    );
    t.login("alice@example.org").await;
    let caps = t.send("CAPABILITY").await;
    assert!(!caps.contains("SASL"), "{caps}");
    assert!(
        caps.contains("\"OWNER\" \"alice@example.org\"\r\n"),
        "{caps}"
    );
    assert!(caps.ends_with("\"VERSION\" \"1.0\"\r\nOK \"Capability completed\"\r\n"));
}

#[tokio::test]
async fn starttls_listener_offers_no_sasl_before_tls_and_resends_capabilities_after() {
    let mem = Mem::new();
    let mut t = Transcript::with(&mem, ManageSieveConfig::default(), starttls_listener());
    let g = t.greeting();
    assert!(g.contains("\"SASL\" \"\"\r\n"), "{g}");
    assert!(g.contains("\"STARTTLS\"\r\n"), "{g}");
    // Credentials refused in plaintext.
    let r = t
        .send(&format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            plain_ir("alice@example.org", PASSWORD)
        ))
        .await;
    assert_eq!(
        r,
        "NO (ENCRYPT-NEEDED) \"Authentication requires TLS: use STARTTLS first\"\r\n"
    );
    assert_eq!(
        t.send("STARTTLS").await,
        "OK \"Begin TLS negotiation now\"\r\n"
    );
    assert!(t.tls_requested);
    let caps = t.input(Input::TlsStarted).await;
    assert!(
        caps.contains("\"SASL\" \"PLAIN X-FINAL X-TWO-STEP\"\r\n"),
        "{caps}"
    );
    assert!(!caps.contains("STARTTLS"), "{caps}");
    assert!(
        caps.ends_with("OK \"TLS negotiation successful\"\r\n"),
        "{caps}"
    );
    t.tls_requested = false;
    t.login("alice@example.org").await;
}

#[tokio::test]
async fn starttls_refused_where_not_available() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.send("STARTTLS").await,
        "NO \"STARTTLS is not available on this port\"\r\n"
    );
    let tls = ConnInfo {
        tls: true,
        ..starttls_listener()
    };
    let mut t = Transcript::with(&mem, ManageSieveConfig::default(), tls);
    assert!(!t.greeting().contains("STARTTLS"));
    assert_eq!(t.send("STARTTLS").await, "NO \"TLS is already active\"\r\n");
    t.login("alice@example.org").await;
    assert_eq!(
        t.send("STARTTLS").await,
        "NO \"STARTTLS is not allowed after authentication\"\r\n"
    );
}

#[tokio::test]
async fn plain_listener_off_loopback_refuses_credentials() {
    let mem = Mem::new();
    let info = ConnInfo {
        peer: "192.0.2.7".parse().unwrap(),
        tls: false,
        starttls_available: false,
    };
    let mut t = Transcript::with(&mem, config(), info);
    assert!(t.greeting().contains("\"SASL\" \"\"\r\n"));
    assert_eq!(
        t.send("AUTHENTICATE \"PLAIN\"").await,
        "NO (ENCRYPT-NEEDED) \"Authentication requires TLS\"\r\n"
    );
}

#[tokio::test]
async fn authenticate_with_initial_response_as_literal() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    let ir = plain_ir("alice@example.org", PASSWORD);
    let r = t
        .raw(format!("AUTHENTICATE {{5+}}\r\nPLAIN {{{}+}}\r\n{ir}\r\n", ir.len()).as_bytes())
        .await;
    assert_eq!(r, "OK \"Authentication successful\"\r\n");
    assert!(t.session.is_authenticated());
}

#[tokio::test]
async fn authenticate_with_continuation_quoted_and_literal() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    // PLAIN without initial response: an empty challenge, answered with a quoted string.
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    let r = t
        .send(&format!("\"{}\"", plain_ir("alice@example.org", PASSWORD)))
        .await;
    assert_eq!(r, "OK \"Authentication successful\"\r\n");

    // Two challenges, answered with a synchronising and a non-synchronising literal.
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.send("Authenticate \"x-two-step\"").await,
        format!("\"{}\"\r\n", b64(b"Username:"))
    );
    let user = b64(b"bob@example.org");
    assert_eq!(
        t.raw(format!("{{{}}}\r\n{user}\r\n", user.len()).as_bytes())
            .await,
        format!("\"{}\"\r\n", b64(b"Password:"))
    );
    let pass = b64(PASSWORD.as_bytes());
    assert_eq!(
        t.raw(format!("{{{}+}}\r\n{pass}\r\n", pass.len()).as_bytes())
            .await,
        "OK \"Authentication successful\"\r\n"
    );
    assert_eq!(t.session.login().unwrap().address, "bob@example.org");
}

#[tokio::test]
async fn authenticate_success_carries_sasl_data() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    let r = t
        .send(&format!(
            "AUTHENTICATE \"X-FINAL\" \"{}\"",
            plain_ir("alice@example.org", PASSWORD)
        ))
        .await;
    assert_eq!(
        r,
        format!(
            "OK (SASL \"{}\") \"Authentication successful\"\r\n",
            b64(b"v=final")
        )
    );
}

#[tokio::test]
async fn authenticate_cancel_and_bad_responses() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    assert_eq!(t.send("\"*\"").await, "NO \"Authentication cancelled\"\r\n");
    assert!(!t.session.is_authenticated());
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    assert_eq!(
        t.send("\"!!!not base64\"").await,
        "NO \"Invalid base64 in SASL response\"\r\n"
    );
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    assert_eq!(
        t.send("NOOP").await,
        "NO \"Expected a SASL response string, authentication cancelled\"\r\n"
    );
    assert_eq!(
        t.send("AUTHENTICATE \"PLAIN\" \"%%%\"").await,
        "NO \"Invalid base64 in initial response\"\r\n"
    );
    assert_eq!(
        t.send("AUTHENTICATE \"GSSAPI\"").await,
        "NO \"Unsupported authentication mechanism\"\r\n"
    );
    assert_eq!(
        t.send(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", b64(b"nonul")))
            .await,
        "NO \"Malformed authentication exchange: PLAIN needs 3 fields\"\r\n"
    );
    // Still usable.
    t.login("alice@example.org").await;
    assert_eq!(
        t.send("AUTHENTICATE \"PLAIN\"").await,
        "NO \"Already authenticated\"\r\n"
    );
}

#[tokio::test]
async fn authenticate_failures_and_codes() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    let ir = |u: &str, p: &str| format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain_ir(u, p));
    assert_eq!(
        t.send(&ir("alice@example.org", "wrong")).await,
        "NO \"Authentication failed\"\r\n"
    );
    assert_eq!(
        t.send(&ir("nobody@example.org", PASSWORD)).await,
        "NO \"Authentication failed\"\r\n"
    );
    assert_eq!(
        t.send(&ir("off@example.org", PASSWORD)).await,
        "NO \"Account disabled\"\r\n"
    );
    mem.with(|s| {
        s.auth_result = Some(AuthFailure::Throttled {
            retry_after: Duration::from_secs(30),
        })
    });
    assert_eq!(
        t.send(&ir("alice@example.org", PASSWORD)).await,
        "NO (TRYLATER) \"Too many failed logins, try again in 30 seconds\"\r\n"
    );
    mem.with(|s| s.auth_result = Some(AuthFailure::Temporary("db down".into())));
    assert_eq!(
        t.send(&ir("alice@example.org", PASSWORD)).await,
        "NO (TRYLATER) \"Authentication temporarily unavailable\"\r\n"
    );
    mem.with(|s| s.auth_result = None);
    t.login("alice@example.org").await;
}

#[tokio::test]
async fn disabled_mechanism_is_too_weak() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        disabled_mechanisms: vec!["x-two-step".into()],
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    assert!(t.greeting().contains("\"SASL\" \"PLAIN X-FINAL\"\r\n"));
    assert_eq!(
        t.send("AUTHENTICATE \"X-TWO-STEP\"").await,
        "NO (AUTH-TOO-WEAK) \"This mechanism is not allowed by site policy\"\r\n"
    );
}

#[tokio::test]
async fn failed_logins_count_toward_the_error_limit() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_errors: 3,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    let bad = format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"",
        plain_ir("alice@example.org", "x")
    );
    assert_eq!(t.send(&bad).await, "NO \"Authentication failed\"\r\n");
    assert_eq!(t.send(&bad).await, "NO \"Authentication failed\"\r\n");
    assert_eq!(
        t.send(&bad).await,
        "NO \"Authentication failed\"\r\nBYE \"Too many errors, closing connection\"\r\n"
    );
    assert!(t.closed);
}

#[tokio::test]
async fn commands_need_authentication() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    for cmd in [
        "LISTSCRIPTS",
        "GETSCRIPT \"a\"",
        "SETACTIVE \"a\"",
        "DELETESCRIPT \"a\"",
        "RENAMESCRIPT \"a\" \"b\"",
        "HAVESPACE \"a\" 1",
        "CHECKSCRIPT \"keep;\"",
        "PUTSCRIPT \"a\" \"keep;\"",
    ] {
        assert_eq!(t.send(cmd).await, "NO \"Authenticate first\"\r\n", "{cmd}");
    }
    assert!(mem.script(ALICE, "a").is_none());
}

#[tokio::test]
async fn noop_echoes_its_tag() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(t.send("NOOP").await, "OK \"Done\"\r\n");
    assert_eq!(
        t.send("NOOP \"STARTTLS-SYNC-42\"").await,
        "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n"
    );
    assert_eq!(
        t.raw(b"NOOP {3+}\r\na\"b\r\n").await,
        "OK (TAG \"a\\\"b\") \"Done\"\r\n"
    );
}

#[tokio::test]
async fn unauthenticate_returns_to_the_first_state() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.send("UNAUTHENTICATE").await,
        "NO \"Not authenticated\"\r\n"
    );
    t.login("alice@example.org").await;
    assert_eq!(
        t.send("UNAUTHENTICATE").await,
        "OK \"Unauthenticate completed\"\r\n"
    );
    assert!(!t.session.is_authenticated());
    assert_eq!(t.send("LISTSCRIPTS").await, "NO \"Authenticate first\"\r\n");
    assert!(t.send("CAPABILITY").await.contains("\"SASL\""));
    t.login("bob@example.org").await;
}

#[tokio::test]
async fn logout_closes() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(t.send("LOGOUT").await, "OK \"Logout completed\"\r\n");
    assert!(t.closed);
}

#[tokio::test]
async fn timeout_and_shutdown_say_bye() {
    let mem = Mem::new();
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.input(Input::Timeout).await,
        "BYE \"Disconnected for inactivity\"\r\n"
    );
    assert!(t.closed);
    let mut t = alice(&mem).await;
    assert_eq!(
        t.input(Input::Shutdown).await,
        "BYE (TRYLATER) \"Server shutting down\"\r\n"
    );
    assert!(t.closed);
}
