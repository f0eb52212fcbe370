//! Property tests: `analyze` never panics on any input, its summary decodes and renders to
//! well-formed IMAP lists, and every section it can resolve lies inside the raw message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wharf_mime::{Section, SectionSpec, Summary, analyze};

/// Checks that `s` is exactly one well-formed IMAP parenthesised list made of NIL, numbers,
/// quoted strings, literals and nested non-empty lists.
fn well_formed(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut items_at: Vec<usize> = Vec::new();
    let mut started = false;
    while i < b.len() {
        if started && depth == 0 {
            return Err(format!("trailing data at {i}"));
        }
        match b[i] {
            b'(' => {
                depth += 1;
                started = true;
                items_at.push(0);
                i += 1;
                continue;
            }
            b')' => {
                let n = items_at.pop().ok_or("unbalanced )")?;
                if n == 0 {
                    return Err(format!("empty list at {i}"));
                }
                depth -= 1;
                i += 1;
            }
            b' ' if started => {
                i += 1;
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated quoted".into()),
                        Some(b'\\') => {
                            if !matches!(b.get(i + 1), Some(b'"' | b'\\')) {
                                return Err("bad escape".into());
                            }
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) if c == b'\r' || c == b'\n' || c >= 0x80 || c == 0 => {
                            return Err("8-bit or CR/LF in quoted".into());
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                let close = s[i..].find("}\r\n").ok_or("bad literal")? + i;
                let n: usize = s[i + 1..close].parse().map_err(|_| "bad literal length")?;
                i = close + 3 + n;
                if i > b.len() {
                    return Err("literal overruns".into());
                }
            }
            b'N' if s[i..].starts_with("NIL") => i += 3,
            c if c.is_ascii_digit() => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            c => return Err(format!("unexpected byte {c:#x} at {i}")),
        }
        if let Some(n) = items_at.last_mut() {
            *n += 1;
        }
    }
    if depth != 0 || !started {
        return Err("unbalanced".into());
    }
    Ok(())
}

fn check(raw: &[u8]) -> Result<(), TestCaseError> {
    let a = analyze(raw);
    let s = Summary::decode(&a.summary).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&s, &Summary::parse(raw));
    prop_assert!(a.preview.chars().count() <= 256);
    well_formed(&s.envelope()).map_err(|e| TestCaseError::fail(format!("envelope: {e}")))?;
    let bs = s.body_structure(true);
    well_formed(&bs).map_err(|e| TestCaseError::fail(format!("bodystructure: {e}: {bs}")))?;
    well_formed(&s.body_structure(false)).map_err(|e| TestCaseError::fail(format!("body: {e}")))?;
    let range = raw.as_ptr_range();
    let paths: &[&[u32]] = &[
        &[],
        &[1],
        &[2],
        &[1, 1],
        &[1, 2],
        &[2, 1],
        &[1, 1, 1],
        &[3, 2, 1],
    ];
    for part in paths {
        for spec in [
            SectionSpec::Full,
            SectionSpec::Header,
            SectionSpec::Text,
            SectionSpec::Mime,
            SectionSpec::HeaderFields {
                names: vec!["content-type".into()],
                not: true,
            },
        ] {
            let section = Section {
                part: part.to_vec(),
                spec,
            };
            if let Some(std::borrow::Cow::Borrowed(slice)) = s.section(raw, &section) {
                let r = slice.as_ptr_range();
                prop_assert!(
                    slice.is_empty() || (r.start >= range.start && r.end <= range.end),
                    "section outside the raw message"
                );
            }
        }
        let _ = s.binary(raw, part);
    }
    Ok(())
}

/// Pieces that steer random messages into the MIME code paths.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"--b\r\n".to_vec()),
        Just(b"--b--\r\n".to_vec()),
        Just(b"--c\n".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
        Just(b"Content-Type: multipart/digest; boundary=\"c\"\n".to_vec()),
        Just(b"Content-Type: message/rfc822\r\n".to_vec()),
        Just(b"Content-Type: text/plain; name*0*=utf-8''%E2; name*1=\"x\"\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: quoted-printable\r\n".to_vec()),
        Just(b"Content-Disposition: attachment; filename=\"a b\"\r\n".to_vec()),
        Just(b"From: \"A (B)\" <a@b>, g: c@d;, <@r:e@f>\r\n".to_vec()),
        Just(b"Subject: =?utf-8?q?x?= \xff\xfe\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        Just(b"=3D=\r\n".to_vec()),
        Just(b"QUJD\r\n".to_vec()),
        "[ -~]{0,20}".prop_map(|s| s.into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&raw)?;
    }

    #[test]
    fn mime_shaped_messages(pieces in proptest::collection::vec(fragment(), 0..80)) {
        check(&pieces.concat())?;
    }
}

#[test]
fn well_formed_rejects_bad_lists() {
    assert!(well_formed("(\"a\" NIL)").is_ok());
    assert!(well_formed("(\"a\" ()").is_err());
    assert!(well_formed("()").is_err());
    assert!(well_formed("(\"a\")(").is_err());
    assert!(well_formed("({3}\r\nab)").is_err());
}

/// Deep nesting is bounded: thousands of levels neither overflow the stack nor blow up.
#[test]
fn deep_nesting_is_bounded() {
    let mut multi = Vec::new();
    for i in 0..3000 {
        multi.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    multi.extend_from_slice(b"\r\nleaf\r\n");
    let mut msgs = Vec::new();
    for _ in 0..3000 {
        msgs.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    msgs.extend_from_slice(b"Subject: bottom\r\n\r\nleaf\r\n");
    for raw in [multi, msgs] {
        let s = Summary::decode(&analyze(&raw).summary).expect("decodes");
        let bs = s.body_structure(true);
        well_formed(&bs).expect("well formed");
        assert!(bs.matches('(').count() < 60 * 40, "nesting is cut off");
    }
}

/// Many parts are bounded too.
#[test]
fn part_count_is_bounded() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    let s = Summary::decode(&analyze(&raw).summary).expect("decodes");
    let bs = s.body_structure(false);
    well_formed(&bs).expect("well formed");
    assert!(bs.matches("\"TEXT\"").count() <= 5000);
}

/// A large attachment is sliced, never decoded for text; sizes stay exact.
#[test]
fn large_attachment() {
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
    let n = 120_000;
    let mut raw = b"Subject: big\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nhi\r\n--q\r\n\
Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for _ in 0..n {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--q--\r\n");
    let a = analyze(&raw);
    assert_eq!(a.search.body, "hi");
    let s = Summary::decode(&a.summary).expect("decodes");
    let octets = line.len() * n - 2;
    assert!(
        s.body_structure(false)
            .contains(&format!("\"BASE64\" {octets})"))
    );
    let decoded = s.binary(&raw, &[2]).expect("base64").expect("part");
    assert_eq!(decoded.len(), n * 54);
}
