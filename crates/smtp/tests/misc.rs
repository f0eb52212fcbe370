//! RSET, NOOP, QUIT, HELP, VRFY, EXPN, STARTTLS, overlong lines and the error limit, driven
//! through `Session::handle` with in-memory doubles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::transcript;

use transcript::{mx, submission};
use wharf_smtp::{Input, Next};

#[tokio::test]
async fn rset_noop_help_quit() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["alice@example.test"]).await;
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    assert_eq!(c.codes("DATA").await, vec![503], "the transaction is gone");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
    assert_eq!(c.codes("RSET extra").await, vec![501]);
    assert!(c.cmd("HELP").await.starts_with("214 2.0.0 Commands: EHLO"));
    assert_eq!(c.cmd("EXPN team").await, "502 5.5.1 EXPN not available\r\n");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 mx.example.test Bye\r\n");
    assert_eq!(c.next, Next::Close);
}

#[tokio::test]
async fn vrfy_is_vague_unless_enabled() {
    let (mut c, _) = mx().connect().await;
    assert_eq!(
        c.cmd("VRFY alice@example.test").await,
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    let (mut c, _) = mx().cfg(|c| c.enable_vrfy = true).connect().await;
    assert_eq!(
        c.cmd("VRFY <alice@example.test>").await,
        "250 2.1.5 <alice@example.test>\r\n"
    );
    assert_eq!(c.codes("VRFY team@example.test").await, vec![250]);
    assert_eq!(c.codes("VRFY nobody@example.test").await, vec![550]);
    assert_eq!(c.codes("VRFY not an address").await, vec![501]);
    c.world
        .fail_lookups
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.codes("VRFY alice@example.test").await, vec![451]);
}

#[tokio::test]
async fn starttls_resets_everything_learned() {
    let (mut c, _) = submission(false).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(c.codes("AUTH PLAIN").await, vec![530]);
    let r = c.cmd("STARTTLS").await;
    assert_eq!(r, "220 2.0.0 Ready to start TLS\r\n");
    // The harness completed the handshake when the session asked for it.
    assert_eq!(c.next, Next::Command);
    assert_eq!(
        c.codes("MAIL FROM:<alice@example.test>").await,
        vec![503],
        "EHLO again after TLS"
    );
    let ehlo = c.cmd("EHLO c.test").await;
    assert!(ehlo.contains("AUTH ") && !ehlo.contains("STARTTLS"));
    assert_eq!(c.cmd("STARTTLS").await, "503 5.5.1 TLS already active\r\n");
}

#[tokio::test]
async fn starttls_unavailable_without_a_certificate() {
    let (mut c, _) = mx().connect().await;
    c.input(Input::TlsStarted {
        version: "TLSv1.3".into(),
        cipher: "X".into(),
    })
    .await;
    // After a handshake STARTTLS is answered as "already active"; a connection that never
    // offered it says "not available".
    assert_eq!(c.codes("STARTTLS").await, vec![503]);
    let (mut c, _) = submission(true).connect().await;
    assert_eq!(c.codes("STARTTLS").await, vec![503]);
    let mut o = mx();
    o.starttls = false;
    let (mut c, _) = o.connect().await;
    assert!(!c.cmd("EHLO c.test").await.contains("STARTTLS"));
    assert_eq!(
        c.cmd("STARTTLS").await,
        "502 5.5.1 STARTTLS not available\r\n"
    );
}

#[tokio::test]
async fn overlong_lines_and_unknown_commands_count_towards_the_error_limit() {
    let (mut c, _) = mx().cfg(|c| c.max_errors = 3).connect().await;
    let long = format!("NOOP {}\r\n", "x".repeat(600));
    assert_eq!(c.send(long.as_bytes()).await, "500 5.5.2 Line too long\r\n");
    assert_eq!(c.cmd("BOGUS").await, "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(
        c.cmd("BOGUS").await,
        "500 5.5.1 Command unrecognized\r\n421 4.7.0 mx.example.test Too many errors, closing connection\r\n"
    );
    assert_eq!(c.next, Next::Close);
}

#[tokio::test]
async fn pipelined_commands_in_one_read_get_all_replies_in_order() {
    let (mut c, _) = mx().connect().await;
    let r = c
        .send(b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRSET\r\n")
        .await;
    assert_eq!(transcript::codes(&r), vec![250, 250, 250, 550, 250]);
}

#[tokio::test]
async fn non_utf8_and_control_characters_are_refused() {
    let (mut c, _) = mx().connect().await;
    assert_eq!(
        c.send(b"NOOP \xff\r\n").await,
        "500 5.5.2 Command contains invalid characters\r\n"
    );
    assert_eq!(c.send(b"NOOP \x01\r\n").await.get(..3), Some("500"));
}
