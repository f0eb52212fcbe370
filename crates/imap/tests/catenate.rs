//! CATENATE (RFC 4469): messages built from text literals and IMAP URLs (RFC 5092) of the user's
//! own messages, alone and inside MULTIAPPEND; BADURL and TOOBIG.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

const PARTS: &str = "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--b--\r\n";
const HEADER: &str = "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";

/// Drafts holds PARTS as UID 1; its UIDVALIDITY.
async fn drafts(t: &mut T) -> u32 {
    assert_eq!(t.append("Drafts", "", PARTS).await, 1);
    drafts_validity(t).await
}

async fn drafts_validity(t: &mut T) -> u32 {
    let r = t.cmd("v STATUS Drafts (UIDVALIDITY)").await;
    r.split("UIDVALIDITY ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The whole message of UID `uid` in INBOX.
async fn inbox_body(t: &mut T, uid: u32) -> String {
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd(&format!("f UID FETCH {uid} BODY.PEEK[]")).await;
    let start = r.find("}\r\n").unwrap() + 3;
    let end = r.rfind(")\r\nf OK").unwrap();
    r[start..end].to_string()
}

fn appenduid(r: &str) -> String {
    let code = r.split("[APPENDUID ").nth(1).unwrap();
    code.split(']')
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string()
}

async fn builds_a_message_from_parts(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    assert!(t.cmd("c CAPABILITY").await.contains(" CATENATE"));
    let v = drafts(&mut t).await;
    let text = "Content-Type: text/plain\r\n\r\nnew text\r\n";
    let tail = "--x--\r\n";
    // A synchronising TEXT literal gets its continuation request like any other.
    let cmd = format!(
        "a APPEND INBOX (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY={v}/;UID=1/;SECTION=HEADER\" TEXT {{{}}}\r\n{text} URL \"/Drafts/;UID=1/;section=1.MIME\" URL /Drafts/;UID=1/;SECTION=1 TEXT {{{}+}}\r\n{tail})\r\n",
        text.len(),
        tail.len()
    );
    let r = t.raw(cmd.as_bytes()).await;
    assert!(
        r.starts_with("+ Ready for literal data\r\na OK [APPENDUID "),
        "{r}"
    );
    let uid: u32 = appenduid(&r).parse().unwrap();
    let want = format!("{HEADER}{text}Content-Type: text/plain\r\n\r\nfirst part{tail}");
    assert_eq!(inbox_body(&mut t, uid).await, want);
    // PARTIAL, and a URL naming INBOX in any case.
    let iv = inbox_validity(&mut t).await;
    let r = t
        .cmd(&format!(
            "b APPEND INBOX CATENATE (URL \"/inbox;UIDVALIDITY={iv}/;UID={uid}/;PARTIAL=6.13\")"
        ))
        .await;
    assert!(r.contains("b OK [APPENDUID "), "{r}");
    let uid2: u32 = appenduid(&r).parse().unwrap();
    assert_eq!(inbox_body(&mut t, uid2).await, "a@example.org");
}

async fn inbox_validity(t: &mut T) -> u32 {
    let r = t.cmd("w STATUS INBOX (UIDVALIDITY)").await;
    r.split("UIDVALIDITY ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn bad_urls_store_nothing(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    let v = drafts(&mut t).await;
    let wrong = v.wrapping_add(1).max(1);
    for (i, url) in [
        format!("/Drafts;UIDVALIDITY={wrong}/;UID=1"),
        "/Drafts/;UID=2".to_string(),
        "/Nope/;UID=1".to_string(),
        "/Drafts/;UID=1/;SECTION=7".to_string(),
        "imap://alice@example.test/Drafts/;UID=1".to_string(),
        "/Drafts/;UID=1/;URLAUTH=anonymous:internal:0123".to_string(),
        "/Drafts/;UID=1/;SECTION=1]".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let r = t
            .cmd(&format!(
                "b{i} APPEND INBOX CATENATE (TEXT {{2+}}\r\nhi URL \"{url}\")"
            ))
            .await;
        let shown = url.replace(']', "");
        assert_eq!(
            r,
            format!("b{i} NO [BADURL {shown}] Cannot resolve the URL\r\n")
        );
    }
    // Account scoping: alice's Drafts has UID 2, bob's Drafts (same name) has only UID 1. A URL
    // with bob's own UIDVALIDITY, or none, naming UID 2 resolves only if it reached alice's.
    assert_eq!(t.append("Drafts", "", PARTS).await, 2);
    let mut b = T::new(env, true, wharf_imap::ImapConfig::default());
    b.cmd(&format!("b0 LOGIN {USER2} \"{PASS}\"")).await;
    assert_eq!(b.append("Drafts", "", &message(7)).await, 1);
    let bv = drafts_validity(&mut b).await;
    for url in [
        format!("/Drafts;UIDVALIDITY={bv}/;UID=2"),
        "/Drafts/;UID=2".to_string(),
    ] {
        let r = b
            .cmd(&format!("b1 APPEND INBOX CATENATE (URL \"{url}\")"))
            .await;
        assert_eq!(
            r,
            format!("b1 NO [BADURL {url}] Cannot resolve the URL\r\n")
        );
    }
    // His own UID 1 resolves, so the refusals above were about whose message it is.
    let r = b
        .cmd(&format!(
            "b2 APPEND Sent CATENATE (URL \"/Drafts;UIDVALIDITY={bv}/;UID=1\")"
        ))
        .await;
    assert!(r.starts_with("b2 OK [APPENDUID "), "{r}");
    // In a MULTIAPPEND, one bad URL fails all.
    let m = message(1);
    let r = t
        .raw(format!("c APPEND INBOX {{{}+}}\r\n{m} CATENATE (URL \"/Drafts/;UID=1\") CATENATE (URL \"/Drafts/;UID=9\")\r\n", m.len()).as_bytes())
        .await;
    assert!(r.starts_with("c NO [BADURL /Drafts/;UID=9]"), "{r}");
    let r = t.cmd("d STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    let r = b.cmd("b2 STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
}

async fn with_multiappend(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    drafts(&mut t).await;
    let m = message(1);
    let r = t
        .raw(format!("a APPEND INBOX {{{}+}}\r\n{m} (\\Flagged) CATENATE (URL \"/Drafts/;UID=1\" TEXT {{4+}}\r\nmore) CATENATE (TEXT {{2+}}\r\nx\n)\r\n", m.len()).as_bytes())
        .await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    assert_eq!(appenduid(&r), "1:3");
    assert_eq!(inbox_body(&mut t, 1).await, m);
    assert_eq!(inbox_body(&mut t, 2).await, format!("{PARTS}more"));
    assert_eq!(inbox_body(&mut t, 3).await, "x\n");
    let r = t.cmd("g FETCH 2 FLAGS").await;
    assert!(r.contains("\\Flagged"), "{r}");
}

async fn mailbox_names_in_utf8_or_modified_utf7(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    // "Entwürfe", created by an IMAP4rev1 client in modified UTF-7.
    assert!(t.cmd("c CREATE Entw&APw-rfe").await.contains("c OK"));
    let m = message(1);
    t.append("Entw&APw-rfe", "", &m).await;
    for (i, url) in ["/Entw%C3%BCrfe/;UID=1", "/Entw&APw-rfe/;UID=1"]
        .iter()
        .enumerate()
    {
        let r = t
            .cmd(&format!("a{i} APPEND INBOX CATENATE (URL \"{url}\")"))
            .await;
        assert!(r.contains(&format!("a{i} OK [APPENDUID")), "{r}");
    }
    assert_eq!(inbox_body(&mut t, 2).await, m);
}

on_both!(
    builds_a_message_from_parts,
    mailbox_names_in_utf8_or_modified_utf7,
    bad_urls_store_nothing,
    with_multiappend
);

#[tokio::test]
async fn toobig_when_the_result_passes_max_append() {
    let env = sql_env().await;
    let cfg = wharf_imap::ImapConfig {
        max_append: 400,
        ..wharf_imap::ImapConfig::default()
    };
    let mut t = T::new(&env, true, cfg);
    t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    assert_eq!(t.append("Drafts", "", PARTS).await, 1);
    // 2 × 282 octets: each URL fits, the message does not.
    assert!(PARTS.len() * 2 > 400 && PARTS.len() < 400);
    let r = t
        .cmd("a APPEND INBOX CATENATE (URL \"/Drafts/;UID=1\" URL \"/Drafts/;UID=1\")")
        .await;
    assert_eq!(r, "a NO [TOOBIG] Message too large\r\n");
    // Across the messages of a MULTIAPPEND too.
    let r = t
        .cmd("b APPEND INBOX CATENATE (URL \"/Drafts/;UID=1\") CATENATE (URL \"/Drafts/;UID=1\")")
        .await;
    assert_eq!(r, "b NO [TOOBIG] Message too large\r\n");
    let r = t.cmd("c STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
}

/// At most 100 URLs in one APPEND, across its messages; the same message named again is read
/// once; what the URLs make the server read counts against `max_append`, even when only a
/// slice of it goes into the message.
#[tokio::test]
async fn urls_are_bounded_per_command() {
    let env = sql_env().await;
    let cfg = wharf_imap::ImapConfig {
        max_append: 400,
        ..wharf_imap::ImapConfig::default()
    };
    let mut t = T::new(&env, true, cfg);
    t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    assert_eq!(t.append("Drafts", "", PARTS).await, 1);
    assert_eq!(t.append("Drafts", "", PARTS).await, 2);
    let url = |uid: u32| format!("URL \"/Drafts/;UID={uid}/;PARTIAL=0.1\"");
    let urls = |n: usize| vec![url(1); n].join(" ");
    // 100 one-octet slices of UID 1, in two messages: UID 1 is read once (282 ≤ 400).
    let r = t
        .cmd(&format!(
            "a APPEND INBOX CATENATE ({}) CATENATE ({})",
            urls(60),
            urls(40)
        ))
        .await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    // 101: refused before any lookup.
    let r = t
        .cmd(&format!(
            "b APPEND INBOX CATENATE ({}) CATENATE ({})",
            urls(60),
            urls(41)
        ))
        .await;
    assert!(r.starts_with("b BAD "), "{r}");
    // Two different messages: two octets in the result, 564 read.
    let r = t
        .cmd(&format!("c APPEND INBOX CATENATE ({} {})", url(1), url(2)))
        .await;
    assert_eq!(r, "c NO [TOOBIG] The URLs name too much to read\r\n");
    let r = t.cmd("d STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 2)"), "{r}");
}
