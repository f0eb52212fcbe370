//! Transcripts: NOTIFY (RFC 5465) — the command's rules and refusals, STATUS for other
//! mailboxes, the selected mailbox's events (and its frozen view without a `selected` group),
//! MailboxName, SubscriptionChange and METADATA changes; and over a loopback socket, events that
//! arrive between commands with no NOOP or IDLE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_imap::{ImapConfig, Input};

on_both!(
    notify_rules_and_refusals,
    status_for_other_mailboxes,
    selected_mailbox_events_with_fetch_attributes,
    selected_delayed_holds_expunges_until_a_command_allows_them,
    without_a_selected_group_the_view_stays,
    mailbox_names_and_subscriptions,
    metadata_changes,
    what_is_watched_follows_the_selection_and_new_mailboxes,
    own_changes_do_not_hide_others,
);

fn uid_validity(r: &str) -> u32 {
    let at = r.find("UIDVALIDITY ").expect(r) + 12;
    r[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Feeds `t` the store events that have arrived (as the connection loop does between commands
/// under NOTIFY) until `until` shows in what it answered.
async fn pushed(t: &mut T, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        let ev = tokio::time::timeout(Duration::from_secs(5), t.s.next_event())
            .await
            .unwrap_or_else(|_| panic!("no event; so far {seen:?}"));
        seen.push_str(&t.input(Input::Event(ev)).await.0);
    }
    seen
}

async fn notify_rules_and_refusals(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    let caps = t.cmd("a CAPABILITY").await;
    assert!(caps.contains(" NOTIFY"), "{caps}");
    // RFC 5465 §5: MessageNew and MessageExpunge together; FlagChange needs both.
    for (tag, line) in [
        ("b1", "NOTIFY SET (selected (MessageNew))"),
        ("b2", "NOTIFY SET (personal (MessageExpunge FlagChange))"),
        ("b3", "NOTIFY SET (personal (FlagChange))"),
        // §6.1: only message events for the selected mailbox, and one selected group.
        ("b4", "NOTIFY SET (selected (MailboxName))"),
        (
            "b5",
            "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)",
        ),
        ("b6", "NOTIFY SET (nowhere (MailboxName))"),
        ("b7", "NOTIFY"),
        ("b8", "NOTIFY SET"),
    ] {
        let r = t.cmd(&format!("{tag} {line}")).await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{line}: {r}");
    }
    // An event this server does not support is NO [BADEVENT (the supported ones)], not BAD.
    let r = t
        .cmd("c1 NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))")
        .await;
    assert!(
        r.starts_with(
            "c1 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)]"
        ),
        "{r}"
    );
    let r = t.cmd("c2 NOTIFY SET (inboxes (XFuture))").await;
    assert!(r.starts_with("c2 NO [BADEVENT"), "{r}");
    let r = t
        .cmd("c3 NOTIFY SET (inboxes (MessageNew MessageExpunge)) (subtree \"\" (MailboxName))")
        .await;
    assert_eq!(r, "c3 OK NOTIFY completed\r\n");
    let r = t.cmd("c4 NOTIFY NONE").await;
    assert_eq!(r, "c4 OK NOTIFY completed\r\n");
}

async fn status_for_other_mailboxes(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    a.cmd("c CREATE Work").await;
    let mut b = T::login(env).await;
    // STATUS: one response per watched mailbox before the tagged OK.
    let r = a
        .cmd("n NOTIFY SET STATUS (personal (MessageNew MessageExpunge))")
        .await;
    assert!(
        r.contains("* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "),
        "{r}"
    );
    assert!(
        r.contains("* STATUS Work (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "),
        "{r}"
    );
    assert!(r.ends_with("n OK NOTIFY completed\r\n"), "{r}");
    let v = uid_validity(r.lines().find(|l| l.contains("Work")).unwrap());
    // A delivery elsewhere: pushed between commands.
    b.append("Work", "", &message(1)).await;
    let r = pushed(&mut a, "STATUS").await;
    assert_eq!(
        r,
        format!("* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v})\r\n")
    );
    // A flag change is not asked for: nothing.
    b.cmd("s SELECT Work").await;
    b.cmd("f STORE 1 +FLAGS (\\Seen)").await;
    let r = a.cmd("n1 NOOP").await;
    assert_eq!(r, "n1 OK NOOP completed\r\n");
    // With FlagChange: HIGHESTMODSEQ tells of it, CONDSTORE or not (RFC 5465 §5.1).
    let r = a
        .cmd("n2 NOTIFY SET STATUS (mailboxes Work (MessageNew MessageExpunge FlagChange))")
        .await;
    assert!(
        r.starts_with(&format!(
            "* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v} HIGHESTMODSEQ "
        )),
        "{r}"
    );
    b.cmd("f2 STORE 1 -FLAGS (\\Seen)").await;
    let r = pushed(&mut a, "STATUS").await;
    assert!(
        r.starts_with(&format!(
            "* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v} HIGHESTMODSEQ "
        )),
        "{r}"
    );
    // Without FlagChange, CONDSTORE adds HIGHESTMODSEQ to the message events' STATUS.
    a.cmd("e ENABLE CONDSTORE").await;
    a.cmd("n3 NOTIFY SET (mailboxes Work (MessageNew MessageExpunge))")
        .await;
    // Expunged: the count drops.
    b.cmd("f3 STORE 1 +FLAGS (\\Deleted)").await;
    b.cmd("x EXPUNGE").await;
    let r = a.cmd("n3b NOOP").await;
    assert!(r.contains("* STATUS Work (MESSAGES 0 UIDNEXT 2 "), "{r}");
    assert!(r.contains(" HIGHESTMODSEQ "), "{r}");
    // This session's own APPEND is not reported back to it.
    let r = a
        .raw(
            format!(
                "ap APPEND Work {{{}}}\r\n{}\r\n",
                message(2).len(),
                message(2)
            )
            .as_bytes(),
        )
        .await;
    assert!(!r.contains("* STATUS"), "{r}");
    let r = a.cmd("n4 NOOP").await;
    assert_eq!(r, "n4 OK NOOP completed\r\n");
    // INBOX is not in `mailboxes Work`.
    b.append("INBOX", "", &message(3)).await;
    let r = a.cmd("n5 NOOP").await;
    assert_eq!(r, "n5 OK NOOP completed\r\n");
}

async fn selected_mailbox_events_with_fetch_attributes(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    a.append("INBOX", "", &message(1)).await;
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    b.cmd("s SELECT INBOX").await;
    let r = a
        .cmd("n NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge))")
        .await;
    assert!(r.ends_with("n OK NOTIFY completed\r\n"), "{r}");
    // The selected mailbox is not reported by STATUS; its new message comes as EXISTS and the
    // asked-for FETCH.
    b.append("INBOX", "", &message(2)).await;
    let r = pushed(&mut a, "FETCH").await;
    assert!(r.starts_with("* 2 EXISTS\r\n"), "{r}");
    assert!(!r.contains("STATUS"), "{r}");
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS () BODY[HEADER.FIELDS (Subject)] {"),
        "{r}"
    );
    assert!(r.contains("Subject: Message number 2\r\n"), "{r}");
    // A flag change: FETCH with UID and FLAGS.
    b.cmd("f STORE 1 +FLAGS (\\Flagged)").await;
    let r = pushed(&mut a, "FETCH").await;
    assert!(r.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged"), "{r}");
    // `selected` (not delayed): expunges come between commands too.
    b.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("x EXPUNGE").await;
    let r = pushed(&mut a, "EXPUNGE").await;
    assert!(r.contains("* 1 EXPUNGE\r\n"), "{r}");
    let r = a.cmd("k UID FETCH 1:* UID").await;
    assert_eq!(r, "* 1 FETCH (UID 2)\r\nk OK UID FETCH completed\r\n");
}

async fn selected_delayed_holds_expunges_until_a_command_allows_them(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    for i in 0..3 {
        a.append("INBOX", "", &message(i)).await;
    }
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    b.cmd("s SELECT INBOX").await;
    a.cmd("n NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
        .await;
    b.cmd("d STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("x EXPUNGE").await;
    b.append("INBOX", "", &message(7)).await;
    let r = pushed(&mut a, "EXISTS").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    assert!(r.contains("* 4 EXISTS\r\n"), "{r}");
    // FETCH by number may not see an expunge; NOOP may.
    let r = a.cmd("f FETCH 1:* UID").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    let r = a.cmd("o NOOP").await;
    assert_eq!(r, "* 2 EXPUNGE\r\no OK NOOP completed\r\n");
}

async fn without_a_selected_group_the_view_stays(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    a.append("INBOX", "", &message(1)).await;
    a.cmd("c CREATE Work").await;
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    a.cmd("n NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    // The selected mailbox has no group (SELECTED NONE): nothing about it, not even on NOOP;
    // other mailboxes are reported.
    b.append("INBOX", "", &message(2)).await;
    b.append("Work", "", &message(3)).await;
    let r = a.cmd("o NOOP").await;
    assert!(!r.contains("EXISTS"), "{r}");
    assert!(!r.contains("STATUS INBOX"), "{r}");
    assert!(r.contains("* STATUS Work (MESSAGES 1 "), "{r}");
    let r = a.cmd("f UID FETCH 1:* UID").await;
    assert_eq!(r, "* 1 FETCH (UID 1)\r\nf OK UID FETCH completed\r\n");
    // NOTIFY NONE: back to the usual announcements, with what was held back.
    let r = a.cmd("n2 NOTIFY NONE").await;
    assert!(r.contains("* 2 EXISTS\r\n"), "{r}");
    b.append("INBOX", "", &message(4)).await;
    let r = a.cmd("o2 NOOP").await;
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
}

async fn mailbox_names_and_subscriptions(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    let mut b = T::login(env).await;
    a.cmd("n NOTIFY SET (personal (MailboxName SubscriptionChange))")
        .await;
    b.cmd("c CREATE Foo").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(r, "* LIST (\\HasNoChildren) \"/\" Foo\r\n");
    b.cmd("r RENAME Foo Bar").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(
        r,
        "* LIST (\\HasNoChildren) \"/\" Bar (\"OLDNAME\" (Foo))\r\n"
    );
    b.cmd("u SUBSCRIBE Bar").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(r, "* LIST (\\HasNoChildren \\Subscribed) \"/\" Bar\r\n");
    b.cmd("u2 UNSUBSCRIBE Bar").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(r, "* LIST (\\HasNoChildren) \"/\" Bar\r\n");
    b.cmd("d DELETE Bar").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(r, "* LIST (\\NonExistent) \"/\" Bar\r\n");
    // This session's own changes are not reported back to it.
    let r = a.cmd("c2 CREATE Mine").await;
    assert!(r.starts_with("c2 OK "), "{r}");
    assert!(!r.contains("LIST"), "{r}");
    let r = a.cmd("o NOOP").await;
    assert_eq!(r, "o OK NOOP completed\r\n");
    // Outside the groups' mailboxes: nothing.
    a.cmd("n2 NOTIFY SET (subtree Mine (MailboxName))").await;
    b.cmd("c3 CREATE Other").await;
    b.cmd("c4 CREATE Mine/Child").await;
    let r = pushed(&mut a, "LIST").await;
    assert_eq!(r, "* LIST (\\HasNoChildren) \"/\" Mine/Child\r\n");
}

async fn metadata_changes(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    let mut b = T::login(env).await;
    a.cmd("n NOTIFY SET (inboxes (MailboxMetadataChange ServerMetadataChange))")
        .await;
    b.cmd("m SETMETADATA INBOX (/private/comment \"hello\" /shared/Vendor/X \"1\")")
        .await;
    let r = pushed(&mut a, "METADATA").await;
    assert_eq!(r, "* METADATA INBOX /private/comment /shared/vendor/x\r\n");
    b.cmd("m2 SETMETADATA \"\" (/private/comment NIL)").await;
    let r = pushed(&mut a, "METADATA").await;
    assert_eq!(r, "* METADATA \"\" /private/comment\r\n");
}

async fn what_is_watched_follows_the_selection_and_new_mailboxes(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    a.cmd("c CREATE Work").await;
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    a.cmd("n NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        .await;
    // INBOX selected: only Work is reported by STATUS.
    b.append("INBOX", "", &message(1)).await;
    b.append("Work", "", &message(2)).await;
    let r = a.cmd("o1 NOOP").await;
    assert!(r.contains("* STATUS Work (MESSAGES 1 "), "{r}");
    assert!(!r.contains("STATUS INBOX"), "{r}");
    // Work selected: now INBOX is reported, Work is not.
    a.cmd("s2 SELECT Work").await;
    b.append("INBOX", "", &message(3)).await;
    b.append("Work", "", &message(4)).await;
    let r = a.cmd("o2 NOOP").await;
    assert!(r.contains("* STATUS INBOX (MESSAGES 2 "), "{r}");
    assert!(!r.contains("STATUS Work"), "{r}");
    // A mailbox created and delivered to before the session hears of either: both reported.
    b.cmd("c2 CREATE Fresh").await;
    b.append("Fresh", "", &message(5)).await;
    let r = a.cmd("o3 NOOP").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" Fresh\r\n"),
        "{r}"
    );
    assert!(r.contains("* STATUS Fresh (MESSAGES 1 "), "{r}");
    // An unsubscribe under a `subscribed` group is reported, though the name leaves the group.
    b.cmd("u SUBSCRIBE Fresh").await;
    a.cmd("n2 NOTIFY SET (subscribed (SubscriptionChange))")
        .await;
    b.cmd("u2 UNSUBSCRIBE Fresh").await;
    let r = a.cmd("o4 NOOP").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" Fresh\r\n"),
        "{r}"
    );
}

async fn own_changes_do_not_hide_others(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    a.cmd("c CREATE Gone").await;
    let mut b = T::login(env).await;
    a.cmd("n NOTIFY SET (personal (MailboxName))").await;
    b.cmd("d DELETE Gone").await;
    // This session's CREATE is not reported back; the other session's DELETE is, first.
    let r = a.cmd("c2 CREATE Mine").await;
    assert!(
        r.starts_with("* LIST (\\NonExistent) \"/\" Gone\r\n"),
        "{r}"
    );
    assert!(!r.contains("Mine\r\n"), "{r}");
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&buf).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}"
        );
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("nothing more; got {}", String::from_utf8_lossy(&buf)))
            .unwrap();
        assert!(n > 0, "closed; got {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Over a real socket: with NOTIFY the server writes events while the client sends nothing.
#[tokio::test]
async fn events_arrive_between_commands_over_a_socket() {
    let env = sql_env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ImapConfig::default()
    };
    let (server, plain, _tls, _cert) = server(&env, cfg).await;
    let mut s = TcpStream::connect(plain).await.unwrap();
    read_until(&mut s, "\r\n").await;
    s.write_all(
        format!("l LOGIN {USER} \"{PASS}\"\r\nc CREATE Work\r\ns SELECT INBOX\r\n").as_bytes(),
    )
    .await
    .unwrap();
    read_until(&mut s, "s OK").await;
    s.write_all(b"n NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))\r\n")
        .await
        .unwrap();
    read_until(&mut s, "n OK").await;
    let mut b = T::login(&env).await;
    b.append("Work", "", &message(1)).await;
    let got = read_until(&mut s, "* STATUS Work").await;
    assert!(got.contains("(MESSAGES 1 UIDNEXT 2 "), "{got}");
    b.append("INBOX", "", &message(2)).await;
    let got = read_until(&mut s, "* 1 EXISTS\r\n").await;
    assert!(!got.contains("STATUS INBOX"), "{got}");
    // The connection still takes commands.
    s.write_all(b"z LOGOUT\r\n").await.unwrap();
    read_until(&mut s, "z OK").await;
    server.shutdown(Duration::from_secs(2)).await;
}

