//! Mail in over SMTP (smtplib on submission with STARTTLS and on 465, smtplib and swaks on port
//! 25), out over POP3 (poplib on POP3S and with STLS), through the real `wharf` binary: every
//! message arrives byte for byte behind Wharf's Return-Path and Received fields, UIDLs survive a
//! restart, and DELE + QUIT removes the mail.
//!
//! Needs python3 and swaks (Debian package `swaks`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::e2e;

use e2e::{Mail, SENDER, kv};

#[test]
fn twenty_messages_in_over_smtp_out_over_pop3_identical_stable_uidl_then_deleted() {
    let mut mail = Mail::new();
    mail.py("send", &[kv("user", SENDER)]);

    let uidl = mail.work.join("uidl-before-restart");
    let pop3s = mail.port("pop3s");
    mail.py(
        "pop3",
        &[
            kv("port", pop3s),
            kv("mode", "ssl"),
            kv("save_uidl", uidl.display()),
        ],
    );
    let pop3 = mail.port("pop3");
    mail.py(
        "pop3",
        &[
            kv("port", pop3),
            kv("mode", "stls"),
            kv("expect_uidl", uidl.display()),
        ],
    );

    // Same data folder, new process: the same UIDLs, then delete everything.
    mail.stop();
    mail.start();
    let pop3s = mail.port("pop3s");
    mail.py(
        "pop3",
        &[
            kv("port", pop3s),
            kv("mode", "ssl"),
            kv("expect_uidl", uidl.display()),
            kv("dele", "all"),
        ],
    );

    // And after the deletion the INBOX is empty for the admin verbs too.
    let list = mail.env.ok(&["mailbox", "list", e2e::READER]);
    let inbox = list
        .lines()
        .find(|l| l.starts_with("INBOX "))
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(inbox.split_whitespace().nth(2), Some("0"), "{list}");
    mail.stop();
}
