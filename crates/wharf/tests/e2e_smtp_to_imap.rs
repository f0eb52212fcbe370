//! Mail in over SMTP, out over IMAP (imaplib on IMAPS and with STARTTLS) through the real
//! `wharf` binary, and the protocols seeing each other's changes: IDLE wakes on an SMTP
//! delivery, a POP3 deletion is an EXPUNGE for a selected IMAP session, an IMAP expunge is
//! missing for POP3.
//!
//! Needs python3 and swaks (Debian package `swaks`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::e2e;

use e2e::{Mail, SENDER, kv};

#[test]
fn twenty_messages_in_over_smtp_fetched_over_imap_identical_with_flags_and_search() {
    let mut mail = Mail::new();
    mail.py("send", &[kv("user", SENDER)]);
    let imaps = mail.port("imaps");
    mail.py("imap", &[kv("port", imaps), kv("mode", "ssl")]);
    let imap = mail.port("imap");
    mail.py("imap", &[kv("port", imap), kv("mode", "starttls")]);
    mail.stop();
}

#[test]
fn idle_session_sees_an_smtp_delivery_as_exists() {
    let mut mail = Mail::new();
    mail.py("seed", &[kv("n", 2)]);
    let imaps = mail.port("imaps");
    let out = mail.py("idle", &[kv("port", imaps), kv("mode", "ssl")]);
    eprintln!("{out}");
    mail.stop();
}

#[test]
fn pop3_deletion_is_an_imap_expunge_and_imap_expunge_is_gone_for_pop3() {
    let mut mail = Mail::new();
    mail.py("seed", &[kv("n", 6)]);
    // Over implicit TLS first, then the same checks over STARTTLS/STLS.
    mail.py(
        "pop3_dele_seen_by_imap",
        &[
            kv("imap", mail.port("imaps")),
            kv("imap_mode", "ssl"),
            kv("pop3", mail.port("pop3s")),
            kv("pop3_mode", "ssl"),
        ],
    );
    mail.py(
        "imap_expunge_seen_by_pop3",
        &[
            kv("imap", mail.port("imap")),
            kv("imap_mode", "starttls"),
            kv("pop3", mail.port("pop3")),
            kv("pop3_mode", "stls"),
        ],
    );
    mail.stop();
}
