//! Transcripts: APPEND, FETCH (every item), STORE, COPY/MOVE with COPYUID, EXPUNGE/UID EXPUNGE.

mod common;
use common::*;

const MULTI: &str = "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: alice@example.test\r\nSubject: parts\r\nDate: Tue, 1 Jun 2021 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";

#[tokio::test]
async fn append_variants() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let m = message(1);
    let r = t
        .raw(format!("a APPEND Drafts (\\Draft $MDNSent) \"05-Mar-2020 10:11:12 +0100\" {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(
        r.starts_with("a OK [APPENDUID ") && r.ends_with(" 1] APPEND completed\r\n"),
        "{r}"
    );
    let r = t
        .raw(format!("b APPEND Nope {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(r.starts_with("b NO [TRYCREATE]"), "{r}");
    t.cmd("c SELECT Drafts").await;
    let r = t.cmd("d FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)").await;
    assert_eq!(
        r,
        format!(
            "* 1 FETCH (FLAGS (\\Draft \\Recent $MDNSent) INTERNALDATE \"05-Mar-2020 09:11:12 +0000\" RFC822.SIZE {})\r\nd OK FETCH completed\r\n",
            m.len()
        )
    );
}

#[tokio::test]
async fn fetch_items() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "", &message(1)).await;
    t.append("INBOX", "", MULTI).await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a FETCH 1 (ENVELOPE UID)").await;
    assert!(
        r.starts_with(
            "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Message number 1\""
        ),
        "{r}"
    );
    assert!(r.contains(" UID 1)\r\n"), "{r}");
    let r = t.cmd("b FETCH 2 BODYSTRUCTURE").await;
    assert!(r.contains("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""), "{r}");
    assert!(r.contains("\"MIXED\""), "{r}");
    let r = t.cmd("c FETCH 2 BODY").await;
    assert!(r.contains("BODY ((\"TEXT\" \"PLAIN\""), "{r}");
    // PEEK does not set \Seen
    let r = t.cmd("d FETCH 2 (BODY.PEEK[1] FLAGS)").await;
    assert!(r.contains("BODY[1] {10}\r\nfirst part"), "{r}");
    assert!(!r.contains("\\Seen"), "{r}");
    let r = t.cmd("e FETCH 2 BODY[2]<2.3>").await;
    assert!(r.contains("BODY[2]<2> {3}\r\nECA"), "{r}");
    assert!(
        r.contains("FLAGS (\\Seen"),
        "BODY[] sets \\Seen and reports it: {r}"
    );
    let r = t.cmd("f FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])").await;
    assert!(r.contains("BINARY[2] ~{4}\r\n\x00\x01\x02\x03"), "{r:?}");
    assert!(r.contains("BINARY.SIZE[2] 4"), "{r}");
    let r = t.cmd("g FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject)]").await;
    assert!(r.contains("BODY[HEADER.FIELDS (Subject)] {"), "{r}");
    assert!(r.contains("Subject: parts\r\n\r\n"), "{r}");
    let r = t.cmd("h UID FETCH 1 (RFC822.HEADER RFC822.TEXT)").await;
    assert!(r.starts_with("* 1 FETCH (UID 1 RFC822.HEADER {"), "{r}");
    assert!(r.contains("RFC822.TEXT {14}\r\nHello body 1\r\n"), "{r}");
    assert!(r.contains("FLAGS (\\Seen"), "{r}");
    let r = t.cmd("i FETCH 1:* FAST").await;
    assert!(r.contains("* 2 FETCH (FLAGS ("), "{r}");
    let r = t.cmd("j FETCH 1 BODY[]").await;
    assert!(
        r.contains(&format!(
            "BODY[] {{{}}}\r\n{}",
            message(1).len(),
            message(1)
        )),
        "{r}"
    );
    let r = t.cmd("k FETCH 3 FLAGS").await;
    assert!(r.starts_with("k BAD"), "{r}");
    let r = t.cmd("l UID FETCH 99 FLAGS").await;
    assert_eq!(r, "l OK UID FETCH completed\r\n");
    t.cmd("n SELECT Sent").await;
    assert_eq!(t.cmd("o FETCH 1:* FLAGS").await, "o OK FETCH completed\r\n");
    assert!(t.cmd("p FETCH 1 FLAGS").await.starts_with("p BAD"));
    t.cmd("q SELECT INBOX").await;
    let r = t.cmd("m FETCH 2 BODY[9]").await;
    assert!(r.contains("BODY[9] NIL"), "{r}");
}

#[tokio::test]
async fn store_flags_and_keywords() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..3 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("x ENABLE IMAP4rev2").await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a STORE 1:2 +FLAGS (\\Flagged $Forwarded)").await;
    assert_eq!(
        r,
        "* 1 FETCH (FLAGS (\\Flagged $Forwarded))\r\n* 2 FETCH (FLAGS (\\Flagged $Forwarded))\r\na OK STORE completed\r\n"
    );
    let r = t.cmd("b UID STORE 2 -FLAGS.SILENT ($Forwarded)").await;
    assert_eq!(r, "b OK UID STORE completed\r\n");
    let r = t.cmd("c STORE 3 FLAGS ($Junk \\Seen)").await;
    assert_eq!(
        r,
        "* 3 FETCH (FLAGS (\\Seen $Junk))\r\nc OK STORE completed\r\n"
    );
    let r = t.cmd("d FETCH 1:3 FLAGS").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Flagged))"), "{r}");
    let r = t.cmd("e STORE 1 +FLAGS (\\Bogus)").await;
    assert!(r.starts_with("e BAD"), "{r}");
    // persisted: a new session sees them
    let mut t2 = T::login(&env).await;
    let r = t2.cmd("f EXAMINE INBOX").await;
    assert!(r.contains("$Forwarded") && r.contains("$Junk"), "{r}");
    let r = t2.cmd("g FETCH 3 FLAGS").await;
    assert!(r.contains("(\\Seen $Junk)"), "{r}");
}

