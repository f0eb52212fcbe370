//! BODY[section] slicing and BINARY decoding over corpus messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use wharf_mime::{MimeError, Section, SectionSpec, Summary, analyze};

fn load(name: &str) -> (Vec<u8>, Summary) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let raw = std::fs::read(path).expect("corpus message");
    let summary = Summary::decode(&analyze(&raw).summary).expect("decodes");
    (raw, summary)
}

fn sec(s: &Summary, raw: &[u8], part: &[u32], spec: SectionSpec) -> Option<String> {
    s.section(
        raw,
        &Section {
            part: part.to_vec(),
            spec,
        },
    )
    .map(|c| String::from_utf8_lossy(&c).into_owned())
}

fn fields(names: &[&str], not: bool) -> SectionSpec {
    SectionSpec::HeaderFields {
        names: names.iter().map(|n| n.to_string()).collect(),
        not,
    }
}

#[test]
fn single_part_message_sections() {
    let (raw, s) = load("01-simple.eml");
    let text = std::str::from_utf8(&raw).expect("ascii");
    let split = text.find("\r\n\r\n").expect("blank line") + 4;
    assert_eq!(sec(&s, &raw, &[], SectionSpec::Full).as_deref(), Some(text));
    assert_eq!(
        sec(&s, &raw, &[], SectionSpec::Header).as_deref(),
        Some(&text[..split])
    );
    assert_eq!(
        sec(&s, &raw, &[], SectionSpec::Text).as_deref(),
        Some(&text[split..])
    );
    // A non-multipart message has exactly one part: its body (RFC 9051 §6.4.5).
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Full).as_deref(),
        Some(&text[split..])
    );
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Mime).as_deref(),
        Some(&text[..split])
    );
    assert_eq!(sec(&s, &raw, &[2], SectionSpec::Full), None);
    assert_eq!(sec(&s, &raw, &[0], SectionSpec::Full), None);
    assert_eq!(sec(&s, &raw, &[1, 1], SectionSpec::Full), None);
    assert_eq!(sec(&s, &raw, &[1], SectionSpec::Header), None);
    assert_eq!(sec(&s, &raw, &[], SectionSpec::Mime), None);
    assert_eq!(
        sec(&s, &raw, &[], fields(&["subject", "FROM", "X-None"], false)).as_deref(),
        Some(
            "From: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\n\r\n"
        )
    );
    let not = sec(
        &s,
        &raw,
        &[],
        fields(&["Date", "From", "Subject", "To"], true),
    )
    .expect("some");
    assert_eq!(
        not,
        "Message-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
    );
    assert_eq!(
        sec(&s, &raw, &[], fields(&["X-None"], false)).as_deref(),
        Some("\r\n")
    );
}

#[test]
fn folded_fields_are_returned_whole() {
    let (raw, s) = load("24-ids.eml");
    assert_eq!(
        sec(&s, &raw, &[], fields(&["in-reply-to", "message-id"], false)).as_deref(),
        Some(
            "In-Reply-To: <first@example.com>\r\n <second@example.com>\r\nMessage-ID:\r\n <reply@example.com>\r\n\r\n"
        )
    );
}

#[test]
fn message_rfc822_part_sections() {
    let (raw, s) = load("06-message-rfc822.eml");
    let inner_header = "From: Inner <inner@example.org>\r\nTo: x@y.example\r\nSubject: inner subject\r\n\
Date: Wed, 2 Jan 2019 11:00:00 +0100\r\nMessage-ID: <inner@example.org>\r\n\r\n";
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Full).as_deref(),
        Some("Forwarding.")
    );
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Mime).as_deref(),
        Some("Content-Type: text/plain\r\n\r\n")
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Full),
        Some(format!("{inner_header}Inner body"))
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Mime).as_deref(),
        Some("Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n")
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Header).as_deref(),
        Some(inner_header)
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Text).as_deref(),
        Some("Inner body")
    );
    assert_eq!(
        sec(&s, &raw, &[2, 1], SectionSpec::Full).as_deref(),
        Some("Inner body")
    );
    assert_eq!(
        sec(&s, &raw, &[2], fields(&["subject"], false)).as_deref(),
        Some("Subject: inner subject\r\n\r\n")
    );
    assert_eq!(sec(&s, &raw, &[2, 2], SectionSpec::Full), None);
    assert_eq!(sec(&s, &raw, &[3], SectionSpec::Full), None);
    assert_eq!(sec(&s, &raw, &[1], SectionSpec::Text), None);
}

