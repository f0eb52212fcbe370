//! EHLO/HELO, the greeting and the capability list, driven through `Session::handle` with
//! in-memory doubles (no database, no sockets).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::transcript;

use transcript::{codes, mx, submission};
use wharf_smtp::{Input, Next};

#[tokio::test]
async fn greeting_and_ehlo_on_mx() {
    let (mut c, greeting) = mx().connect().await;
    assert_eq!(greeting, "220 mx.example.test ESMTP Wharf\r\n");
    let ehlo = c.cmd("EHLO c.test").await;
    assert!(
        ehlo.starts_with("250-mx.example.test Hello c.test [192.0.2.7]\r\n"),
        "{ehlo}"
    );
    for cap in [
        "PIPELINING",
        "SIZE 52428800",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ] {
        assert!(ehlo.contains(&format!("-{cap}\r\n")), "{cap}: {ehlo}");
    }
    assert!(ehlo.ends_with("250 STARTTLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("AUTH") && !ehlo.contains("REQUIRETLS"));
}

#[tokio::test]
async fn helo_is_one_line_without_enhanced_code() {
    let (mut c, _) = mx().connect().await;
    assert_eq!(
        c.cmd("HELO c.test").await,
        "250 mx.example.test Hello c.test [192.0.2.7]\r\n"
    );
    assert_eq!(c.codes("HELO").await, vec![501]);
    assert_eq!(c.codes("EHLO").await, vec![501]);
}

#[tokio::test]
async fn submission_offers_auth_only_over_tls_and_requiretls_after_it() {
    let (mut c, _) = submission(false).connect().await;
    let ehlo = c.cmd("EHLO c.test").await;
    assert!(
        !ehlo.contains("AUTH") && ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    let (mut c, _) = submission(true).connect().await;
    let ehlo = c.cmd("EHLO c.test").await;
    assert!(
        ehlo.contains("-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n")
            && ehlo.ends_with("250 REQUIRETLS\r\n")
            && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    c.login("alice@example.test").await;
    assert!(!c.cmd("EHLO c.test").await.contains("AUTH"));
}

#[tokio::test]
async fn plaintext_auth_on_loopback_only_when_allowed() {
    let (mut c, _) = submission(false)
        .cfg(|c| c.allow_plaintext_auth_on_loopback = true)
        .connect()
        .await;
    // The double's peer is 192.0.2.7, not loopback.
    assert!(!c.cmd("EHLO c.test").await.contains("AUTH"));
}

#[tokio::test]
async fn ehlo_resets_the_transaction() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["alice@example.test"]).await;
    assert_eq!(c.codes("EHLO again.test").await, vec![250]);
    assert_eq!(c.codes("DATA").await, vec![503]);
    assert_eq!(c.codes("MAIL FROM:<x@remote.test>").await, vec![250]);
}

#[tokio::test]
async fn early_talker_timeout_and_shutdown_close() {
    let (mut c, _) = mx().connect().await;
    let r = c.input(Input::EarlyTalker).await;
    assert_eq!(
        r,
        "554 5.5.1 mx.example.test Protocol error: client talked before the greeting\r\n"
    );
    assert_eq!(c.next, Next::Close);
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["alice@example.test"]).await;
    assert_eq!(
        c.input(Input::Timeout).await,
        "421 4.4.2 mx.example.test Idle timeout, closing connection\r\n"
    );
    assert_eq!(c.next, Next::Close);
    let (mut c, _) = mx().connect().await;
    assert_eq!(
        codes(&c.input(Input::Shutdown).await),
        vec![421],
        "shutdown"
    );
    assert_eq!(c.next, Next::Close);
}
