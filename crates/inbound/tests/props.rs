//! Properties of the parsers that read what strangers send: the Authentication-Results search,
//! the SPF record parser and macro expander never panic, the ranges found always lie inside the
//! header, and a macro expansion never grows past its bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::net::IpAddr;

use wharf_inbound::{header, spf};

fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"Authentication-Results: mx.example.org; spf=pass\r\n".to_vec()),
        Just(b"authentication-results:(c) MX.example.org;\r\n\tdkim=pass\r\n".to_vec()),
        Just(b"Authentication-Results: other.example; dmarc=fail\r\n".to_vec()),
        Just(b"Subject: x\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|ls| ls.concat())
}

proptest! {
    #[test]
    fn our_results_ranges_are_whole_fields_of_the_header(msg in header_like()) {
        let found = header::our_results(&msg, "mx.example.org");
        let mut last = 0;
        for r in &found {
            prop_assert!(r.start >= last && r.start < r.end && r.end <= msg.len());
            prop_assert!(msg[r.start..].len() >= 22);
            prop_assert!(msg[r.start..r.start + 22].eq_ignore_ascii_case(b"Authentication-Results"));
            last = r.end;
        }
        let kept = header::without(&msg, &found);
        prop_assert_eq!(kept.len() + found.iter().map(|r| r.len()).sum::<usize>(), msg.len());
    }

    #[test]
    fn spf_records_parse_without_panicking(record in "v=spf1( [-+~?]?[a-zA-Z0-9:./%{}=_-]{0,30}){0,8}") {
        let _ = spf::parse_record(record.as_bytes());
        prop_assert!(spf::is_spf(record.as_bytes()));
    }

    #[test]
    fn spf_parser_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = spf::parse_record(&bytes);
        let mut record = b"v=spf1 ".to_vec();
        record.extend_from_slice(&bytes);
        let _ = spf::parse_record(&record);
        let _ = spf::domain_is_checkable(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn macro_expansion_is_bounded(
        spec in "([a-z.]{0,5}|%\\{[slodiphcrtvSLODIPHCRTV][0-9]{0,3}[rR]?[.+,/_=-]{0,3}\\}|%%|%_|%-){0,40}",
        repeat in 1usize..200,
        sender in "[ -~]{0,300}",
        helo in "[ -~]{0,300}",
        ip in any::<IpAddr>(),
    ) {
        let spec = spec.repeat(repeat);
        let Ok(ms) = spf::MacroString::parse(&spec, true) else {
            return Ok(());
        };
        let vars = spf::Vars {
            sender: &sender,
            local: &sender,
            sender_domain: &helo,
            domain: &helo,
            ip,
            helo: &helo,
            receiver: "mx.example.org",
            validated: "unknown",
            now: 0,
        };
        if let Some(out) = ms.expand(&vars) {
            prop_assert!(out.len() <= spf::MAX_EXPANSION);
            if !spec.contains('%') {
                prop_assert_eq!(out, spec);
            }
        }
    }
}
