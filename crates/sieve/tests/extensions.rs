//! One or more scripts per extension, mostly the RFCs' own examples, run against the sample
//! message with the exact outcome asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_sieve::{Action, DuplicateRecord, SpamScore};

#[test]
fn fileinto_copy_flags_create() {
    assert_eq!(
        actions("require [\"fileinto\", \"copy\"]; fileinto :copy \"spam\";"),
        vec![fileinto("spam"), keep()]
    );
    assert_eq!(
        actions("require [\"fileinto\", \"mailbox\"]; fileinto :create \"new/box\";"),
        vec![Action::FileInto {
            mailbox: "new/box".into(),
            flags: vec![],
            create: true
        }]
    );
}

#[test]
fn reject_and_ereject() {
    assert_eq!(
        actions("require \"ereject\"; ereject \"I do not accept messages from this address.\";"),
        vec![Action::Reject {
            reason: "I do not accept messages from this address.".into(),
            extended: true
        }]
    );
    // RFC 5429 §2.1 example.
    let src = "require [\"reject\"];\r\nif size :over 100K {\r\n   reject text:\r\nYour message is too big.  If you want to send me a big attachment,\r\nput it on a public web site and send me a URL.\r\n.\r\n;\r\n}";
    assert_eq!(actions(src), vec![keep()]);
    let big = format!("{MSG}{}", "x".repeat(110 * 1024));
    assert_eq!(
        Fixture::default().actions(src, &big),
        vec![Action::Reject {
            reason: "Your message is too big.  If you want to send me a big attachment,\r\nput it on a public web site and send me a URL.\r\n".into(),
            extended: false
        }]
    );
}

#[test]
fn variables_rfc5229_examples() {
    let list = with_header("List-ID: Mailing list <sieve-users@example.org>");
    let src = r#"require ["variables", "fileinto", "mailbox"];
        if header :matches "List-ID" "*<*@*" {
            fileinto :create "INBOX.lists.${2}"; stop;
        }
        # Imagine the header
        # Subject: [acme-users] [fwd] version 1.0 is out
        if header :matches "Subject" "[*] *" {
            # ${1} will hold "acme-users",
            # ${2} will hold "[fwd] version 1.0 is out"
            fileinto :create "INBOX.lists.${1}"; stop;
        }"#;
    let created = |m: &str| Action::FileInto {
        mailbox: m.into(),
        flags: vec![],
        create: true,
    };
    assert_eq!(
        Fixture::default().actions(src, &list),
        vec![created("INBOX.lists.sieve-users")]
    );
    let subj = MSG.replace(
        "I have a present for you",
        "[acme-users] [fwd] version 1.0 is out",
    );
    assert_eq!(
        Fixture::default().actions(src, &subj),
        vec![created("INBOX.lists.acme-users")]
    );

    let src = r#"require ["variables", "reject"];
        set "honorific"  "Mr";
        set "first_name" "Wile";
        set "last_name"  "Coyote";
        set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
        if string :is "${vacation}" "" { keep; } else { reject "${vacation}"; }"#;
    assert_eq!(
        actions(src),
        vec![Action::Reject {
            reason: "Dear Mr Coyote,\r\nI'm out, please leave a message after the meep.\r\n".into(),
            extended: false
        }]
    );
}

#[test]
fn variables_modifiers_and_string_test() {
    let src = r#"require ["variables", "fileinto", "mailbox"];
        set "a" "juMBlEd lETteRS";
        set :length "length" "${a}";
        set :lower "lower" "${a}";
        set :upperfirst "upperfirst" "${a}";
        set :upperfirst :lower "both" "${a}";
        set :quotewildcard "quoted" "a*b?c\\d";
        if allof (string :is "${length}" "15",
                  string :is :comparator "i;octet" "${lower}" "jumbled letters",
                  string :is :comparator "i;octet" "${upperfirst}" "JuMBlEd lETteRS",
                  string :is :comparator "i;octet" "${both}" "Jumbled letters",
                  string :is :comparator "i;octet" "${quoted}" "a\\*b\\?c\\\\d",
                  string :matches "a*b?c\\d" "${quoted}",
                  string :is "${unknown}" "") {
            fileinto :create "ok";
        }"#;
    assert_eq!(
        actions(src),
        vec![Action::FileInto {
            mailbox: "ok".into(),
            flags: vec![],
            create: true
        }]
    );
    // :count with string counts only non-empty sources.
    let src = r#"require ["variables", "relational", "comparator-i;ascii-numeric"];
        if string :count "eq" :comparator "i;ascii-numeric" ["a", "", "b"] "2" { discard; }"#;
    assert_eq!(actions(src), vec![Action::Discard]);
}