#[tokio::test]
async fn copy_move_expunge() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..4 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("x ENABLE IMAP4rev2").await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a COPY 1:2 Archive").await;
    assert!(
        r.starts_with("a OK [COPYUID ") && r.contains(" 1:2 1:2] COPY completed"),
        "{r}"
    );
    let r = t.cmd("b COPY 1 Nope").await;
    assert!(r.starts_with("b NO [TRYCREATE]"), "{r}");
    let r = t.cmd("c UID MOVE 3 Trash").await;
    assert!(
        r.starts_with("* OK [COPYUID ")
            && r.contains(" 3 1] Moved\r\n* 3 EXPUNGE\r\nc OK MOVE completed"),
        "{r}"
    );
    let r = t.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(r, "d OK STORE completed\r\n");
    t.cmd("d2 STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let r = t.cmd("e UID EXPUNGE 2").await;
    assert_eq!(r, "* 2 EXPUNGE\r\ne OK UID EXPUNGE completed\r\n");
    let r = t.cmd("f EXPUNGE").await;
    assert_eq!(r, "* 1 EXPUNGE\r\nf OK EXPUNGE completed\r\n");
    let r = t.cmd("g FETCH 1:* UID").await;
    assert_eq!(r, "* 1 FETCH (UID 4)\r\ng OK FETCH completed\r\n");
    assert!(
        t.cmd("h STATUS Archive (MESSAGES)")
            .await
            .contains("MESSAGES 2")
    );
}

#[tokio::test]
async fn large_fetches_come_out_in_chunks() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let body = "z".repeat(100_000);
    for i in 0..6 {
        let m = format!("Subject: big {i}\r\n\r\n{body}\r\n");
        t.append("INBOX", "", &m).await;
    }
    t.cmd("s SELECT INBOX").await;
    let r = t.s.handle(b"a FETCH 1:* BODY.PEEK[]\r\n").await;
    assert_eq!(r.next, wharf_imap::Next::More, "first chunk only");
    assert!(r.out.len() < 600_000, "{}", r.out.len());
    let mut all = r.out;
    let mut next = r.next;
    while next == wharf_imap::Next::More {
        let r = t.s.resume().await;
        all.extend_from_slice(&r.out);
        next = r.next;
    }
    let text = String::from_utf8(all).unwrap();
    assert_eq!(text.matches(" FETCH (BODY[] {").count(), 6);
    assert!(text.ends_with("a OK FETCH completed\r\n"));
}
