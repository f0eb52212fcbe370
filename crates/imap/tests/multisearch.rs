//! Transcripts: ESEARCH over several mailboxes (RFC 7377, MULTISEARCH) — every source filter,
//! the correlators, the rules on SAVE, `$`, charsets and missing mailboxes, the authenticated
//! state, answers written in chunks, and another account's mailboxes never searched. Each test
//! runs on the in-memory double and on the embedded store behind the real adapters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

fn msg(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from} <{from}@example.org>\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: Wed, 1 Jan 2020 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// The UIDVALIDITY of a mailbox, from STATUS.
async fn validity(t: &mut T, mailbox: &str) -> u32 {
    let r = t.cmd(&format!("v STATUS {mailbox} (UIDVALIDITY)")).await;
    let v = r.split("UIDVALIDITY ").nth(1).expect(&r);
    v.split(')').next().unwrap().parse().unwrap()
}

/// `* ESEARCH (TAG "tag" MAILBOX "name" UIDVALIDITY v) UID rest`
fn line(tag: &str, mailbox: &str, v: u32, rest: &str) -> String {
    format!("* ESEARCH (TAG \"{tag}\" MAILBOX \"{mailbox}\" UIDVALIDITY {v}) UID {rest}\r\n")
}

/// alice: INBOX (ann, bob, ann), Work (carol, ann), Work/2024 (ann), Work/2024/Q1 (ann),
/// Lists (subscribed; dave). Not selected.
async fn fixture(env: &impl HasBackend) -> T {
    let mut t = T::login(env).await;
    for m in ["Work", "Work/2024", "Work/2024/Q1", "Lists"] {
        let r = t.cmd(&format!("c CREATE {m}")).await;
        assert!(r.contains("c OK"), "{r}");
    }
    t.cmd("s SUBSCRIBE Lists").await;
    let mail = [
        ("INBOX", "ann", "Quarterly report", "numbers are up"),
        ("INBOX", "bob", "Lunch", "pizza at noon"),
        (
            "INBOX",
            "ann",
            "Re: Quarterly report",
            "thanks for the numbers",
        ),
        ("Work", "carol", "Planning", "the roadmap"),
        ("Work", "ann", "Budget", "numbers for 2024"),
        ("Work/2024", "ann", "Q2", "more numbers"),
        ("Work/2024/Q1", "ann", "Q1", "first numbers"),
        ("Lists", "dave", "Digest", "list traffic"),
    ];
    for (mb, from, subject, body) in mail {
        t.append(mb, "", &msg(from, subject, body)).await;
    }
    t
}

