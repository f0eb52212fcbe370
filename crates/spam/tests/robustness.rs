//! Property tests: parsing, tokenizing, classifying and scoring arbitrary input never panics,
//! and the outputs stay within their documented bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wharf_spam::bayes::{Counts, MemoryTokenStore, Model, ScopeCounts};
use wharf_spam::{
    AuthVerdicts, BayesConfig, Class, Config, Facts, Scan, Scope, SenderLists, classify, evaluate,
    html, tokens, training_delta,
};

fn score(raw: &[u8], model: &Model) {
    let cfg = Config::default();
    let scan = Scan::new(raw);
    assert!(scan.tokens.len() <= tokens::MAX_TOKENS);
    assert!(scan.analysis.text.len() <= wharf_spam::analysis::MAX_TEXT_BYTES + 8);
    let c = classify(model, scan.tokens.hashes(), &BayesConfig::default());
    if let Some(c) = &c {
        assert!((0.0..=1.0).contains(&c.probability));
    }
    let auth = AuthVerdicts::default();
    let lists = SenderLists {
        allow: vec!["example.com".into()],
        block: vec!["@".into(), "x@".into()],
    };
    let facts = Facts {
        auth: &auth,
        envelope_from: "a@b",
        local_domains: &["example.org".to_string()],
        domain_lists: &lists,
        user_lists: &lists,
        known_correspondent: true,
        reputation: None,
        classification: c.as_ref(),
        dnsbl_hits: &[],
        rspamd: None,
    };
    let v = evaluate(&cfg, &scan.analysis, &facts);
    assert!(v.score.is_finite());
    for line in v.headers().split("\r\n") {
        // A single rule name longer than a line cannot be folded; ours are all short.
        assert!(line.len() <= 78, "{line:?}");
    }
    let _ = scan.analysis.url_domains();
}

fn trained_model() -> Model {
    let store = MemoryTokenStore::default();
    for (i, text) in [
        "buy cheap pills now",
        "meeting agenda tomorrow",
        "winner prize claim",
    ]
    .iter()
    .enumerate()
    {
        let scan = Scan::new(format!("Subject: s\r\n\r\n{text}\r\n").as_bytes());
        let class = if i == 1 { Class::Ham } else { Class::Spam };
        for _ in 0..10 {
            store.apply_now(
                Scope::Global,
                &training_delta(&scan.tokens, None, Some(class)).unwrap(),
            );
        }
    }
    // Everything the store has, so any token of these words is found.
    let all = Scan::new(
        b"Subject: s\r\n\r\nbuy cheap pills now meeting agenda tomorrow winner prize claim\r\n",
    );
    let full = store.model(Some(1), all.tokens.hashes());
    Model {
        global: full.global,
        user: Some(ScopeCounts {
            totals: Counts {
                ham: 3,
                spam: u32::MAX,
            },
            tokens: Default::default(),
        }),
    }
}

fn message_strategy() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("From: \"x@evil.example\" <a@b.example>".to_string()),
        Just("Subject: =?utf-8?B?SGVsbG8=?=".to_string()),
        Just("Subject: =?utf-8?Q?P=D0=B0y?=".to_string()),
        Just("Content-Type: text/html".to_string()),
        Just("Content-Type: multipart/mixed; boundary=b".to_string()),
        Just("Content-Transfer-Encoding: base64".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable".to_string()),
        "[ -~]{0,60}".prop_map(|s| format!("X-{s}")),
    ];
    let body = prop_oneof![
        Just("<a href=\"http://a.example\">https://b.example</a>".to_string()),
        Just("<div style=\"display:none\">hidden</div>".to_string()),
        Just(
            "--b\r\nContent-Type: application/x-msdownload; name=a.exe\r\n\r\nTVqQ\r\n--b--"
                .to_string()
        ),
        Just("http://www.example.co.uk/x www. https://[::1]/".to_string()),
        any::<String>(),
        "[a-zA-Z <>=\"/&;#]{0,200}".prop_map(|s| s),
    ];
    (
        proptest::collection::vec(header, 0..8),
        proptest::collection::vec(body, 0..6),
    )
        .prop_map(|(headers, bodies)| {
            let mut m = headers.join("\r\n");
            m.push_str("\r\n\r\n");
            m.push_str(&bodies.join("\r\n"));
            m.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        score(&raw, &Model::default());
        score(&raw, &trained_model());
    }

    #[test]
    fn message_shaped_input_never_panics(raw in message_strategy()) {
        score(&raw, &Model::default());
        score(&raw, &trained_model());
    }

    #[test]
    fn html_never_panics(s in any::<String>(), max in 0usize..64) {
        let h = html::convert(&s, max);
        prop_assert!(h.visible.len() <= max + 4);
        let _ = html::decode_entities(&s);
    }

    #[test]
    fn dnsbl_names_never_panic(d in any::<String>(), z in "[a-z.]{0,20}") {
        if let Some(name) = wharf_spam::dnsbl::domain_query_name(&d, &z) {
            prop_assert!(name.is_ascii());
        }
    }
}