#[test]
fn variable_values_are_truncated() {
    let f = Fixture {
        limits: wharf_sieve::RunLimits {
            max_variable_bytes: 3,
            ..Default::default()
        },
        ..Fixture::default()
    };
    let src = r#"require ["variables", "fileinto", "mailbox"];
        set "v" "ab\u{e9}cd"; fileinto :create "${v}";"#;
    let src = src.replace("\\u{e9}", "\u{e9}");
    assert_eq!(
        f.actions(&src, MSG),
        vec![Action::FileInto {
            mailbox: "ab".into(),
            flags: vec![],
            create: true
        }]
    );
}

#[test]
fn relational_rfc5231_examples() {
    let src = r#"require ["relational", "comparator-i;ascii-numeric", "fileinto"];
        if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"] { fileinto "filter"; }
        elsif address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { fileinto "lists"; }
        elsif address :count "gt" :comparator "i;ascii-numeric" ["to"] ["3"] { fileinto "spam"; }"#;
    // To + Cc hold 4 addresses (the group's members count).
    assert_eq!(actions(src), vec![fileinto("lists")]);
    let prio = with_header("X-Priority: 1 (Highest)");
    assert_eq!(
        Fixture::default().actions(src, &prio),
        vec![fileinto("filter")]
    );
    let src = r#"require ["relational", "fileinto"];
        if header :value "gt" ["subject"] ["H"] { fileinto "spam"; }"#;
    assert_eq!(actions(src), vec![fileinto("spam")]);
    let src = r#"require ["relational", "fileinto"];
        if header :count "eq" "received" "2" { fileinto "spam"; }"#;
    assert_eq!(actions(src), vec![fileinto("spam")]);
}

#[test]
fn subaddress_rfc5233_examples() {
    let mut f = Fixture::default();
    f.envelope.to = "ken+sieve@example.org".into();
    let src = r#"require ["envelope", "subaddress", "fileinto"];
        if envelope :user "to" "ken" {
            if envelope :detail "to" "sieve" { fileinto "lists"; }
            elsif envelope :detail "to" "" { fileinto "spam"; }
        }"#;
    assert_eq!(f.actions(src, MSG), vec![fileinto("lists")]);
    f.envelope.to = "ken+@example.org".into();
    assert_eq!(f.actions(src, MSG), vec![fileinto("spam")]);
    f.envelope.to = "ken@example.org".into();
    assert_eq!(f.actions(src, MSG), vec![keep()]);
    let src = r#"require ["subaddress", "fileinto"];
        if address :detail :is "cc" "lists" { fileinto "lists"; }"#;
    assert_eq!(actions(src), vec![fileinto("lists")]);
}

#[test]
fn imap4flags_rfc5232() {
    let src = r#"require ["imap4flags", "fileinto", "variables"];
        addflag "\\Seen";
        addflag ["\\Flagged", "$Work  \\seen"];
        if hasflag :contains "flagg" { addflag "Found"; }
        removeflag "\\SEEN";
        setflag "myflags" "A B";
        addflag "myflags" "b C";
        if hasflag "myflags" "c" { fileinto :flags "${myflags}" "lists"; }
        fileinto "spam";"#;
    assert_eq!(
        actions(src),
        vec![
            Action::FileInto {
                mailbox: "lists".into(),
                flags: vec!["A".into(), "B".into(), "C".into()],
                create: false
            },
            Action::FileInto {
                mailbox: "spam".into(),
                flags: vec!["\\Flagged".into(), "$Work".into(), "Found".into()],
                create: false
            }
        ]
    );
    // The implicit keep carries the internal variable's flags; keep :flags overrides them.
    assert_eq!(
        actions("require \"imap4flags\"; setflag \"\\\\Seen\";"),
        vec![keep_with(&["\\Seen"])]
    );
    assert_eq!(
        actions("require \"imap4flags\"; setflag \"\\\\Seen\"; keep :flags \"x y\";"),
        vec![keep_with(&["x", "y"])]
    );
    let e = compile_err("require \"imap4flags\"; setflag \"v\" \"x\";");
    assert_eq!(e.message, "missing require \"variables\"");
}

