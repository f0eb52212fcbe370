//! Transcripts on the in-memory backend: FETCH items, chunked output, sequence sets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use wharf_imap::{Input, Next};

const MULTI: &str = "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: alice@example.test\r\nSubject: parts\r\nDate: Tue, 1 Jun 2021 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";

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
async fn large_fetches_come_out_in_chunks() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let body = "z".repeat(100_000);
    for i in 0..6 {
        let m = format!("Subject: big {i}\r\n\r\n{body}\r\n");
        t.append("INBOX", "", &m).await;
    }
    t.cmd("s SELECT INBOX").await;
    let r =
        t.s.handle(Input::Line(b"a FETCH 1:* BODY.PEEK[]\r\n"))
            .await;
    assert_eq!(r.next, Next::More, "first chunk only");
    assert!(r.output.buffered() < 600_000, "{}", r.output.buffered());
    let mut all = r.output.into_bytes().await.unwrap();
    let mut next = r.next;
    while next == Next::More {
        let r = t.s.handle(Input::Resume).await;
        assert!(r.output.buffered() < 600_000, "{}", r.output.buffered());
        all.extend_from_slice(&r.output.into_bytes().await.unwrap());
        next = r.next;
    }
    let text = String::from_utf8(all).unwrap();
    assert_eq!(text.matches(" FETCH (BODY[] {").count(), 6);
    assert!(text.ends_with("a OK FETCH completed\r\n"));
}

#[tokio::test]
async fn huge_sequence_sets_cost_little() {
    let env = env().await;
    // Command lines this long need a raised limit (the default refuses them whole).
    let cfg = wharf_imap::ImapConfig {
        max_line: 1 << 20,
        ..wharf_imap::ImapConfig::default()
    };
    let mut t = T::new(&env, true, cfg);
    t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    t.append("INBOX", "", &message(1)).await;
    t.cmd("s SELECT INBOX").await;
    let set = vec!["1:*"; 20_000].join(",");
    let started = std::time::Instant::now();
    let r = t.cmd(&format!("a FETCH {set} UID")).await;
    assert_eq!(r, "* 1 FETCH (UID 1)\r\na OK FETCH completed\r\n");
    let r = t
        .cmd(&format!("b UID SEARCH UID {set} NOT UID {set}"))
        .await;
    assert!(r.starts_with("* SEARCH\r\n"), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

fn big_message(n: usize) -> String {
    let mut body = String::new();
    let mut i = 0;
    while body.len() < n {
        body.push_str(&format!("line {i} of a large message body\r\n"));
        i += 1;
    }
    format!("From: a@example.org\r\nSubject: large\r\n\r\n{body}")
}

/// The literal of the first `{n}` after `marker` in a response.
fn literal_after<'a>(r: &'a str, marker: &str) -> &'a str {
    let at = r.find(marker).unwrap() + marker.len();
    let rest = &r[at..];
    let open = rest.find('{').unwrap();
    let close = rest.find("}\r\n").unwrap();
    let n: usize = rest[open + 1..close].parse().unwrap();
    &rest[close + 3..close + 3 + n]
}

#[tokio::test]
async fn large_bodies_are_streamed_small_ones_batched() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let big = big_message(300_000);
    t.append("INBOX", "", &message(1)).await;
    t.append("INBOX", "", &big).await;
    t.cmd("s SELECT INBOX").await;
    env.mem.clear_reads();
    // Each step carries at most one body, as a reader, never the bytes.
    let mut all = Vec::new();
    let mut step =
        t.s.handle(Input::Line(b"a FETCH 1:2 BODY.PEEK[]\r\n"))
            .await;
    let mut bodies = 0;
    loop {
        let in_step = step
            .output
            .pieces
            .iter()
            .filter(|p| matches!(p, wharf_imap::Piece::Body(_)))
            .count();
        assert!(in_step <= 1);
        bodies += in_step;
        assert!(step.output.buffered() < 4096, "{}", step.output.buffered());
        all.extend_from_slice(&step.output.into_bytes().await.unwrap());
        if step.next != Next::More {
            break;
        }
        step = t.s.handle(Input::Resume).await;
    }
    assert_eq!(bodies, 1);
    let text = String::from_utf8(all).unwrap();
    assert_eq!(literal_after(&text, "* 1 FETCH (BODY[] "), message(1));
    assert_eq!(literal_after(&text, "* 2 FETCH (BODY[] "), big);
    assert!(
        text.ends_with(")\r\na OK FETCH completed\r\n"),
        "{}",
        &text[text.len() - 60..]
    );
    let reads = env.mem.reads();
    assert_eq!(reads.streamed.len(), 1, "{reads:?}");
    assert_eq!(
        reads.loaded.len(),
        1,
        "only the small message is loaded: {reads:?}"
    );
}