#[test]
fn multipart_inside_message_rfc822() {
    let (raw, s) = load("29-rfc822-multipart.eml");
    assert_eq!(
        sec(&s, &raw, &[1, 1], SectionSpec::Full).as_deref(),
        Some("inner text")
    );
    assert_eq!(
        sec(&s, &raw, &[1, 2], SectionSpec::Full).as_deref(),
        Some("aW5uZXI=")
    );
    assert_eq!(
        sec(&s, &raw, &[1, 2], SectionSpec::Mime).as_deref(),
        Some("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    );
    assert_eq!(
        sec(&s, &raw, &[1], fields(&["subject"], false)).as_deref(),
        Some("Subject: inner multi\r\n\r\n")
    );
    assert_eq!(sec(&s, &raw, &[1, 1, 1], SectionSpec::Full), None);
    assert_eq!(
        s.binary(&raw, &[1, 2]).expect("known cte"),
        Some(b"inner".to_vec())
    );
}

#[test]
fn nested_multipart_numbers() {
    let (raw, s) = load("05-nested.eml");
    assert_eq!(
        sec(&s, &raw, &[1, 1], SectionSpec::Full).as_deref(),
        Some("Plain version")
    );
    assert_eq!(
        sec(&s, &raw, &[1, 2, 2], SectionSpec::Full).as_deref(),
        Some("iVBORw0KGgo=")
    );
    assert!(
        sec(&s, &raw, &[1, 2, 2], SectionSpec::Mime)
            .expect("mime")
            .contains("Content-ID: <img1>\r\n")
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Full).as_deref(),
        Some("attachment data")
    );
    let alt = sec(&s, &raw, &[1], SectionSpec::Full).expect("alt");
    assert!(alt.starts_with("--alt\r\n") && alt.ends_with("--rel--\r\n--alt--"));
}

#[test]
fn header_only_and_digest() {
    let (raw, s) = load("13-header-only.eml");
    assert_eq!(sec(&s, &raw, &[], SectionSpec::Text).as_deref(), Some(""));
    assert_eq!(
        sec(&s, &raw, &[], SectionSpec::Header).as_deref(),
        Some("From: a@b.example\r\nSubject: no body\r\n")
    );
    let (raw, s) = load("07-digest.eml");
    assert_eq!(
        sec(&s, &raw, &[1, 1], SectionSpec::Full).as_deref(),
        Some("First")
    );
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Mime).as_deref(),
        Some("\r\n")
    );
    assert_eq!(
        sec(&s, &raw, &[3], SectionSpec::Header).as_deref(),
        Some("Subject: three\r\n\r\n")
    );
}

#[test]
fn binary_decodes_transfer_encodings() {
    let (raw, s) = load("03-alternative.eml");
    assert_eq!(
        s.binary(&raw, &[1]).expect("qp"),
        Some("Café au lait is nice.".as_bytes().to_vec())
    );
    assert_eq!(
        s.binary(&raw, &[2]).expect("base64"),
        Some("<b>Café</b>\n".as_bytes().to_vec())
    );
    assert_eq!(s.binary(&raw, &[]).expect("whole"), Some(raw.clone()));
    assert_eq!(s.binary(&raw, &[3]).expect("missing"), None);
    assert_eq!(s.binary_size(&raw, &[2]).expect("size"), Some(13));

    let (raw, s) = load("19-encodings.eml");
    assert_eq!(
        s.binary(&raw, &[1]).expect("base64"),
        Some(b"Hello world\nHello again\n".to_vec())
    );
    assert_eq!(
        s.binary(&raw, &[2]).expect("qp"),
        Some(b"a=b\r\ncd\r\n".to_vec())
    );

    let (raw, s) = load("10-rfc2231-plain.eml");
    assert_eq!(
        s.binary(&raw, &[1]).expect("binary"),
        Some(b"0123456789".to_vec())
    );
}

#[test]
fn binary_unknown_cte() {
    let raw =
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n";
    let s = Summary::parse(raw);
    match s.binary(raw, &[1]) {
        Err(MimeError::UnknownCte(cte)) => assert_eq!(cte, "x-uuencode"),
        other => panic!("expected UnknownCte, got {other:?}"),
    }
    // BODY[1] still works: only BINARY needs to understand the encoding.
    assert_eq!(
        s.section(
            raw,
            &Section {
                part: vec![1],
                spec: SectionSpec::Full
            }
        )
        .as_deref(),
        Some(&b"begin 644 x\r\n"[..])
    );
}

/// RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, so an inner multipart
/// ends with its close delimiter; lines that only start with the boundary are not delimiters.
#[test]
fn delimiter_grammar() {
    let (raw, s) = load("35-boundary-prefix.eml");
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Full).as_deref(),
        Some("--b-inner\r\n\r\ninner one\r\n--b-inner--")
    );
    assert_eq!(
        sec(&s, &raw, &[1, 1], SectionSpec::Full).as_deref(),
        Some("inner one")
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Full).as_deref(),
        Some("outer two")
    );

    let (raw, s) = load("26-preamble-epilogue.eml");
    assert_eq!(
        sec(&s, &raw, &[1], SectionSpec::Full).as_deref(),
        Some("part one")
    );
    assert_eq!(
        sec(&s, &raw, &[2], SectionSpec::Full).as_deref(),
        Some("part two\r\n")
    );
    assert_eq!(sec(&s, &raw, &[3], SectionSpec::Full), None);
}
