//! The session's command receiver: over-long lines, oversized literals (synchronising and not),
//! literals split across inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
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

/// Logged in as alice with `cfg`.
async fn login_cfg(env: &Env, cfg: ImapConfig) -> T {
    let mut t = T::new(env, true, cfg);
    let r = t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.contains("a0 OK"), "{r}");
    t
}

/// A MULTIAPPEND of `n` non-synchronising messages each over `max_append`, every one of them
/// made of IMAP commands: all must be read away, none run.
fn hostile_multiappend(tag: &str, n: usize) -> Vec<u8> {
    let body = "x DELETE Archive\r\n".repeat(9);
    let mut cmd = format!("{tag} APPEND INBOX {{{}+}}\r\n{body}", body.len()).into_bytes();
    for _ in 1..n {
        cmd.extend_from_slice(format!(" {{{}+}}\r\n{body}", body.len()).as_bytes());
    }
    cmd.extend_from_slice(b"\r\n");
    cmd
}

async fn archive_exists(env: &Env) -> bool {
    let mut t = T::login(env).await;
    t.cmd("z STATUS Archive (MESSAGES)").await.contains("z OK")
}

#[tokio::test]
async fn literals_read_away_are_never_run_as_commands() {
    let env = env().await;
    let cfg = ImapConfig {
        max_append: 100,
        ..ImapConfig::default()
    };
    assert!(archive_exists(&env).await);
    // More rounds than the old cap of 64: all read away, one BAD, the session goes on.
    let mut t = login_cfg(&env, cfg.clone()).await;
    let mut cmd = hostile_multiappend("a", 200);
    cmd.extend_from_slice(b"b NOOP\r\n");
    let (r, next) = t.next(&cmd).await;
    assert_eq!(
        r,
        "a BAD [TOOBIG] Literal too large\r\nb OK NOOP completed\r\n"
    );
    assert_eq!(next, Next::Line);
    assert!(archive_exists(&env).await, "a literal ran as a command");
    // Past the cap: the session cannot tell the rest of the stream from commands, so it says
    // BYE and closes instead of reading the next literal as lines.
    let n = wharf_imap::MAX_DISCARD_ROUNDS as usize + 10;
    let mut t = login_cfg(&env, cfg).await;
    let (r, next) = t.next(&hostile_multiappend("c", n)).await;
    assert_eq!(r, "* BYE Too many literals in one command\r\n");
    assert_eq!(next, Next::Close);
    assert!(archive_exists(&env).await, "a literal ran as a command");
}

/// The message literals of one APPEND are counted as they are announced; past the cap the
/// command is refused at once (synchronising) or read away and refused (LITERAL+).
#[tokio::test]
async fn message_literals_are_capped_as_announced() {
    let env = env().await;
    let cap = wharf_imap::MAX_APPEND_LITERALS;
    let mut t = T::login(&env).await;
    let (r, next) = t.input(Input::Line(b"a APPEND INBOX {1+}\r\n")).await;
    assert_eq!((r.as_str(), next), ("", Next::Literal { len: 1 }));
    t.input(Input::Data(b"x")).await;
    for _ in 1..cap {
        let (_, next) = t.input(Input::Line(b" {1+}\r\n")).await;
        assert_eq!(next, Next::Literal { len: 1 });
        t.input(Input::Data(b"x")).await;
    }
    // One more: refused as it is announced, before anything else is held.
    let (r, next) = t.input(Input::Line(b" {1+}\r\n")).await;
    assert_eq!((r.as_str(), next), ("", Next::Discard { len: 1 }));
    let (r, next) = t.input(Input::Line(b" {1+}\r\n")).await;
    assert_eq!((r.as_str(), next), ("", Next::Discard { len: 1 }));
    let (r, next) = t.input(Input::Line(b"\r\n")).await;
    assert_eq!(r, "a BAD [LIMIT] Too many messages in one APPEND\r\n");
    assert_eq!(next, Next::Line);
    // A synchronising one past the cap gets NO instead of a continuation request.
    let mut cmd = b"b APPEND INBOX {1+}\r\nx".to_vec();
    for _ in 1..cap {
        cmd.extend_from_slice(b" {1+}\r\nx");
    }
    cmd.extend_from_slice(b" {1}\r\n");
    let (r, next) = t.next(&cmd).await;
    assert_eq!(r, "b NO [LIMIT] Too many messages in one APPEND\r\n");
    assert_eq!(next, Next::Line);
    let r = t.cmd("c STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
}