async fn sources_in_authenticated_state(env: &impl HasBackend) {
    let mut t = fixture(env).await;
    let r = t.cmd("c CAPABILITY").await;
    assert!(r.contains(" MULTISEARCH"), "{r}");
    let (inbox, work, w24, q1, lists) = (
        validity(&mut t, "INBOX").await,
        validity(&mut t, "Work").await,
        validity(&mut t, "Work/2024").await,
        validity(&mut t, "Work/2024/Q1").await,
        validity(&mut t, "Lists").await,
    );

    // personal: every mailbox with a match, by name; none for a mailbox without one.
    let r = t.cmd("a ESEARCH IN (personal) FROM ann").await;
    assert_eq!(
        r,
        [
            line("a", "INBOX", inbox, "ALL 1,3"),
            line("a", "Work", work, "ALL 2"),
            line("a", "Work/2024", w24, "ALL 1"),
            line("a", "Work/2024/Q1", q1, "ALL 1"),
            "a OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );

    // Result options apply per mailbox.
    let r = t
        .cmd("b ESEARCH IN (mailboxes (INBOX Work)) RETURN (MIN MAX COUNT) TEXT numbers")
        .await;
    assert_eq!(
        r,
        [
            line("b", "INBOX", inbox, "MIN 1 MAX 3 COUNT 2"),
            line("b", "Work", work, "MIN 2 MAX 2 COUNT 1"),
            "b OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );

    // No match anywhere: only the tagged OK (even with COUNT).
    let r = t
        .cmd("c ESEARCH IN (personal) RETURN (COUNT) FROM zed")
        .await;
    assert_eq!(r, "c OK ESEARCH completed\r\n");

    // subtree: the mailbox and all below; subtree-one: one level below.
    let r = t.cmd("d ESEARCH IN (subtree Work) ALL").await;
    assert_eq!(
        r,
        [
            line("d", "Work", work, "ALL 1:2"),
            line("d", "Work/2024", w24, "ALL 1"),
            line("d", "Work/2024/Q1", q1, "ALL 1"),
            "d OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );
    let r = t.cmd("e ESEARCH IN (subtree-one Work) ALL").await;
    assert_eq!(
        r,
        [
            line("e", "Work", work, "ALL 1:2"),
            line("e", "Work/2024", w24, "ALL 1"),
            "e OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );

    // subscribed (INBOX is, by default), inboxes; a mailbox named twice is searched once, in
    // the order first named.
    let r = t.cmd("f0 ESEARCH IN (subscribed) RETURN (COUNT) ALL").await;
    assert_eq!(
        r,
        [
            line("f0", "INBOX", inbox, "COUNT 3"),
            line("f0", "Lists", lists, "COUNT 1"),
            "f0 OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );
    let r = t
        .cmd("f ESEARCH IN (mailboxes Lists inboxes subscribed mailboxes INBOX personal) RETURN (COUNT) ALL")
        .await;
    let first_lines: Vec<&str> = r.lines().take(3).collect();
    assert_eq!(
        first_lines,
        [
            line("f", "Lists", lists, "COUNT 1").trim_end(),
            line("f", "INBOX", inbox, "COUNT 3").trim_end(),
            line("f", "Work", work, "COUNT 2").trim_end(),
        ],
        "{r}"
    );
    assert_eq!(r.matches("MAILBOX \"INBOX\"").count(), 1, "{r}");
    assert!(r.ends_with("f OK ESEARCH completed\r\n"), "{r}");

    // Sequence numbers are each mailbox's own; UIDs are what comes back.
    let r = t.cmd("g ESEARCH IN (mailboxes Work) 2").await;
    assert_eq!(
        r,
        [
            line("g", "Work", work, "ALL 2"),
            "g OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );

    // A MODSEQ key: each response carries its mailbox's highest mod-sequence.
    let r = t.cmd("h ESEARCH IN (mailboxes Lists) MODSEQ 1").await;
    assert!(
        r.contains(&format!(
            "(TAG \"h\" MAILBOX \"Lists\" UIDVALIDITY {lists}) UID ALL 1 MODSEQ "
        )),
        "{r}"
    );

    // A literal mailbox name and a quoted one.
    let r = t
        .raw(b"i ESEARCH IN (mailboxes ({4}\r\nWork \"Work/2024\")) RETURN (COUNT) ALL\r\n")
        .await;
    assert!(r.contains(&line("i", "Work/2024", w24, "COUNT 1")), "{r}");
}

async fn refusals(env: &impl HasBackend) {
    let mut t = fixture(env).await;
    // "selected" (explicit or by default) needs a selected mailbox.
    let r = t.cmd("a ESEARCH ALL").await;
    assert!(r.starts_with("a BAD"), "{r}");
    let r = t.cmd("b ESEARCH IN (selected personal) ALL").await;
    assert!(r.starts_with("b BAD"), "{r}");
    // SAVE and $ only with the selected mailbox as the one source.
    let r = t.cmd("c ESEARCH IN (personal) RETURN (SAVE) ALL").await;
    assert!(r.starts_with("c BAD"), "{r}");
    let r = t.cmd("d ESEARCH IN (personal) UID $").await;
    assert!(r.starts_with("d BAD"), "{r}");
    // Charsets as SEARCH.
    let r = t.cmd("e ESEARCH IN (personal) CHARSET KOI8-R ALL").await;
    assert!(r.starts_with("e NO [BADCHARSET (UTF-8 US-ASCII)]"), "{r}");
    let r = t.cmd("e2 ESEARCH IN (inboxes) CHARSET UTF-8 ALL").await;
    assert!(r.ends_with("e2 OK ESEARCH completed\r\n"), "{r}");
    // A named mailbox that does not exist: NO [NONEXISTENT], and no partial answer.
    let r = t.cmd("f ESEARCH IN (mailboxes (INBOX Nope)) ALL").await;
    assert_eq!(r, "f NO [NONEXISTENT] No such mailbox: Nope\r\n");
    let r = t.cmd("g ESEARCH IN (subtree Nope) ALL").await;
    assert!(r.starts_with("g NO [NONEXISTENT]"), "{r}");
    // Syntax: unknown filter, scope options (none defined), missing names, empty list.
    for bad in [
        "h ESEARCH IN (everything) ALL",
        "h ESEARCH IN (personal (depth 1)) ALL",
        "h ESEARCH IN (mailboxes) ALL",
        "h ESEARCH IN () ALL",
        "h ESEARCH IN (personal)",
        "h ESEARCH IN (personal) RETURN (UPDATE) ALL",
        "h ESEARCH IN (mailboxes ()) ALL",
    ] {
        let r = t.cmd(bad).await;
        assert!(r.starts_with("h BAD"), "{bad}: {r}");
    }
    // Not before login.
    let mut anon = T::new(env, true, wharf_imap::ImapConfig::default());
    let r = anon.cmd("a ESEARCH IN (personal) ALL").await;
    assert!(r.starts_with("a BAD"), "{r}");
}

async fn selected_state(env: &impl HasBackend) {
    let mut t = fixture(env).await;
    let (inbox, work) = (
        validity(&mut t, "INBOX").await,
        validity(&mut t, "Work").await,
    );
    t.cmd("s SELECT INBOX").await;
    // No source options: the selected mailbox, in UIDs, with the correlators.
    let r = t.cmd("a ESEARCH FROM ann").await;
    assert_eq!(
        r,
        [
            line("a", "INBOX", inbox, "ALL 1,3"),
            "a OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
    // selected-delayed (RFC 5465) is accepted as selected.
    let r = t
        .cmd("b ESEARCH IN (selected-delayed) RETURN (COUNT) ALL")
        .await;
    assert_eq!(
        r,
        [
            line("b", "INBOX", inbox, "COUNT 3"),
            "b OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
    // SAVE with the selected mailbox alone, then `$`.
    let r = t
        .cmd("c ESEARCH IN (selected) RETURN (SAVE) FROM bob")
        .await;
    assert_eq!(r, "c OK ESEARCH completed\r\n");
    let r = t.cmd("d FETCH $ (UID)").await;
    assert_eq!(r, "* 2 FETCH (UID 2)\r\nd OK FETCH completed\r\n");
    let r = t.cmd("e ESEARCH UID $").await;
    assert!(r.starts_with(&line("e", "INBOX", inbox, "ALL 2")), "{r}");
    // selected with others; sequence numbers of the selected mailbox are its view's.
    let r = t
        .cmd("f ESEARCH IN (selected mailboxes Work) RETURN (ALL) 1:2")
        .await;
    assert_eq!(
        r,
        [
            line("f", "INBOX", inbox, "ALL 1:2"),
            line("f", "Work", work, "ALL 1:2"),
            "f OK ESEARCH completed\r\n".into(),
        ]
        .concat()
    );
    // Messages flagged in the session show in the selected mailbox's answer.
    t.cmd("g STORE 3 +FLAGS (\\Flagged)").await;
    let r = t.cmd("h ESEARCH IN (personal) FLAGGED").await;
    assert_eq!(
        r,
        [
            line("h", "INBOX", inbox, "ALL 3"),
            "h OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
}

/// Mailbox names in the client's encoding: modified UTF-7, then UTF-8 once enabled.
async fn international_names(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    t.cmd("c CREATE Entw&APw-rfe").await;
    t.append("Entw&APw-rfe", "", &msg("ann", "Entwurf", "Grüße"))
        .await;
    let v = validity(&mut t, "Entw&APw-rfe").await;
    let r = t
        .cmd("a ESEARCH IN (mailboxes Entw&APw-rfe) CHARSET UTF-8 BODY gruesse")
        .await;
    assert_eq!(r, "a OK ESEARCH completed\r\n");
    let r = t.cmd("b ESEARCH IN (personal) FROM ann").await;
    assert_eq!(
        r,
        [
            line("b", "Entw&APw-rfe", v, "ALL 1"),
            "b OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
    t.cmd("e ENABLE UTF8=ACCEPT").await;
    let r = t
        .cmd("c ESEARCH IN (mailboxes \"Entwürfe\") BODY \"grüße\"")
        .await;
    assert_eq!(
        r,
        [
            line("c", "Entwürfe", v, "ALL 1"),
            "c OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
}

/// Many mailboxes: the answer comes in several steps (the session yields between batches) and
/// is complete and in order.
async fn many_mailboxes(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    for i in 0..150 {
        let name = format!("Box{i:03}");
        let r = t.cmd(&format!("c CREATE {name}")).await;
        assert!(r.contains("c OK"), "{r}");
        t.append(&name, "", &msg("ann", &format!("n{i}"), "text"))
            .await;
    }
    let r = t
        .cmd("a ESEARCH IN (personal) RETURN (COUNT) FROM ann")
        .await;
    let names: Vec<&str> = r
        .lines()
        .filter_map(|l| l.split("MAILBOX \"").nth(1))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    let want: Vec<String> = (0..150).map(|i| format!("Box{i:03}")).collect();
    assert_eq!(names, want);
    assert!(r.ends_with("a OK ESEARCH completed\r\n"));
}

/// bob's mailboxes are never searched or named: same words, same mailbox names.
async fn other_accounts_never_searched(env: &impl HasBackend) {
    let mut bob = T::new(env, true, wharf_imap::ImapConfig::default());
    let r = bob.cmd(&format!("a0 LOGIN {USER2} \"{PASS}\"")).await;
    assert!(r.contains("a0 OK"), "{r}");
    bob.cmd("c CREATE Secret").await;
    bob.cmd("c CREATE Shared").await;
    for mb in ["INBOX", "Secret", "Shared"] {
        bob.append(mb, "", &msg("ann", "Quarterly report", "numbers"))
            .await;
    }
    let mut t = T::login(env).await;
    t.cmd("c CREATE Shared").await;
    let inbox = validity(&mut t, "INBOX").await;
    t.append("INBOX", "", &msg("ann", "Quarterly report", "numbers"))
        .await;
    let r = t.cmd("a ESEARCH IN (personal) TEXT numbers").await;
    assert_eq!(
        r,
        [
            line("a", "INBOX", inbox, "ALL 1"),
            "a OK ESEARCH completed\r\n".into()
        ]
        .concat()
    );
    let r = t.cmd("b ESEARCH IN (mailboxes Secret) ALL").await;
    assert!(r.starts_with("b NO [NONEXISTENT]"), "{r}");
    let r = t
        .cmd("c ESEARCH IN (subtree \"\") RETURN (COUNT) ALL")
        .await;
    assert!(!r.contains("Secret"), "{r}");
    assert!(!r.contains("Shared"), "{r}");
    assert_eq!(r.matches("* ESEARCH").count(), 1, "{r}");
}

on_both!(
    sources_in_authenticated_state,
    refusals,
    selected_state,
    international_names,
    many_mailboxes,
    other_accounts_never_searched,
);

/// The same from Python's imaplib over TLS against a live server on the embedded store (raw
/// ESEARCH commands, `tests/clients/imaplib_multisearch.py`), bob's mail never in alice's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_multisearch() {
    let env = sql_env().await;
    let (server, _plain, tls, cert) = server(&env, wharf_imap::ImapConfig::default()).await;
    let args = two_user_args(tls, cert);
    python_client("imaplib_multisearch.py", args, "imaplib multisearch OK").await;
    server.shutdown(std::time::Duration::from_secs(2)).await;
}
