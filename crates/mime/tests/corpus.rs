//! ENVELOPE, BODYSTRUCTURE and BODY of every message in tests/corpus/ compared exactly with the
//! values written from RFC 9051 §7.5.2 / RFC 3501 §7.4.2 (see corpus/make_corpus.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use wharf_mime::{Summary, analyze};

fn read(path: &Path) -> String {
    String::from_utf8(std::fs::read(path).expect("expected file")).expect("utf-8 expectation")
}

#[test]
fn corpus_matches_rfc_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut emls: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    assert!(emls.len() >= 30, "corpus has {} messages", emls.len());
    let mut failures = Vec::new();
    for eml in &emls {
        let raw = std::fs::read(eml).expect("eml");
        let summary = Summary::decode(&analyze(&raw).summary).expect("summary decodes");
        let name = eml
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        for (ext, got) in [
            ("envelope", summary.envelope()),
            ("bodystructure", summary.body_structure(true)),
            ("body", summary.body_structure(false)),
        ] {
            let want = read(&eml.with_extension(ext));
            if got != want {
                failures.push(format!("{name} {ext}\n  want: {want:?}\n  got:  {got:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
