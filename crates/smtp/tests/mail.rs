//! MAIL FROM and RCPT TO: sequence, parameters, sender ownership, relay refusal, aliases,
//! forwarding and remote recipients for the outbound queue, quota, lookup failures; driven
//! through `Session::handle` with in-memory doubles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::transcript;

use std::sync::atomic::Ordering;

use transcript::{mx, submission};
use wharf_store::queue::Notify;

#[tokio::test]
async fn sequence_errors() {
    let (mut c, _) = mx().connect().await;
    assert_eq!(
        c.cmd("MAIL FROM:<x@remote.test>").await,
        "503 5.5.1 Send EHLO/HELO first\r\n"
    );
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.test>").await,
        "503 5.5.1 Need MAIL command first\r\n"
    );
    assert_eq!(c.codes("MAIL FROM:<x@remote.test>").await, vec![250]);
    assert_eq!(
        c.cmd("MAIL FROM:<x@remote.test>").await,
        "503 5.5.1 Nested MAIL command\r\n"
    );
    assert_eq!(c.codes("MAIL FROM:x@remote.test").await, vec![501]);
}

#[tokio::test]
async fn mail_parameters() {
    let (mut c, _) = mx().cfg(|c| c.max_message_size = 1000).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<x@remote.test> SIZE=1001").await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<x@remote.test> REQUIRETLS").await,
        "530 5.7.10 REQUIRETLS needs a TLS connection\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<jö@remote.test>").await,
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
    assert_eq!(c.codes("MAIL FROM:<x@remote.test> FOO=1").await, vec![555]);
    assert_eq!(
        c.codes("MAIL FROM:<jö@remote.test> SMTPUTF8 SIZE=1000")
            .await,
        vec![250]
    );
    c.cmd("RSET").await;
    assert_eq!(
        c.codes("MAIL FROM:<>").await,
        vec![250],
        "null reverse path"
    );
}

#[tokio::test]
async fn submission_needs_auth_and_an_owned_sender() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.test>").await,
        "530 5.7.0 Authentication required\r\n"
    );
    c.login("alice@example.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<bob@example.test>").await,
        "553 5.7.1 Sender address not owned by the authenticated user\r\n"
    );
    assert_eq!(c.codes("MAIL FROM:<>").await, vec![553]);
    assert_eq!(c.codes("MAIL FROM:<team@example.test>").await, vec![250]);
    c.cmd("RSET").await;
    c.world.fail_lookups.store(true, Ordering::Relaxed);
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.test>").await,
        "451 4.3.0 Temporary lookup failure\r\n"
    );
}

#[tokio::test]
async fn mx_refuses_relay_and_unknown_users() {
    let (mut c, _) = mx().connect().await;
    c.cmd("EHLO c.test").await;
    c.cmd("MAIL FROM:<x@remote.test>").await;
    assert_eq!(
        c.cmd("RCPT TO:<someone@remote.test>").await,
        "550 5.7.1 Relay access denied\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<nobody@example.test>").await,
        "550 5.1.1 Recipient address rejected: user unknown\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.test>").await,
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(c.codes("RCPT TO:<>").await, vec![501]);
    assert_eq!(c.codes("RCPT TO:<ä@example.test>").await, vec![553]);
    c.world.fail_lookups.store(true, Ordering::Relaxed);
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.test>").await,
        "451 4.3.0 Temporary lookup failure\r\n"
    );
}

#[tokio::test]
async fn recipient_limit() {
    let (mut c, _) = mx().cfg(|c| c.max_recipients = 2).connect().await;
    c.envelope("x@remote.test", &["alice@example.test", "bob@example.test"])
        .await;
    assert_eq!(
        c.cmd("RCPT TO:<team@example.test>").await,
        "452 4.5.3 Too many recipients\r\n"
    );
}

#[tokio::test]
async fn quota_full_and_size_over_quota() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &[]).await;
    assert_eq!(
        c.cmd("RCPT TO:<full@example.test>").await,
        "452 4.2.2 Mailbox full\r\n"
    );
    c.cmd("RSET").await;
    c.cmd("MAIL FROM:<x@remote.test> SIZE=5000").await;
    assert_eq!(
        c.cmd("RCPT TO:<tiny@example.test>").await,
        "552 5.2.2 Message size exceeds the mailbox quota\r\n"
    );
    assert_eq!(c.codes("RCPT TO:<alice@example.test>").await, vec![250]);
}

