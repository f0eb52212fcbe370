//! Property tests: compiling never panics on any text, and running never panics (and always
//! yields a result that keeps or places the message somewhere sensible) on any message bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use proptest::prelude::*;
use wharf_sieve::{Action, CompileLimits, Context, RunLimits, compile, run};

const VALID: &[&str] = &[
    r#"require ["fileinto", "variables", "imap4flags", "relational", "comparator-i;ascii-numeric"];
if header :matches "subject" "*[*]*" { set "x" "${2}"; fileinto "lists.${x}"; }
elsif address :count "ge" :comparator "i;ascii-numeric" ["to","cc"] "2" { addflag "\\Seen"; }
else { keep; }"#,
    "require \"vacation\";\nvacation :days 3 :subject \"away\" text:\nGone.\n..\n.\n;",
    "if anyof (size :over 1K, not exists \"date\") { discard; stop; }",
    "require [\"editheader\", \"index\", \"date\"]; if date :index 1 \"date\" \"year\" \"2020\" { deleteheader :index 1 :last \"x\"; }",
];

const ENTITIES: &[&str] = &[
    "require",
    "if",
    "elsif",
    "else",
    "keep",
    "discard",
    "stop",
    "redirect",
    "fileinto",
    "header",
    "address",
    "envelope",
    "true",
    "false",
    "not",
    "anyof",
    "allof",
    "size",
    ":over",
    ":is",
    ":matches",
    ":contains",
    ":value",
    "\"gt\"",
    ":count",
    ":comparator",
    "\"i;octet\"",
    "\"i;ascii-numeric\"",
    "text:\nx\n.\n",
    "\"${1}\"",
    "\"${hex:41}\"",
    "\"*?\\\\\"",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ";",
    "1K",
    "0",
    "18446744073709551615",
    "#c\n",
    "/*",
    "*/",
    "\"",
    "\"fileinto\"",
    "\"variables\"",
    "\"imap4flags\"",
    "setflag",
    "hasflag",
    "set",
    "string",
    "vacation",
    ":days",
    "body",
    ":raw",
    ":text",
    ":content",
    "duplicate",
    "currentdate",
    "\"date\"",
    "\"year\"",
    "addheader",
    "deleteheader",
    ":index",
    ":last",
    "mailboxexists",
    "spamtest",
    "virustest",
    ":percent",
    "\"x@y.z\"",
    "\"subject\"",
];

fn script_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ENTITIES), 0..40)
        .prop_map(|parts| parts.join(" "))
}

/// Valid scripts with one span replaced by arbitrary text.
fn mutated() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(VALID),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        ".{0,8}",
    )
        .prop_map(|(s, a, b, ins)| {
            let chars: Vec<char> = s.chars().collect();
            let i = a.index(chars.len() + 1);
            let j = (i + b.index(8)).min(chars.len());
            let mut out: String = chars[..i].iter().collect();
            out.push_str(&ins);
            out.extend(&chars[j..]);
            out
        })
}

/// Small well-formed scripts built from a grammar, over many extensions.
fn generated_script() -> impl Strategy<Value = String> {
    let test = prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        "[a-z]{0,3}".prop_map(|k| format!("header :contains \"subject\" \"{k}\"")),
        "[a-z*?]{0,4}".prop_map(|k| format!("header :matches [\"from\", \"x-a\"] \"{k}\"")),
        Just("address :domain :is \"to\" \"x.example\"".to_string()),
        Just("exists \"message-id\"".to_string()),
        (0u64..5000).prop_map(|n| format!("size :over {n}")),
        Just("body :text :contains \"a\"".to_string()),
        Just("date :value \"ge\" \"date\" \"year\" \"2000\"".to_string()),
        Just("header :index 2 :last :count \"ge\" \"received\" \"1\"".to_string()),
        Just("duplicate :seconds 10".to_string()),
        Just("spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"5\"".to_string()),
        Just("hasflag \"\\\\Seen\"".to_string()),
        Just("string :matches \"${1}${v}\" \"*x*\"".to_string()),
    ];
    let test = test.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| format!("not {t}")),
            proptest::collection::vec(inner.clone(), 1..3)
                .prop_map(|v| format!("anyof ({})", v.join(", "))),
            proptest::collection::vec(inner, 1..3)
                .prop_map(|v| format!("allof ({})", v.join(", "))),
        ]
    });
    let action = prop_oneof![
        Just("keep;".to_string()),
        Just("discard;".to_string()),
        Just("stop;".to_string()),
        "[a-c]{1,2}".prop_map(|m| format!("fileinto :create \"{m}\";")),
        "[a-c]{1,2}".prop_map(|m| format!("redirect :copy \"{m}@x.example\";")),
        Just("reject \"no\";".to_string()),
        Just("vacation :days 2 \"away\";".to_string()),
        Just("set :upper \"v\" \"${0}\";".to_string()),
        Just("addflag \"\\\\Seen x\";".to_string()),
        Just("removeflag \"x\";".to_string()),
        Just("addheader \"X-Tag\" \"${v}\";".to_string()),
        Just("deleteheader :matches \"x-a\" \"*\";".to_string()),
    ];
    let stmt = (
        proptest::option::of(test),
        proptest::collection::vec(action, 0..4),
    )
        .prop_map(|(t, acts)| match t {
            Some(t) => format!("if {t} {{ {} }}", acts.join(" ")),
            None => acts.join(" "),
        });
    proptest::collection::vec(stmt, 0..6).prop_map(|s| {
        format!(
            "require [\"fileinto\", \"mailbox\", \"copy\", \"reject\", \"vacation\", \"variables\", \"imap4flags\", \
             \"editheader\", \"body\", \"date\", \"index\", \"relational\", \"duplicate\", \"spamtestplus\", \
             \"comparator-i;ascii-numeric\"];\n{}",
            s.join("\n")
        )
    })
}

fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        (
            proptest::collection::vec(any::<u8>(), 0..100),
            0usize..MSG.len()
        )
            .prop_map(|(noise, at)| {
                let mut m = MSG.as_bytes().to_vec();
                m.splice(at..at, noise);
                m
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn compile_never_panics_on_text(s in ".{0,200}") {
        let _ = compile(&s, &CompileLimits::default());
    }

    #[test]
    fn compile_never_panics_on_token_soup(s in script_text()) {
        let _ = compile(&s, &CompileLimits::default());
    }

    #[test]
    fn compile_never_panics_on_mutations(s in mutated()) {
        let _ = compile(&s, &CompileLimits::default());
    }

    #[test]
    fn run_never_panics(src in generated_script(), msg in message_bytes()) {
        let script = compile(&src, &CompileLimits::default()).unwrap();
        let f = Fixture::default();
        let ctx = Context {
            envelope: &f.envelope,
            mailboxes: &f.mailboxes,
            seen_duplicates: &f.seen,
            spam_score: None,
            virus_score: Some(3),
            now: f.now,
            user_addresses: &f.user_addresses,
        };
        let out = run(&[&script, &script], &msg, &ctx, &RunLimits::default());
        if out.error.is_some() {
            prop_assert_eq!(out.actions, vec![keep()]);
        } else {
            prop_assert!(!out.actions.is_empty(), "something must happen to the message");
            if out.actions.iter().any(|a| matches!(a, Action::Reject { .. })) {
                let delivered = out.actions.iter().any(|a| matches!(a, Action::Keep { .. } | Action::FileInto { .. }));
                prop_assert!(!delivered);
            }
        }
    }
}

fn run_compiled(script: &wharf_sieve::Script, limits: &RunLimits) -> wharf_sieve::Outcome {
    let f = Fixture::default();
    let ctx = Context {
        envelope: &f.envelope,
        mailboxes: &f.mailboxes,
        seen_duplicates: &f.seen,
        spam_score: None,
        virus_score: None,
        now: f.now,
        user_addresses: &f.user_addresses,
    };
    run(&[script], MSG.as_bytes(), &ctx, limits)
}

/// `set "v" "${v}${v}…"` repeated `n` times: a string that would double (or more) per line.
fn doubling_script(n: usize, width: usize) -> String {
    let mut s = String::from("require [\"variables\", \"reject\"];\nset \"v\" \"ab\";\n");
    let grow = "${v}".repeat(width);
    for _ in 0..n {
        s.push_str(&format!("set \"v\" \"{grow}\";\n"));
    }
    s.push_str("reject \"${v}\";\n");
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// String expansion cannot outgrow its bound, however often it doubles.
    #[test]
    fn variable_expansion_stays_within_its_bound(n in 1usize..400, width in 1usize..8) {
        let script = compile(&doubling_script(n, width), &CompileLimits::default()).unwrap();
        let limits = RunLimits::default();
        let out = run_compiled(&script, &limits);
        match out.actions.as_slice() {
            [Action::Reject { reason, .. }] => {
                prop_assert!(reason.len() <= limits.max_variable_bytes, "{}", reason.len());
            }
            other => prop_assert!(out.error.is_some() && other == [keep()], "{other:?}"),
        }
    }

    /// A script longer than the instruction budget stops at it and keeps the message.
    #[test]
    fn long_scripts_stop_at_the_instruction_limit(n in 1usize..3000) {
        let big = CompileLimits { max_script_bytes: 1 << 20, ..CompileLimits::default() };
        let script = compile(&doubling_script(n, 2), &big).unwrap();
        let limits = RunLimits { max_instructions: 1000, ..RunLimits::default() };
        let out = run_compiled(&script, &limits);
        if n > 1000 {
            prop_assert!(out.error.is_some());
            prop_assert_eq!(out.actions, vec![keep()]);
        }
    }
}