#[test]
fn date_and_index_rfc5260() {
    let src = r#"require ["date", "relational", "fileinto", "index"];
        if allof (date :originalzone "date" "year" "1997",
                  date :originalzone "date" "zone" "-0800",
                  date :zone "+0000" "date" "time" "17:06:31",
                  date "date" "hour" "18",
                  date :originalzone :index 1 "received" "zone" "+0100",
                  date :originalzone :index 1 :last "received" "time" "17:06:35",
                  date :value "ge" "date" "date" "1997-04-01",
                  date "date" "weekday" "2",
                  currentdate :zone "+0000" "iso8601" "2024-03-05T09:20:30+00:00",
                  currentdate "std11" "Tue, 05 Mar 2024 10:20:30 +0100",
                  currentdate :value "lt" "year" "2025",
                  header :index 2 :contains "received" "from a.example",
                  not header :index 3 "received" "") {
            fileinto "lists";
        }"#;
    assert_eq!(actions(src), vec![fileinto("lists")]);
    let src = r#"require ["date", "fileinto"];
        if date :is "x-nodate" "year" "1997" { fileinto "spam"; }"#;
    assert_eq!(actions(src), vec![keep()]);
    // RFC 5260 §5 style: a reply during working hours only.
    let src = r#"require ["date", "relational", "fileinto"];
        if allof(currentdate :value "ge" "hour" "09", currentdate :value "lt" "hour" "17") { fileinto "filter"; }"#;
    assert_eq!(actions(src), vec![fileinto("filter")]);
}

#[test]
fn editheader_rfc5293() {
    let src = r#"require ["editheader", "fileinto"];
        addheader "X-Sieve" "processed";
        addheader :last "X-Last" "caf\u{e9}";
        deleteheader "x-spam";
        deleteheader :contains "received" "b.example";
        deleteheader "Auto-Submitted";
        addheader "Received" "forged";
        if allof (header :is "x-sieve" "processed", not exists "x-spam", exists "received") {
            fileinto "lists";
        }"#;
    let src = src.replace("\\u{e9}", "\u{e9}");
    let out = Fixture::default().run(&[&src], MSG);
    assert_eq!(out.actions, vec![fileinto("lists")]);
    let edited = String::from_utf8(out.edited_message.unwrap()).unwrap();
    let expected = MSG.replace("X-Spam: yes\r\n", "X-Last: =?utf-8?B?Y2Fmw6k=?=\r\n");
    assert_eq!(edited, format!("X-Sieve: processed\r\n{expected}"));

    let src = r#"require ["editheader", "index"];
        deleteheader :index 1 :last "received";"#;
    let out = Fixture::default().run(&[src], &with_header("X-A: 1"));
    // Received is protected, so nothing changes.
    assert_eq!(out.edited_message, None);
    let src = r#"require ["editheader", "index"]; addheader "X-A" "2"; deleteheader :index 1 :last "x-a";"#;
    let out = Fixture::default().run(&[src], &with_header("X-A: 1"));
    assert_eq!(
        out.edited_message.unwrap(),
        format!("X-A: 2\r\n{MSG}").into_bytes()
    );
}

#[test]
fn mailbox_rfc5490() {
    let src = r#"require ["fileinto", "mailbox"];
        if mailboxexists ["lists", "INBOX"] { fileinto "lists"; }
        if mailboxexists "nope" { discard; }"#;
    assert_eq!(actions(src), vec![fileinto("lists")]);
}