/// Pushed events are not client input: a client that sends nothing is logged out after the idle
/// timeout even while NOTIFY keeps writing to it.
#[tokio::test]
async fn pushes_do_not_keep_a_silent_client_alive() {
    let env = sql_env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        idle_timeout_secs: 2,
        ..ImapConfig::default()
    };
    let (server, plain, _tls, _cert) = server(&env, cfg).await;
    let mut s = TcpStream::connect(plain).await.unwrap();
    read_until(&mut s, "\r\n").await;
    s.write_all(
        format!("l LOGIN {USER} \"{PASS}\"\r\nc CREATE Work\r\nn NOTIFY SET (personal (MessageNew MessageExpunge))\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    read_until(&mut s, "n OK").await;
    let silent_since = Instant::now();
    let mut b = T::login(&env).await;
    let mut got = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    // A delivery every 300 ms for up to 8 s; the client never writes.
    while silent_since.elapsed() < Duration::from_secs(8) && !got.contains("* BYE") {
        b.append("Work", "", &message(1)).await;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(got.contains("* STATUS Work"), "{got}");
    assert!(got.contains("* BYE Autologout"), "{got}");
    let after = silent_since.elapsed();
    assert!(
        after < Duration::from_secs(4),
        "logged out only after {after:?}"
    );
    server.shutdown(Duration::from_secs(2)).await;
}
