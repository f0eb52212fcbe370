//! RFC 5228 base language end to end: control flow, the base tests, implicit keep, action
//! de-duplication, several scripts in one run, compile error positions and run limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_sieve::{Action, RunLimits};

const RFC5228_EXAMPLE: &str = r#"#
# Example Sieve Filter (RFC 5228 section 9)
require ["fileinto"];

if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        fileinto "personal";
        }
"#;

#[test]
fn rfc5228_example_script() {
    assert_eq!(actions(RFC5228_EXAMPLE), vec![fileinto("spam")]);
    let list = with_header("Sender: owner-ietf-mta-filters@imc.org");
    assert_eq!(
        Fixture::default().actions(RFC5228_EXAMPLE, &list),
        vec![fileinto("filter")]
    );
    let company = MSG.replace("To: roadrunner@acme.example.com", "To: boss@example.com");
    assert_eq!(
        Fixture::default().actions(RFC5228_EXAMPLE, &company),
        vec![keep()]
    );
    let personal = MSG.replace(
        "To: roadrunner@acme.example.com",
        "To: acme@example.community",
    );
    assert_eq!(
        Fixture::default().actions(RFC5228_EXAMPLE, &personal),
        vec![fileinto("personal")]
    );
    let spam = personal.replace("I have a present for you", "Make lots of MONEY Fast!");
    assert_eq!(
        Fixture::default().actions(RFC5228_EXAMPLE, &spam),
        vec![fileinto("spam")]
    );
}

#[test]
fn implicit_keep() {
    assert_eq!(actions(""), vec![keep()]);
    assert_eq!(actions("keep;"), vec![keep()]);
    assert_eq!(actions("discard;"), vec![Action::Discard]);
    assert_eq!(actions("discard; keep;"), vec![keep()]);
    assert_eq!(
        actions("redirect \"a@b.example\";"),
        vec![redirect("a@b.example", false)]
    );
    assert_eq!(
        actions("require \"copy\"; redirect :copy \"a@b.example\";"),
        vec![redirect("a@b.example", true), keep()]
    );
    assert_eq!(
        actions("redirect \"a@b.example\"; discard;"),
        vec![redirect("a@b.example", false), Action::Discard]
    );
    assert_eq!(
        actions("require \"reject\"; reject \"go away\";"),
        vec![Action::Reject {
            reason: "go away".into(),
            extended: false
        }]
    );
    // Tests alone do not cancel anything.
    assert_eq!(actions("if true { } stop;"), vec![keep()]);
}

#[test]
fn duplicate_actions_are_merged() {
    assert_eq!(
        actions(
            "require \"fileinto\"; fileinto \"spam\"; fileinto \"spam\"; keep; fileinto \"INBOX\";"
        ),
        vec![fileinto("spam"), keep()]
    );
    assert_eq!(
        actions("redirect \"a@b.example\"; redirect \"A@B.example\";"),
        vec![redirect("a@b.example", false)]
    );
}

#[test]
fn base_tests() {
    let t = |test: &str| -> bool {
        let src =
            format!("require [\"envelope\", \"fileinto\"]; if {test} {{ fileinto \"spam\"; }}");
        actions(&src) == vec![fileinto("spam")]
    };
    assert!(t("true"));
    assert!(!t("false"));
    assert!(t("not false"));
    assert!(t("allof (true, not false)"));
    assert!(!t("allof (true, false)"));
    assert!(t("anyof (false, true)"));
    assert!(t("exists [\"From\", \"subject\"]"));
    assert!(!t("exists [\"From\", \"X-Nope\"]"));
    assert!(t("size :over 100"));
    assert!(t("size :under 1K"));
    assert!(!t("size :under 10"));
    assert!(t("header :contains \"subject\" \"PRESENT\""));
    assert!(!t(
        "header :comparator \"i;octet\" :contains \"subject\" \"PRESENT\""
    ));
    assert!(t("header :matches \"Subject\" \"I have a ?resent*\""));
    assert!(t("header :is \"x-spam\" \"YES\""));
    assert!(t("address :localpart :is \"from\" \"coyote\""));
    assert!(t("address :domain :is \"to\" \"ACME.example.com\""));
    assert!(t("address :all :is \"cc\" \"b@friends.example\""));
    assert!(t("address :is \"cc\" \"someone+lists@example.net\""));
    assert!(!t("address :contains \"subject\" \"present\""));
    assert!(t("envelope :is \"from\" \"coyote@desert.example.org\""));
    assert!(t("envelope :domain :is \"to\" \"acme.example.com\""));
    assert!(!t("envelope :is \"to\" \"someone@else\""));
}

#[test]
fn null_sender_envelope() {
    let mut f = Fixture::default();
    f.envelope.from = String::new();
    let src = "require [\"envelope\", \"fileinto\"]; if envelope :localpart :is \"from\" \"\" { fileinto \"spam\"; }";
    assert_eq!(f.actions(src, MSG), vec![fileinto("spam")]);
}