#[test]
fn encoded_character() {
    // RFC 5228 §2.4.2.4.
    let src = r#"require ["encoded-character", "fileinto"];
        if header :contains "Subject" "${hex: 70 72 65}${unicode:73}ent" { fileinto "${hex:73 70 61 6D}"; }"#;
    assert_eq!(actions(src), vec![fileinto("spam")]);
    // Without the require, the text is literal.
    let src = r#"require "fileinto"; fileinto "${hex:73}";"#;
    assert_eq!(actions(src), vec![keep()]);
}

#[test]
fn comparator_ascii_numeric() {
    let src = r#"require ["comparator-i;ascii-numeric", "fileinto"];
        if header :is :comparator "i;ascii-numeric" "x-count" "007" { fileinto "spam"; }"#;
    assert_eq!(
        Fixture::default().actions(src, &with_header("X-Count: 7 items")),
        vec![fileinto("spam")]
    );
}

#[test]
fn body_rfc5173() {
    let src = r#"require ["body", "fileinto"];
        if body :contains ["birdseed", "anvil"] { fileinto "spam"; }"#;
    assert_eq!(actions(src), vec![fileinto("spam")]);
    let src =
        r#"require ["body", "fileinto"]; if body :raw :contains "MONEY" { fileinto "spam"; }"#;
    assert_eq!(actions(src), vec![keep()]);

    let mime = "From: a@b.example\r\nTo: roadrunner@acme.example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/html\r\n\r\n<p>Buy <b>now</b></p>\r\n--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVuIHBheWxvYWQ=\r\n--xx--\r\n";
    let f = Fixture::default();
    let t = |test: &str| {
        let src = format!("require [\"body\", \"fileinto\"]; if {test} {{ fileinto \"spam\"; }}");
        f.actions(&src, mime) == vec![fileinto("spam")]
    };
    assert!(t("body :text :contains \"buy now\""));
    assert!(!t("body :text :contains \"<b>\""));
    assert!(t("body :content \"text/html\" :contains \"<b>now</b>\""));
    assert!(t(
        "body :content \"application\" :contains \"hidden payload\""
    ));
    assert!(!t("body :content \"text/plain\" :contains \"buy\""));
    assert!(!t("body :text :contains \"hidden payload\""));
    assert!(t("body :raw :contains \"aGlkZGVuIHBheWxvYWQ=\""));
}

#[test]
fn duplicate_rfc7352() {
    let src = r#"require ["duplicate", "fileinto", "mailbox"];
        if duplicate { fileinto :create "Trash/Duplicate"; }"#;
    let f = Fixture::default();
    let out = f.run(&[src], MSG);
    assert_eq!(out.actions, vec![keep()]);
    assert_eq!(out.duplicates_to_record.len(), 1);
    let rec = out.duplicates_to_record[0].clone();
    assert_eq!(rec.expires_in_seconds, 7 * 86400);
    let mut seen = Fixture::default();
    seen.seen.insert(rec.id.clone());
    let out = seen.run(&[src], MSG);
    assert_eq!(
        out.actions,
        vec![Action::FileInto {
            mailbox: "Trash/Duplicate".into(),
            flags: vec![],
            create: true
        }]
    );
    // Already known and no :last: nothing to refresh.
    assert_eq!(out.duplicates_to_record, vec![]);
    let last = "require \"duplicate\"; if duplicate :last :seconds 60 { discard; }";
    let out = seen.run(&[last], MSG);
    assert_eq!(out.actions, vec![Action::Discard]);
    assert_eq!(
        out.duplicates_to_record,
        vec![DuplicateRecord {
            id: rec.id.clone(),
            expires_in_seconds: 60
        }]
    );

    // RFC 7352 §3.2 example, tracking another header under its own handle.
    let src = r#"require ["duplicate", "variables"];
        if header :matches "subject" "ALERT: *" {
            if duplicate :seconds 60 :uniqueid "${1}" { discard; }
        }"#;
    let alert = MSG.replace("I have a present for you", "ALERT: disk full");
    let out = f.run(&[src], &alert);
    assert_eq!(out.actions, vec![keep()]);
    assert_eq!(out.duplicates_to_record.len(), 1);
    assert_ne!(out.duplicates_to_record[0].id, rec.id);
    let by_header =
        "require \"duplicate\"; if duplicate :handle \"h\" :header \"x-event\" { discard; }";
    let out = f.run(&[by_header], MSG);
    assert_eq!(
        out.duplicates_to_record,
        vec![],
        "no such header: nothing to track"
    );
    // No Message-ID: not a duplicate, nothing recorded.
    let no_id = MSG.replace("Message-ID: <1234@desert.example.org>\r\n", "");
    let out = f.run(
        &["require \"duplicate\"; if duplicate { discard; }"],
        &no_id,
    );
    assert_eq!(
        (out.actions, out.duplicates_to_record),
        (vec![keep()], vec![])
    );
}

