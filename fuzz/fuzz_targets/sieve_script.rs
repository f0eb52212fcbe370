//! Sieve scripts uploaded by users: compiling any text must not panic, and whatever compiles
//! must run on a small message without panicking, ending in a keep when it fails.
#![no_main]
use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use wharf_sieve::{Action, CompileLimits, Context, Envelope, RunLimits, compile, run};

const MESSAGE: &[u8] = b"Date: Tue, 1 Apr 1997 09:06:31 -0800\r\n\
From: coyote@desert.example.org\r\n\
To: roadrunner@acme.example.com\r\n\
Subject: I have a present for you\r\n\
Message-ID: <1@desert.example.org>\r\n\
\r\n\
Look, I'm sorry about the anvil.\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(script) = compile(source, &CompileLimits::default()) else {
        return;
    };
    let envelope = Envelope {
        from: "coyote@desert.example.org".into(),
        to: "roadrunner@acme.example.com".into(),
        auth: None,
    };
    let mailboxes: HashSet<String> = ["lists".to_string()].into_iter().collect();
    let seen = HashSet::new();
    let users = ["roadrunner@acme.example.com".to_string()];
    let Some(now) = chrono::DateTime::from_timestamp(1_700_000_000, 0) else {
        return;
    };
    let ctx = Context {
        envelope: &envelope,
        mailboxes: &mailboxes,
        seen_duplicates: &seen,
        spam_score: None,
        virus_score: None,
        now: now.fixed_offset(),
        user_addresses: &users,
    };
    let out = run(&[&script], MESSAGE, &ctx, &RunLimits::default());
    if out.error.is_some() {
        assert_eq!(out.actions, vec![Action::Keep { flags: vec![] }]);
    }
});
