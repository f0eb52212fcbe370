//! The session's command receiver: over-long lines, oversized literals (synchronising and not),
//! literals split across inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use wharf_imap::{ImapConfig, Input, Next};

#[tokio::test]
async fn too_long_and_too_big() {
    let env = env().await;
    let mut t = T::new(&env, true, ImapConfig::default());
    let (r, next) = t.input(Input::LineTooLong).await;
    assert_eq!(r, "* BAD [TOOBIG] Command line too long\r\n");
    assert_eq!(next, Next::Line);
    // Non-synchronising: the client sends it anyway, the session has it read away.
    let (r, next) = t
        .input(Input::Line(b"a APPEND INBOX {99999999999+}\r\n"))
        .await;
    assert_eq!((r.as_str(), next), ("", Next::Discard { len: 99999999999 }));
    let (r, next) = t.input(Input::Line(b"\r\n")).await;
    assert_eq!(r, "a BAD [TOOBIG] Literal too large\r\n");
    assert_eq!(next, Next::Line);
    // Synchronising: refused before the client sends anything.
    let (r, next) = t
        .input(Input::Line(b"b APPEND INBOX {99999999999}\r\n"))
        .await;
    assert_eq!(r, "b NO [TOOBIG] Literal too large\r\n");
    assert_eq!(next, Next::Line);
    // Before login, a non-synchronising literal over 4096 octets.
    let (r, next) = t.input(Input::Line(b"c LOGIN {5000+}\r\n")).await;
    assert_eq!((r.as_str(), next), ("", Next::Discard { len: 5000 }));
    let (r, _) = t.input(Input::Line(b" {3+}\r\n")).await;
    assert_eq!(r, "");
    let (r, _) = t.input(Input::Line(b"\r\n")).await;
    assert_eq!(r, "c BAD [TOOBIG] Literal too large\r\n");
}

#[tokio::test]
async fn literals_arrive_in_pieces() {
    let env = env().await;
    let mut t = T::new(&env, true, ImapConfig::default());
    let (r, next) = t.input(Input::Line(b"a LOGIN {18}\r\n")).await;
    assert_eq!(
        (r.as_str(), next),
        ("+ Ready for literal data\r\n", Next::Literal { len: 18 })
    );
    let (r, next) = t.input(Input::Data(b"alice@")).await;
    assert_eq!((r.as_str(), next), ("", Next::Literal { len: 12 }));
    let (r, next) = t.input(Input::Data(b"example.test")).await;
    assert_eq!((r.as_str(), next), ("", Next::Line));
    let (r, next) = t
        .input(Input::Line(format!(" {{{}+}}\r\n", PASS.len()).as_bytes()))
        .await;
    assert_eq!(
        (r.as_str(), next),
        (
            "",
            Next::Literal {
                len: PASS.len() as u64
            }
        )
    );
    let (r, next) = t.input(Input::Data(PASS.as_bytes())).await;
    assert_eq!((r.as_str(), next), ("", Next::Line));
    let (r, next) = t.input(Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [CAPABILITY"), "{r}");
    assert_eq!(next, Next::Line);
}

#[tokio::test]
async fn timeout_and_shutdown_say_bye() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let (r, next) = t.input(Input::Timeout).await;
    assert_eq!(r, "* BYE Autologout; idle for too long\r\n");
    assert_eq!(next, Next::Close);
    let mut t = T::login(&env).await;
    let (r, next) = t.input(Input::Shutdown).await;
    assert_eq!(r, "* BYE Server shutting down\r\n");
    assert_eq!(next, Next::Close);
}

/// LITERAL+ (RFC 7888): once logged in, a non-synchronising APPEND literal of any size within
/// the limit is taken without a continuation request.
#[tokio::test]
async fn literal_plus_after_login() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let msg = format!("Subject: plus\r\n\r\n{}\r\n", "z".repeat(10_000));
    let (r, next) = t
        .input(Input::Line(
            format!("a APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes(),
        ))
        .await;
    assert_eq!(
        (r.as_str(), next),
        (
            "",
            Next::Literal {
                len: msg.len() as u64
            }
        )
    );
    let (_, next) = t.input(Input::Data(msg.as_bytes())).await;
    assert_eq!(next, Next::Line);
    let (r, _) = t.input(Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID"), "{r}");
    // Over the APPEND limit it is still read away and refused.
    let (r, next) = t
        .input(Input::Line(b"b APPEND INBOX {99999999999+}\r\n"))
        .await;
    assert_eq!((r.as_str(), next), ("", Next::Discard { len: 99999999999 }));
}