#[test]
fn spamtest_and_virustest_rfc5235() {
    let src = r#"require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "filter"; }
        elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" { fileinto "spam"; }"#;
    let mut f = Fixture::default();
    assert_eq!(f.actions(src, MSG), vec![fileinto("filter")]);
    f.spam = Some(SpamScore {
        value: 5,
        percent: 45,
    });
    assert_eq!(f.actions(src, MSG), vec![fileinto("spam")]);
    f.spam = Some(SpamScore {
        value: 0,
        percent: 0,
    });
    assert_eq!(
        f.actions(src, MSG),
        vec![keep()],
        "a tested message is never \"0\""
    );

    let src = r#"require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "40" { fileinto "spam"; }"#;
    f.spam = Some(SpamScore {
        value: 5,
        percent: 45,
    });
    assert_eq!(f.actions(src, MSG), vec![fileinto("spam")]);

    let src = r#"require ["virustest", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "filter"; }
        elsif virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; }"#;
    let mut f = Fixture::default();
    assert_eq!(f.actions(src, MSG), vec![fileinto("filter")]);
    f.virus = Some(5);
    assert_eq!(f.actions(src, MSG), vec![Action::Discard]);
    f.virus = Some(1);
    assert_eq!(f.actions(src, MSG), vec![keep()]);
}

#[test]
fn copy_rfc3894() {
    let src = r#"require ["copy", "fileinto"];
        redirect :copy "sent@example.org"; fileinto :copy "lists";"#;
    assert_eq!(
        actions(src),
        vec![
            redirect("sent@example.org", true),
            fileinto("lists"),
            keep()
        ]
    );
}

// Regressions found by the Pigeonhole differential test (tests/differential.rs).

#[test]
fn deleteheader_index_needs_no_index_extension() {
    let out = Fixture::default().run(
        &[
            r#"require "editheader"; deleteheader :index 1 :last "Received";
            deleteheader :index 1 "X-Spam";"#,
        ],
        MSG,
    );
    assert_eq!(out.error, None);
    let edited = String::from_utf8(out.edited_message.unwrap()).unwrap();
    assert!(!edited.contains("X-Spam"));
}

#[test]
fn second_vacation_in_one_script_is_an_error() {
    let out = Fixture::default().run(
        &[r#"require "vacation"; vacation "one"; vacation "two";"#],
        MSG,
    );
    assert!(out.error.is_some());
    assert_eq!(out.actions, vec![keep()]);
}

#[test]
fn body_content_multipart_tests_prologue_and_epilogue() {
    let msg = "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
               preamble words\r\n--x\r\nContent-Type: text/plain\r\n\r\ninner words\r\n--x--\r\n\
               epilogue words\r\n";
    let f = Fixture::default();
    let test = |key: &str| {
        f.actions(
            &format!(
                r#"require ["body","fileinto"]; if body :content "multipart" :contains "{key}" {{ fileinto "filter"; }}"#
            ),
            msg,
        )
    };
    assert_eq!(test("preamble"), vec![fileinto("filter")]);
    assert_eq!(test("epilogue"), vec![fileinto("filter")]);
    assert_eq!(test("inner"), vec![keep()]);
}
