//! Properties of the parsers that read what strangers send: the Authentication-Results search
//! and the SPF record syntax never panic, and the ranges found always lie inside the header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wharf_inbound::{header, spf_syntax};

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
    fn spf_syntax_never_panics(record in "v=spf1( [-+~?]?[a-z0-9:./%{}=_-]{0,30}){0,8}") {
        let _ = spf_syntax::check_record(&record);
        prop_assert!(spf_syntax::is_spf(&record));
    }

    #[test]
    fn spf_syntax_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = spf_syntax::check_record(&text);
        let _ = spf_syntax::domain_is_checkable(&text);
    }
}