#[tokio::test]
async fn alias_expands_to_accounts_once_each() {
    let (mut c, _) = mx().connect().await;
    c.envelope(
        "x@remote.test",
        &["team@example.test", "alice@example.test"],
    )
    .await;
    c.send(b"DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(c.world.inbox("alice@example.test").len(), 1);
    assert_eq!(c.world.inbox("bob@example.test").len(), 1);
}

#[tokio::test]
async fn forwarding_alias_targets_go_to_the_queue_with_orcpt() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &[]).await;
    assert_eq!(
        c.codes("RCPT TO:<fwd@example.test> NOTIFY=FAILURE").await,
        vec![250]
    );
    let r = c.send(b"DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n").await;
    assert!(r.ends_with("(outbound 100)\r\n"), "{r}");
    let entries = c.queue.entries.lock().unwrap();
    let (_, e, origin) = &entries[0];
    assert_eq!(*origin, wharf_smtp::Origin::Forward);
    assert_eq!(e.recipients.len(), 1);
    assert_eq!(e.recipients[0].address, "out@remote.test");
    assert_eq!(
        e.recipients[0].orcpt.as_deref(),
        Some("rfc822;fwd@example.test")
    );
    assert!(e.recipients[0].notify.failure && !e.recipients[0].notify.delay);
    assert_eq!(c.world.inbox("alice@example.test").len(), 1);
}

#[tokio::test]
async fn forwarding_without_a_queue_is_a_temporary_failure() {
    let (mut c, _) = mx().without_handoff().connect().await;
    c.envelope("x@remote.test", &[]).await;
    assert_eq!(
        c.cmd("RCPT TO:<fwd@example.test>").await,
        "451 4.3.0 Forwarding not available, try again later\r\n"
    );
}

#[tokio::test]
async fn submission_remote_recipients_carry_their_dsn_parameters() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    c.login("alice@example.test").await;
    assert_eq!(
        c.codes("MAIL FROM:<alice@example.test> RET=HDRS ENVID=abc+2Bd")
            .await,
        vec![250]
    );
    assert_eq!(
        c.codes("RCPT TO:<b@y.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;B@y.test")
            .await,
        vec![250]
    );
    assert_eq!(
        c.codes("RCPT TO:<B@Y.TEST>").await,
        vec![250],
        "deduplicated"
    );
    assert_eq!(c.codes("RCPT TO:<c@y.test>").await, vec![250]);
    let r = c
        .send(b"DATA\r\nFrom: <alice@example.test>\r\nSubject: s\r\n\r\nbody\r\n.\r\n")
        .await;
    assert!(
        r.ends_with("\r\n250 2.0.0 Ok: queued as SID.1 (outbound 100)\r\n"),
        "{r}"
    );
    let entries = c.queue.entries.lock().unwrap();
    let (id, e, origin) = &entries[0];
    assert_eq!(
        *origin,
        wharf_smtp::Origin::Submission {
            user: "alice@example.test".into()
        }
    );
    assert_eq!(e.sender, "alice@example.test");
    assert_eq!(e.envid.as_deref(), Some("abc+d"));
    assert_eq!(e.ret, Some(wharf_store::queue::Ret::Hdrs));
    assert_eq!(e.recipients.len(), 2);
    let b = &e.recipients[0];
    assert!(b.notify.success && b.notify.delay && !b.notify.failure && b.notify.explicit);
    assert_eq!(b.orcpt.as_deref(), Some("rfc822;B@y.test"));
    assert_eq!(e.recipients[1].notify, Notify::default_policy());
    assert_eq!(e.recipients[1].orcpt, None);
    assert!(
        e.raw.starts_with(b"Received: "),
        "no Return-Path in the queued copy"
    );
    assert_eq!(*c.queue.released.lock().unwrap(), vec![*id]);
}

#[tokio::test]
async fn submission_remote_recipient_without_a_queue_is_refused() {
    let (mut c, _) = submission(true).without_handoff().connect().await;
    c.cmd("EHLO c.test").await;
    c.login("alice@example.test").await;
    c.cmd("MAIL FROM:<alice@example.test>").await;
    assert_eq!(
        c.cmd("RCPT TO:<b@y.test>").await,
        "451 4.3.0 Remote delivery not available, try again later\r\n"
    );
}
