//! Shared set-up for the end-to-end tests: a sample message, a default context, and helpers that
//! compile and run scripts.
#![allow(dead_code)]

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use wharf_sieve::{
    Action, CompileError, CompileLimits, Context, Envelope, Outcome, RunLimits, Script, SpamScore,
    compile, run,
};

/// Modelled on the example in RFC 5228 §9, with a few more fields for the extensions.
pub const MSG: &str = "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\n\
Received: from b.example by mx.example; Tue, 1 Apr 1997 18:06:40 +0100\r\n\
Received: from a.example by b.example; Tue, 1 Apr 1997 17:06:35 +0000\r\n\
From: coyote@desert.example.org\r\n\
To: roadrunner@acme.example.com\r\n\
Cc: \"Some One\" <someone+lists@example.net>, Friends: a@friends.example, b@friends.example;\r\n\
Subject: I have a present for you\r\n\
Message-ID: <1234@desert.example.org>\r\n\
X-Spam: yes\r\n\
\r\n\
Look, I'm sorry about the whole anvil thing, and I really\r\n\
didn't mean to try and drop it on you from the top of the\r\n\
cliff.  I've got some great birdseed over here at my place.\r\n";

pub fn limits() -> CompileLimits {
    CompileLimits::default()
}

pub fn script(src: &str) -> Script {
    match compile(src, &limits()) {
        Ok(s) => s,
        Err(e) => panic!("script does not compile: {e}\n{src}"),
    }
}

pub fn compile_err(src: &str) -> CompileError {
    match compile(src, &limits()) {
        Ok(_) => panic!("script compiled but should not:\n{src}"),
        Err(e) => e,
    }
}

pub struct Fixture {
    pub envelope: Envelope,
    pub mailboxes: HashSet<String>,
    pub seen: HashSet<String>,
    pub user_addresses: Vec<String>,
    pub spam: Option<SpamScore>,
    pub virus: Option<u8>,
    pub now: DateTime<FixedOffset>,
    pub limits: RunLimits,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            envelope: Envelope {
                from: "coyote@desert.example.org".into(),
                to: "roadrunner@acme.example.com".into(),
                auth: None,
            },
            mailboxes: ["filter", "spam", "personal", "lists", "Trash"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            seen: HashSet::new(),
            user_addresses: vec!["roadrunner@acme.example.com".into()],
            spam: None,
            virus: None,
            now: DateTime::parse_from_rfc3339("2024-03-05T10:20:30+01:00").unwrap(),
            limits: RunLimits::default(),
        }
    }
}

impl Fixture {
    pub fn run(&self, scripts: &[&str], msg: &str) -> Outcome {
        let compiled: Vec<Script> = scripts.iter().map(|s| script(s)).collect();
        let refs: Vec<&Script> = compiled.iter().collect();
        let ctx = Context {
            envelope: &self.envelope,
            mailboxes: &self.mailboxes,
            seen_duplicates: &self.seen,
            spam_score: self.spam,
            virus_score: self.virus,
            now: self.now,
            user_addresses: &self.user_addresses,
        };
        run(&refs, msg.as_bytes(), &ctx, &self.limits)
    }

    pub fn actions(&self, src: &str, msg: &str) -> Vec<Action> {
        let out = self.run(&[src], msg);
        assert_eq!(out.error, None, "unexpected runtime error");
        out.actions
    }
}

/// One script against the sample message with the default context.
pub fn actions(src: &str) -> Vec<Action> {
    Fixture::default().actions(src, MSG)
}

pub fn keep() -> Action {
    Action::Keep { flags: vec![] }
}

pub fn keep_with(flags: &[&str]) -> Action {
    Action::Keep {
        flags: flags.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn fileinto(mailbox: &str) -> Action {
    Action::FileInto {
        mailbox: mailbox.into(),
        flags: vec![],
        create: false,
    }
}

pub fn redirect(address: &str, copy: bool) -> Action {
    Action::Redirect {
        address: address.into(),
        copy,
    }
}

pub fn with_header(extra: &str) -> String {
    format!("{extra}\r\n{MSG}")
}
