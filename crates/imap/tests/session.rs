//! Transcripts on the in-memory backend: greeting, CAPABILITY, NOOP, ENABLE, ID, LOGOUT, bad
//! commands counted to BYE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use wharf_imap::{ImapConfig, Next};

#[tokio::test]
async fn greeting_and_capability_before_tls() {
    let env = env().await;
    let mut t = T::new(&env, false, ImapConfig::default());
    let g = String::from_utf8(t.s.greeting().into_bytes().await.unwrap()).unwrap();
    assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"), "{g}");
    assert!(g.contains("STARTTLS") && g.contains("LOGINDISABLED"), "{g}");
    assert!(!g.contains("AUTH=PLAIN"), "{g}");
    let r = t.cmd("a CAPABILITY").await;
    assert!(r.starts_with("* CAPABILITY IMAP4rev1 IMAP4rev2"), "{r}");
    assert!(r.ends_with("a OK CAPABILITY completed\r\n"), "{r}");
    assert_eq!(t.cmd("b NOOP").await, "b OK NOOP completed\r\n");
}

#[tokio::test]
async fn enable_id_logout() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let r = t.cmd("a ENABLE IMAP4rev2 UTF8=ACCEPT FOO").await;
    assert_eq!(
        r,
        "* ENABLED IMAP4rev2 UTF8=ACCEPT\r\na OK ENABLE completed\r\n"
    );
    let r = t.cmd("b ID (\"name\" \"test\" \"version\" NIL)").await;
    assert!(r.starts_with("* ID (\"name\" \"Wharf\""), "{r}");
    let r = t.cmd("b2 ID NIL").await;
    assert!(r.ends_with("b2 OK ID completed\r\n"), "{r}");
    let (r, next) = t.next(b"c LOGOUT\r\n").await;
    assert_eq!(r, "* BYE Logging out\r\nc OK LOGOUT completed\r\n");
    assert_eq!(next, Next::Close);
}

#[tokio::test]
async fn bad_commands_keep_the_session_then_bye() {
    let env = env().await;
    let cfg = ImapConfig {
        max_bad_commands: 3,
        ..ImapConfig::default()
    };
    let mut t = T::new(&env, true, cfg);
    assert_eq!(
        t.cmd("a FROBNICATE").await,
        "a BAD unknown command FROBNICATE\r\n"
    );
    assert_eq!(t.cmd("b NOOP").await, "b OK NOOP completed\r\n");
    assert!(t.cmd("+++").await.starts_with("* BAD"));
    assert!(t.cmd("c LOGIN").await.starts_with("c BAD"));
    let (r, next) = t.next(b"d SELECT\r\n").await;
    assert!(
        r.starts_with("d BAD") && r.ends_with("* BYE Too many invalid commands\r\n"),
        "{r}"
    );
    assert_eq!(next, Next::Close);
}
