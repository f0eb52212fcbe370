//! Summary encode/decode round trip and the basic analyze outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_mime::{Summary, analyze};

const MSG: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

#[test]
fn summary_round_trips() {
    let a = analyze(MSG);
    let s = Summary::decode(&a.summary).expect("decodes");
    assert_eq!(s, Summary::parse(MSG));
    assert_eq!(Summary::decode(&s.encode()).expect("decodes again"), s);
    assert_eq!(a.sent_date, Some(760_686_745));
    assert_eq!(a.search.subject, "afternoon meeting");
    assert!(a.search.from.contains("foobar@Blurdybloop.example"));
    assert_eq!(
        a.preview,
        "Hello Joe, do you think we can meet at 3:30 tomorrow?"
    );
    assert_eq!(
        s.envelope(),
        "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL \
\"<B27397-0100000@Blurdybloop.example>\")"
    );
    assert_eq!(
        s.body_structure(false),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)"
    );
}

#[test]
fn decode_rejects_garbage() {
    assert!(Summary::decode(b"not a summary").is_err());
    assert!(
        Summary::decode(
            b"{\"v\":999,\"r\":{\"h\":0,\"b\":0,\"e\":0,\"t\":\"TEXT\",\"u\":\"PLAIN\"}}"
        )
        .is_err()
    );
}

#[test]
fn summary_is_compact() {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/05-nested.eml"
    ))
    .expect("corpus");
    let a = analyze(&raw);
    // Five leaves, three multiparts and an envelope: a few hundred bytes, not kilobytes.
    assert!(
        a.summary.len() < 900,
        "{} bytes: {}",
        a.summary.len(),
        String::from_utf8_lossy(&a.summary)
    );
}

#[test]
fn nul_and_line_breaks_in_strings() {
    let raw = b"Subject: a\0b\r\nFrom: x@y.z\r\n\r\n";
    let s = Summary::decode(&analyze(raw).summary).expect("decodes");
    assert!(
        s.envelope().starts_with("(NIL {5}\r\na\u{FFFD}b (("),
        "{:?}",
        s.envelope()
    );
    assert_eq!(s.raw_size(), raw.len() as u64);
    // A bare CR survives unfolding and forces a literal.
    let s = Summary::parse(b"Subject: a\rb\r\n\r\n");
    assert!(
        s.envelope().starts_with("(NIL {3}\r\na\rb NIL"),
        "{:?}",
        s.envelope()
    );
}

/// A summary written by format version 1 must keep decoding and rendering the same way in every
/// later version (the store keeps summaries for years). The fixture and its renderings are frozen
/// copies; they must never be regenerated.
#[test]
fn version_1_summary_still_decodes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let stored = std::fs::read(format!("{dir}/compat/v1-message-rfc822.json")).expect("fixture");
    let s = Summary::decode(&stored).expect("v1 decodes");
    let want = |ext: &str| {
        std::fs::read_to_string(format!("{dir}/corpus/06-message-rfc822.{ext}"))
            .expect("expectation")
    };
    assert_eq!(s.envelope(), want("envelope"));
    assert_eq!(s.body_structure(true), want("bodystructure"));
    let raw = std::fs::read(format!("{dir}/corpus/06-message-rfc822.eml")).expect("eml");
    let inner = wharf_mime::Section {
        part: vec![2],
        spec: wharf_mime::SectionSpec::Text,
    };
    assert_eq!(s.section(&raw, &inner).as_deref(), Some(&b"Inner body"[..]));
}

/// A summary that does not fit the blob (wrong blob, corrupted row) degrades to `None`, never to
/// a panic or an out-of-bounds slice.
#[test]
fn summary_that_does_not_fit_the_blob() {
    let stored = br#"{"v":1,"z":9,"r":{"h":5,"b":999999,"e":3,"t":"MULTIPART","u":"MIXED",
        "k":[{"h":18446744073709551615,"b":7,"e":18446744073709551615,"t":"TEXT","u":"PLAIN",
        "c":"base64","msg":{"h":2,"b":1,"e":0,"t":"X","u":"Y"}}]}}"#;
    let s = Summary::decode(stored).expect("decodes");
    let raw = b"short";
    let _ = s.envelope();
    let _ = s.body_structure(true);
    for part in [vec![], vec![1], vec![1, 1], vec![2]] {
        for spec in [
            wharf_mime::SectionSpec::Full,
            wharf_mime::SectionSpec::Header,
            wharf_mime::SectionSpec::Text,
            wharf_mime::SectionSpec::Mime,
            wharf_mime::SectionSpec::HeaderFields {
                names: vec!["a".into()],
                not: true,
            },
        ] {
            let section = wharf_mime::Section {
                part: part.clone(),
                spec,
            };
            if let Some(bytes) = s.section(raw, &section) {
                assert!(bytes.len() <= raw.len() + 2);
            }
        }
        let _ = s.binary(raw, &part);
    }
}
