//! Messages from strangers through the spam filter: any bytes must parse, tokenize and score
//! without panicking, with every output within its bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wharf_spam::{AuthVerdicts, Config, Facts, Scan, SenderLists, evaluate};

fuzz_target!(|data: &[u8]| {
    let scan = Scan::new(data);
    let auth = AuthVerdicts::default();
    let lists = SenderLists::default();
    let local = ["example.com".to_string()];
    let facts = Facts {
        auth: &auth,
        envelope_from: "a@example.org",
        local_domains: &local,
        domain_lists: &lists,
        user_lists: &lists,
        known_correspondent: false,
        reputation: None,
        classification: None,
        dnsbl_hits: &[],
        rspamd: None,
    };
    let verdict = evaluate(&Config::default(), &scan.analysis, &facts);
    assert!(verdict.score.is_finite());
    for line in verdict.headers().split("\r\n") {
        assert!(line.len() <= 998);
    }
    let _ = scan.analysis.url_domains();
});
