//! Real server: the per-account expire policy (CAPA EXPIRE and removal at QUIT), expunges
//! published to other sessions, a large message streamed intact, and throttled logins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use support::*;
use wharf_directory::DirectoryConfig;
use wharf_store::{Delivery, MailboxEvent};

async fn capa_after_login(c: &mut Client) -> String {
    assert!(c.cmd("CAPA").await.starts_with("+OK"));
    String::from_utf8(c.multiline().await).unwrap()
}

#[tokio::test]
async fn expire_policy_is_announced_and_applied_and_expunges_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    fill_inbox(&env, &varied_messages(4)).await;
    let uids = inbox_uids(&env).await;
    let mut events = env.store.subscribe(env.account.id);

    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert!(
        capa_after_login(&mut c)
            .await
            .contains("\r\nEXPIRE NEVER\r\n")
    );
    c.retr(1).await.unwrap();
    assert!(c.cmd("QUIT").await.contains("(0 messages removed, 4 left)"));
    assert_eq!(
        inbox_uids(&env).await,
        uids,
        "no policy: retrieved messages stay"
    );

    // Messages were delivered "in 2026-09": with a 1-day policy every downloaded one is old enough.
    env.store
        .set_account_pop3_expire(env.account.id, Some(1))
        .await
        .unwrap();
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert!(capa_after_login(&mut c).await.contains("\r\nEXPIRE 1\r\n"));
    c.retr(3).await.unwrap();
    c.cmd("DELE 4").await;
    // Message 1 was marked \Seen by the previous session's RETR: downloaded before.
    assert!(c.cmd("QUIT").await.contains("(3 messages removed, 1 left)"));
    assert_eq!(inbox_uids(&env).await, vec![uids[1]]);

    // The expunge was published to the account's subscribers (IMAP sessions).
    let mut saw_change = false;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        if matches!(ev, MailboxEvent::Changed { .. }) {
            saw_change = true;
        }
    }
    assert!(saw_change);

    // A policy far in the future of the messages' age keeps them.
    env.store
        .set_account_pop3_expire(env.account.id, Some(100_000))
        .await
        .unwrap();
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert!(
        capa_after_login(&mut c)
            .await
            .contains("\r\nEXPIRE 100000\r\n")
    );
    c.retr(1).await.unwrap();
    assert!(c.cmd("QUIT").await.contains("(0 messages removed, 1 left)"));
}

#[tokio::test]
async fn large_message_streams_intact() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    let mut raw = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while raw.len() < 6 * 1024 * 1024 {
        raw.extend_from_slice(
            format!(
                "{}line {i} {}\r\n",
                if i.is_multiple_of(3) { "." } else { "" },
                "z".repeat((i % 200) as usize)
            )
            .as_bytes(),
        );
        i += 1;
    }
    env.store
        .deliver(Delivery {
            raw: Bytes::from(raw.clone()),
            internal_date: 1_790_000_000,
            recipients: vec![env.account.id],
            junk: false,
        })
        .await
        .unwrap();
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(c.cmd("LIST 1").await, format!("+OK 1 {}\r\n", raw.len()));
    assert_eq!(c.retr(1).await.unwrap(), raw);
    assert!(c.cmd("TOP 1 2").await.starts_with("+OK"));
    let top = c.multiline().await;
    assert_eq!(top, b"Subject: big\r\n\r\n..line 0 \r\nline 1 z\r\n.\r\n");
}

#[tokio::test]
async fn large_message_over_limit_is_sys_perm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wharf_pop3::Pop3Config {
        max_message_size: 1000,
        ..loopback_cfg()
    };
    let env = start_on(dir.path(), cfg, true).await;
    let raw = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(2000));
    env.store
        .deliver(Delivery {
            raw: Bytes::from(raw),
            internal_date: 1_790_000_000,
            recipients: vec![env.account.id],
            junk: false,
        })
        .await
        .unwrap();
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(
        c.cmd("RETR 1").await,
        "-ERR [SYS/PERM] message too large to retrieve\r\n"
    );
    assert_eq!(c.cmd("NOOP").await, "+OK\r\n");
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_sys_temp() {
    let dir = tempfile::tempdir().unwrap();
    let dircfg = DirectoryConfig {
        auth_fail_delay_base: Duration::from_millis(10),
        auth_fail_max_delay: Duration::from_millis(50),
        auth_ip_lockout_after: 3,
        auth_account_lockout_after: 3,
        auth_lockout: Duration::from_secs(60),
        ..DirectoryConfig::default()
    };
    let env = start_with(dir.path(), loopback_cfg(), dircfg, true).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let mut c = Client::connect(env.starttls).await;
        c.cmd(&format!("USER {USER}")).await;
        codes.push(c.cmd("PASS wrong-password").await);
    }
    assert_eq!(codes[0], "-ERR [AUTH] authentication failed\r\n");
    assert!(
        codes
            .last()
            .unwrap()
            .starts_with("-ERR [SYS/TEMP] too many failed logins"),
        "{codes:?}"
    );
    // Even the right password is refused while locked out, with [SYS/TEMP], not [AUTH].
    let mut c = Client::connect(env.starttls).await;
    c.cmd(&format!("USER {USER}")).await;
    assert!(
        c.cmd(&format!("PASS {PASS}"))
            .await
            .starts_with("-ERR [SYS/TEMP]")
    );
}
