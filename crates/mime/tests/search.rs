//! Search text, preview and sent date: decoded for the full-text index.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use wharf_mime::analyze;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .expect("corpus message")
}

#[test]
fn rfc2047_is_decoded_for_search() {
    let a = analyze(&corpus("08-rfc2047.eml"));
    assert_eq!(
        a.search.subject,
        "If you can read this you understand the example."
    );
    assert!(a.search.from.contains("André Pirard"), "{}", a.search.from);
    assert!(a.search.from.contains("PIRARD@vm1.ulg.ac.be"));
    assert!(a.search.to.contains("Keith Moore"));
    assert!(a.search.cc.contains("Olle Järnefors"));
}

#[test]
fn transfer_encodings_and_html_are_decoded() {
    let a = analyze(&corpus("03-alternative.eml"));
    assert!(
        a.search.body.contains("Café au lait is nice."),
        "{}",
        a.search.body
    );
    assert!(a.search.body.contains("Café"));
    assert!(
        !a.search.body.contains("<b>"),
        "HTML is reduced to text: {}",
        a.search.body
    );
    assert_eq!(a.preview, "Café au lait is nice.");
    assert_eq!(a.sent_date, Some(1_546_336_800));

    let a = analyze(&corpus("19-encodings.eml"));
    assert!(
        a.search.body.contains("Hello world\nHello again"),
        "{}",
        a.search.body
    );
}

#[test]
fn nested_messages_and_groups_are_searchable() {
    let a = analyze(&corpus("06-message-rfc822.eml"));
    assert!(a.search.body.contains("Forwarding."));
    assert!(a.search.body.contains("Inner body"), "{}", a.search.body);
    let a = analyze(&corpus("17-groups.eml"));
    assert!(a.search.cc.contains("Friends"));
    assert!(a.search.cc.contains("bob@b.example"));
    assert!(a.search.cc.contains("carl@c.example"));
}

#[test]
fn preview_is_bounded_and_collapsed() {
    let mut raw = b"Subject: long\r\n\r\n".to_vec();
    for _ in 0..200 {
        raw.extend_from_slice("word\t \r\nwörd ".as_bytes());
    }
    let a = analyze(&raw);
    assert_eq!(a.preview.chars().count(), 256);
    assert!(a.preview.starts_with("word wörd word"));
    assert!(!a.preview.contains('\n') && !a.preview.contains('\t'));
}

#[test]
fn missing_or_bad_date() {
    assert_eq!(analyze(&corpus("02-no-content-type.eml")).sent_date, None);
    assert_eq!(analyze(b"Date: yesterday-ish\r\n\r\nx").sent_date, None);
    assert_eq!(
        analyze(&corpus("01-simple.eml")).sent_date,
        Some(760_686_745)
    );
}

#[test]
fn charsets_attachments_and_html_preview() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=E9 cr\xe8me\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\nc2VjcmV0IGJpbmFyeQ==\r\n--b--\r\n";
    let a = analyze(raw);
    assert_eq!(a.search.body, "café crème");
    assert_eq!(a.preview, "café crème");
    assert!(
        !a.search.body.contains("secret binary"),
        "attachments are not decoded"
    );

    let html = b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>t</title></head>\
<body><p>Hello <b>there</b></p></body></html>";
    let a = analyze(html);
    assert!(a.preview.starts_with("Hello there"), "{:?}", a.preview);
    assert!(!a.search.body.contains('<'));

    // The text of a forwarded message is searchable but is not the carrier's preview.
    let a = analyze(&corpus("29-rfc822-multipart.eml"));
    assert!(a.search.body.contains("inner text"));
    assert!(a.search.body.contains("inner multi"));
    assert_eq!(a.preview, "");
}

#[test]
fn every_header_field_is_searchable_text() {
    let raw = b"From: a@example.org\r\nX-Tracking-Id: Zebra-42\r\nReceived: from relay.example\r\n by mx.example; Mon, 7 Feb 1994 21:52:25 -0800\r\nX-Note: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nSubject: hi\r\n\r\nbody\r\n";
    let h = analyze(raw).search.headers;
    assert!(h.contains("X-Tracking-Id: Zebra-42"), "{h}");
    // Folded lines are joined, their whitespace kept.
    assert!(
        h.contains("Received: from relay.example by mx.example;"),
        "{h}"
    );
    // Encoded words are searchable as written and as decoded.
    assert!(h.contains("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="), "{h}");
    assert!(h.contains("Grüße"), "{h}");
    assert!(h.contains("Subject: hi"), "{h}");
    assert!(!h.contains("body"), "{h}");
}

#[test]
fn header_text_is_bounded() {
    let mut raw = Vec::new();
    for i in 0..20_000 {
        raw.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    raw.extend_from_slice(b"\r\nbody\r\n");
    let h = analyze(&raw).search.headers;
    assert!(h.len() <= 256 * 1024, "{}", h.len());
    assert!(h.len() > 200 * 1024, "{}", h.len());
}
