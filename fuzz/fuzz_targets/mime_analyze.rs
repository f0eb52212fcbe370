//! Any byte string is a message someone can send: analysis and every rendering of it must not panic,
//! and every section slice must stay inside the message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wharf_mime::{Section, SectionSpec, Summary, analyze};

fuzz_target!(|raw: &[u8]| {
    let analysis = analyze(raw);
    let Ok(summary) = Summary::decode(&analysis.summary) else {
        panic!("a summary we wrote must decode");
    };
    let _ = summary.envelope();
    let _ = summary.body_structure(true);
    let _ = summary.body_structure(false);
    for part in [vec![], vec![1], vec![1, 1], vec![2], vec![1, 2, 3]] {
        for spec in [SectionSpec::Full, SectionSpec::Header, SectionSpec::Text, SectionSpec::Mime] {
            let section = Section { part: part.clone(), spec };
            if let Some(bytes) = summary.section(raw, &section) {
                assert!(bytes.len() <= raw.len() + 2);
            }
        }
        let _ = summary.binary(raw, &part);
    }
});
