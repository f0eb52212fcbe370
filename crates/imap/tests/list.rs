//! Transcripts on the in-memory backend: LIST (extended selection and return options, status,
//! special-use) and LSUB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

#[tokio::test]
async fn list_variants() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let r = t.cmd("a LIST \"\" \"\"").await;
    assert_eq!(
        r,
        "* LIST (\\Noselect) \"/\" \"\"\r\na OK LIST completed\r\n"
    );
    let r = t.cmd("b LIST \"\" %").await;
    for n in ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"] {
        assert!(r.contains(&format!("\"/\" {n}\r\n")), "{n}: {r}");
    }
    assert!(
        r.contains("* LIST (\\Sent \\HasNoChildren) \"/\" Sent\r\n"),
        "{r}"
    );
    let r = t.cmd("c LIST (SPECIAL-USE) \"\" *").await;
    assert!(!r.contains("INBOX"), "{r}");
    assert!(r.contains("\\Trash"), "{r}");
    t.append("INBOX", "", &message(1)).await;
    let r = t
        .cmd("d LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN SIZE) SUBSCRIBED CHILDREN)")
        .await;
    assert!(
        r.contains("* STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE "),
        "{r}"
    );
    assert!(
        r.contains("* STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE 0)"),
        "{r}"
    );
    let r = t.cmd("e LIST \"\" inbox").await;
    assert!(r.contains("\"/\" INBOX\r\n"), "{r}");
    let r = t.cmd("f NAMESPACE").await;
    assert_eq!(
        r,
        "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL\r\nf OK NAMESPACE completed\r\n"
    );
    let r = t.cmd("g LIST (RECURSIVEMATCH) \"\" *").await;
    assert!(r.starts_with("g BAD"), "{r}");
    t.cmd("h CREATE A/B").await;
    t.cmd("i SUBSCRIBE A/B").await;
    let r = t.cmd("j LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        r.contains("\"/\" A (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
}

/// A pattern that is not valid modified UTF-7 can match no mailbox: LIST and LSUB answer OK with
/// nothing (RFC 9051 §6.3.9), not NO [CANNOT].
#[tokio::test]
async fn unusual_atoms_list_nothing() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for (tag, cmd) in [
        ("a", "LIST \"\" &"),
        ("b", "LIST \"\" \"&Jjo\""),
        ("c", "LIST &- *"),
        ("d", "LSUB \"\" \"&zz-\""),
    ] {
        let r = t.cmd(&format!("{tag} {cmd}")).await;
        assert!(r.starts_with(&format!("{tag} OK")), "{cmd}: {r}");
    }
    // Valid ones still list.
    let r = t.cmd("e LIST \"\" INBOX").await;
    assert!(r.contains("\"INBOX\"") || r.contains(" INBOX\r\n"), "{r}");
}

/// Subscriptions are names: DELETE leaves the name subscribed, and LIST (SUBSCRIBED) reports it
/// as \NonExistent until it is unsubscribed (RFC 9051 §6.3.7, RFC 5258 §3.1).
#[tokio::test]
async fn a_deleted_mailbox_stays_subscribed_as_nonexistent() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.cmd("a CREATE Old").await;
    t.cmd("b SUBSCRIBE Old").await;
    assert!(t.cmd("c DELETE Old").await.starts_with("c OK"));
    let r = t.cmd("d LIST (SUBSCRIBED) \"\" *").await;
    assert!(
        r.contains("* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" Old\r\n"),
        "{r}"
    );
    // Not a mailbox: a plain LIST leaves it out, LSUB shows it unselectable.
    let r = t.cmd("e LIST \"\" *").await;
    assert!(!r.contains(" Old\r\n"), "{r}");
    let r = t.cmd("f LSUB \"\" *").await;
    assert!(r.contains("* LSUB (\\Noselect) \"/\" Old\r\n"), "{r}");
    // Created again, it is subscribed again.
    t.cmd("g CREATE Old").await;
    let r = t.cmd("h LIST \"\" Old RETURN (SUBSCRIBED)").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren \\Subscribed) \"/\" Old\r\n"),
        "{r}"
    );
    t.cmd("i DELETE Old").await;
    // A name without a mailbox can be unsubscribed.
    assert_eq!(
        t.cmd("j UNSUBSCRIBE Old").await,
        "j OK UNSUBSCRIBE completed\r\n"
    );
    let r = t.cmd("k LIST (SUBSCRIBED) \"\" *").await;
    assert!(!r.contains("Old"), "{r}");
    let r = t.cmd("l LSUB \"\" *").await;
    assert!(!r.contains("Old"), "{r}");
}

/// RECURSIVEMATCH lists a parent with CHILDINFO only for subscribed children the pattern does
/// not list themselves (RFC 5258 §3.5).
#[tokio::test]
async fn recursivematch_childinfo_only_for_children_not_listed() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.cmd("a CREATE Lists/Rust/Tokio").await;
    t.cmd("b SUBSCRIBE Lists/Rust/Tokio").await;
    // `*` lists the child itself: no parent line.
    let r = t.cmd("c LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *").await;
    assert!(r.contains("\"/\" Lists/Rust/Tokio\r\n"), "{r}");
    assert!(!r.contains("CHILDINFO"), "{r}");
    // `%` does not: the top-level parent carries CHILDINFO.
    let r = t.cmd("d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        r.contains("\"/\" Lists (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
    // `Lists/%` lists neither child nor grandchild, so Lists/Rust carries it.
    let r = t
        .cmd("e LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Lists/%")
        .await;
    assert!(
        r.contains("\"/\" Lists/Rust (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
    // The subscription of a deleted child still counts.
    t.cmd("f DELETE Lists/Rust/Tokio").await;
    let r = t.cmd("g LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        r.contains("\"/\" Lists (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
}

/// RENAME carries the subscriptions of the mailbox and its children.
#[tokio::test]
async fn rename_carries_subscriptions() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.cmd("a CREATE P/C").await;
    t.cmd("b SUBSCRIBE P").await;
    t.cmd("c SUBSCRIBE P/C").await;
    assert!(t.cmd("d RENAME P Q").await.starts_with("d OK"));
    let r = t.cmd("e LSUB \"\" *").await;
    assert!(
        r.contains("* LSUB () \"/\" Q\r\n") && r.contains("* LSUB () \"/\" Q/C\r\n"),
        "{r}"
    );
    assert!(!r.contains(" P"), "{r}");
}
