//! Vacation (RFC 5230, RFC 6131): the reply's fields and every reason not to reply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_sieve::{Action, VacationReply};

const RFC5230_EXAMPLE: &str = r#"require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}"#;

fn reply(out: &[Action]) -> Option<VacationReply> {
    out.iter().find_map(|a| match a {
        Action::Vacation(v) => Some(v.clone()),
        _ => None,
    })
}

#[test]
fn reply_fields() {
    let acts = actions(RFC5230_EXAMPLE);
    let v = reply(&acts).unwrap();
    assert_eq!(acts.len(), 2, "vacation does not cancel the implicit keep");
    assert_eq!(acts[1], keep());
    assert_eq!(
        v,
        VacationReply {
            to: "coyote@desert.example.org".into(),
            from: None,
            subject: "Auto: I have a present for you".into(),
            body: "I'm out -- call me at +1 304 555 0123".into(),
            mime: false,
            handle: v.handle.clone(),
            period_seconds: 7 * 86400,
            in_reply_to: Some("<1234@desert.example.org>".into()),
            references: Some("<1234@desert.example.org>".into()),
        }
    );
    assert_eq!(v.handle.len(), 32);
    // The handle depends on the arguments, not on the message.
    let other = MSG.replace("I have a present for you", "something else");
    let v2 = reply(&Fixture::default().actions(RFC5230_EXAMPLE, &other)).unwrap();
    assert_eq!(v2.handle, v.handle);
    assert_eq!(v2.subject, "Auto: something else");
    let cyrus = MSG.replace("I have a present for you", "cyrus problem");
    let v3 = reply(&Fixture::default().actions(RFC5230_EXAMPLE, &cyrus)).unwrap();
    assert_ne!(v3.handle, v.handle);
}

#[test]
fn explicit_arguments() {
    let src = r#"require ["vacation", "vacation-seconds"];
        vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
            :subject "Out of office" :from "tjs@example.edu" :handle "away" :mime
            "Content-Type: text/plain\r\n\r\nGone fishing";"#;
    let v = reply(&actions(src)).unwrap();
    assert_eq!(v.period_seconds, 23 * 86400);
    assert_eq!(v.subject, "Out of office");
    assert_eq!(v.from.as_deref(), Some("tjs@example.edu"));
    assert_eq!(v.handle, "away");
    assert!(v.mime);
    let refs = with_header("References: <a@x> <b@y>");
    let v = reply(&Fixture::default().actions(src, &refs)).unwrap();
    assert_eq!(
        v.references.as_deref(),
        Some("<a@x> <b@y> <1234@desert.example.org>")
    );

    let period = |args: &str| {
        let src = format!("require [\"vacation\", \"vacation-seconds\"]; vacation {args} \"x\";");
        reply(&actions(&src)).unwrap().period_seconds
    };
    assert_eq!(period(":days 0"), 86400);
    assert_eq!(period(":days 1000"), 30 * 86400);
    assert_eq!(period(":seconds 0"), 0);
    assert_eq!(period(":seconds 30"), 3600);
    assert_eq!(period(":seconds 7200"), 7200);
    assert_eq!(period(":seconds 99999999"), 30 * 86400);
    let e = compile_err("require \"vacation\"; vacation :seconds 5 \"x\";");
    assert_eq!(
        (e.column, e.message.as_str()),
        (30, "missing require \"vacation-seconds\"")
    );
}

#[test]
fn only_one_reply_per_run() {
    let f = Fixture::default();
    let out = f.run(&[RFC5230_EXAMPLE, RFC5230_EXAMPLE], MSG);
    assert_eq!(out.actions.len(), 2);
}

fn suppressed(f: &Fixture, msg: &str) -> bool {
    let acts = f.actions(RFC5230_EXAMPLE, msg);
    assert_eq!(acts.last(), Some(&keep()));
    reply(&acts).is_none()
}

#[test]
fn suppressed_for_automatic_senders() {
    let mut f = Fixture::default();
    assert!(!suppressed(&f, MSG));
    for sender in [
        "",
        "MAILER-DAEMON@example.org",
        "listserv@example.org",
        "Majordomo@example.org",
        "owner-sieve@example.org",
        "sieve-REQUEST@example.org",
        "roadrunner@acme.example.com",
    ] {
        f.envelope.from = sender.into();
        assert!(suppressed(&f, MSG), "sender {sender:?}");
    }
}

#[test]
fn suppressed_for_automatic_messages() {
    let f = Fixture::default();
    for header in [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated; owner-email=\"x@y\"",
        "Precedence: bulk",
        "Precedence: LIST",
        "Precedence: junk",
        "List-Id: <sieve.example.org>",
        "List-Unsubscribe: <mailto:leave@example.org>",
        "List-Post: <mailto:post@example.org>",
    ] {
        assert!(suppressed(&f, &with_header(header)), "{header}");
    }
    assert!(!suppressed(&f, &with_header("Auto-Submitted: no")));
    assert!(!suppressed(&f, &with_header("Precedence: first-class")));
}

#[test]
fn suppressed_unless_addressed_to_the_user() {
    let mut f = Fixture::default();
    let not_us = MSG.replace(
        "To: roadrunner@acme.example.com",
        "To: other@acme.example.com",
    );
    assert!(suppressed(&f, &not_us));
    // Envelope recipient counts…
    f.envelope.to = "other@acme.example.com".into();
    assert!(!suppressed(&f, &not_us));
    // …and so do Cc members, subaddresses and :addresses.
    let f = Fixture::default();
    let cc = not_us.replace("someone+lists@example.net", "roadrunner+x@acme.example.com");
    assert!(!suppressed(&f, &cc));
    let src = "require \"vacation\"; vacation :addresses \"other@acme.example.com\" \"x\";";
    assert!(reply(&f.actions(src, &not_us)).is_some());
    let mut f = Fixture {
        user_addresses: vec!["b@friends.example".into()],
        ..Fixture::default()
    };
    f.envelope.to = "nobody@x.example".into();
    assert!(!suppressed(&f, &not_us));
}

#[test]
fn vacation_with_reject_is_an_error() {
    let out = Fixture::default().run(
        &["require [\"vacation\", \"reject\"]; vacation \"x\"; reject \"y\";"],
        MSG,
    );
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.is_some());
}