#[test]
fn stop_ends_the_whole_run() {
    let f = Fixture::default();
    let before = "require \"fileinto\"; fileinto \"lists\";";
    let user = "if true { stop; } redirect \"x@y.example\";";
    let after = "discard;";
    let out = f.run(&[before, user, after], MSG);
    assert_eq!(out.actions, vec![fileinto("lists")]);
    let out = f.run(&[before, "keep;", after], MSG);
    assert_eq!(out.actions, vec![fileinto("lists"), keep()]);
}

#[test]
fn reject_conflicts_fall_back_to_keep() {
    let out = Fixture::default().run(
        &["require [\"reject\", \"fileinto\"]; reject \"no\"; fileinto \"spam\";"],
        MSG,
    );
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("reject"));
    let out = Fixture::default().run(&["require \"reject\"; keep; reject \"no\";"], MSG);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.is_some());
}

#[test]
fn compile_errors_point_at_the_problem() {
    let e = compile_err("if true {\n  fileinto \"spam\";\n}");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(
        e.to_string(),
        "line 2, column 3: missing require \"fileinto\""
    );
    let e = compile_err("keep;\nredirect \"abc@d.example;\n");
    assert_eq!((e.line, e.column), (2, 10));
    assert_eq!(e.message, "unterminated string");
    let e = compile_err("if  nosuchtest { keep; }");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 5, "unknown test 'nosuchtest'")
    );
    let e = compile_err("keep;\n\n   elsif true { keep; }");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (3, 4, "elsif without if")
    );
    let e = compile_err("if true { keep; }\nkeep;\nelse { keep; }");
    assert_eq!((e.line, e.column), (3, 1));
    let e = compile_err("require \"imap4flags\";\nkeep :flagz \"x\";");
    assert_eq!((e.line, e.column), (2, 6));
    let e = compile_err("if header :is \"a\" {}");
    assert_eq!(e.line, 1);
}

#[test]
fn instruction_limit_falls_back_to_keep() {
    let f = Fixture {
        limits: RunLimits {
            max_instructions: 50,
            ..RunLimits::default()
        },
        ..Fixture::default()
    };
    let body = "if true { } ".repeat(60) + "discard;";
    let out = f.run(&[&body], MSG);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("instruction limit"));
    let body = "if true { } ".repeat(10) + "discard;";
    assert_eq!(f.run(&[&body], MSG).actions, vec![Action::Discard]);
}

#[test]
fn redirect_limit_falls_back_to_keep() {
    let f = Fixture::default();
    let four: String = (0..4)
        .map(|i| format!("redirect \"u{i}@x.example\";"))
        .collect();
    let out = f.run(&[&four], MSG);
    assert_eq!(out.error, None);
    assert_eq!(out.actions.len(), 4);
    // Repeating an address is not a new redirect.
    let out = f.run(&[&format!("{four} redirect \"u0@x.example\";")], MSG);
    assert_eq!(out.error, None);
    let out = f.run(&[&format!("{four} redirect \"u9@x.example\";")], MSG);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("redirect limit"));
}

#[test]
fn action_limit_falls_back_to_keep() {
    let f = Fixture {
        limits: RunLimits {
            max_actions: 3,
            ..RunLimits::default()
        },
        ..Fixture::default()
    };
    let out = f.run(&["keep; keep; keep; keep;"], MSG);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("action limit"));
}

#[test]
fn fileinto_missing_mailbox_and_inbox() {
    assert_eq!(
        actions("require \"fileinto\"; fileinto \"nowhere\";"),
        vec![keep()]
    );
    assert_eq!(
        actions("require \"fileinto\"; fileinto \"inbox\";"),
        vec![keep()]
    );
}

#[test]
fn garbage_message_is_handled() {
    let f = Fixture::default();
    let out = f.run(
        &["if header :contains \"subject\" \"x\" { discard; }"],
        "no header here",
    );
    assert_eq!(out.actions, vec![keep()]);
    let out = f.run(&["if size :over 0 { discard; }"], "");
    assert_eq!(out.actions, vec![keep()]);
}

#[test]
fn expensive_matching_counts_against_the_instruction_limit() {
    let body = "a".repeat(200_000);
    let msg = format!("Subject: x\r\n\r\n{body}\r\n");
    let pattern = "*a".repeat(100) + "b";
    let test = format!("body :raw :matches \"{pattern}\"");
    let src = format!(
        "require \"body\"; if anyof ({}) {{ discard; }}",
        vec![test; 40].join(", ")
    );
    let out = Fixture::default().run(&[&src], &msg);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("instruction limit"));
}

#[test]
fn added_fields_are_bounded() {
    let src = format!(
        "require \"editheader\"; {}",
        "addheader \"X-A\" \"b\";".repeat(65)
    );
    let out = Fixture::default().run(&[&src], MSG);
    assert_eq!((out.actions, out.edited_message), (vec![keep()], None));
    assert!(out.error.unwrap().contains("addheader limit"));
}