#[tokio::test]
async fn partial_and_rfc822_stream_byte_exact() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let big = big_message(200_000);
    t.append("INBOX", "", &big).await;
    t.cmd("s SELECT INBOX").await;
    env.mem.clear_reads();
    let r = t.cmd("a FETCH 1 BODY.PEEK[]<100000.5000>").await;
    assert_eq!(literal_after(&r, "BODY[]<100000> "), &big[100_000..105_000]);
    let r = t.cmd("b FETCH 1 BODY.PEEK[]<199990.100>").await;
    assert_eq!(literal_after(&r, "BODY[]<199990> "), &big[199_990..]);
    let r = t.cmd("c FETCH 1 BODY.PEEK[]<900000.10>").await;
    assert!(r.contains("BODY[]<900000> {0}\r\n)"), "{r}");
    // RFC822 sets \Seen and says so.
    let r = t.cmd("d FETCH 1 RFC822").await;
    assert_eq!(literal_after(&r, "RFC822 "), big);
    assert!(
        r.contains("FLAGS (\\Seen \\Recent)") || r.contains("FLAGS (\\Seen)"),
        "{r}"
    );
    assert_eq!(env.mem.reads().streamed.len(), 4);
    assert!(env.mem.reads().loaded.is_empty());
}

#[tokio::test]
async fn sections_that_need_parsing_still_load_the_message() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let big = big_message(200_000);
    t.append("INBOX", "", &big).await;
    t.cmd("s SELECT INBOX").await;
    env.mem.clear_reads();
    let r = t.cmd("a FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[])").await;
    assert_eq!(
        literal_after(&r, "BODY[HEADER] "),
        "From: a@example.org\r\nSubject: large\r\n\r\n"
    );
    assert_eq!(literal_after(&r, "BODY[] "), big);
    let reads = env.mem.reads();
    assert!(
        reads.streamed.is_empty() && reads.loaded.len() == 1,
        "{reads:?}"
    );
}

/// A message APPENDed with NUL octets (a literal8) is sent back in plain literals with each NUL
/// as 0x80 (RFC 9051 §4.3 forbids NUL there; imaptest's append-binary); BINARY keeps them.
#[tokio::test]
async fn nul_octets_never_travel_in_a_plain_literal() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let msg = "Subject: nul\r\nContent-Type: text/plain\r\n\r\na\0b\r\n";
    let r = t
        .raw(format!("a APPEND INBOX ~{{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes())
        .await;
    assert!(r.contains("a OK"), "{r}");
    t.cmd("s SELECT INBOX").await;
    for cmd in [
        "b FETCH 1 BODY.PEEK[1]",
        "c FETCH 1 BODY.PEEK[]",
        "d FETCH 1 RFC822.TEXT",
    ] {
        let r = t.cmd(cmd).await;
        assert!(!r.contains('\0'), "{cmd}: {r:?}");
        assert!(r.contains("a\u{FFFD}b"), "{cmd}: {r:?}");
    }
    let r = t.cmd("e FETCH 1 BINARY.PEEK[1]").await;
    assert!(r.contains("BINARY[1] ~{5}\r\na\0b\r\n"), "{r:?}");
}
