//! Transcripts of the wire framing: both literal forms, literals in every position, oversized
//! literals (read and dropped, never kept; absurd ones close), over-long lines, unknown
//! commands, syntax errors, the error limit, pipelined commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_managesieve::{ManageSieveConfig, Next};

#[tokio::test]
async fn both_literal_forms_everywhere() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.raw(b"PUTSCRIPT {1}\r\na {5}\r\nkeep;\r\n").await,
        "OK \"Script stored\"\r\n"
    );
    assert_eq!(
        t.raw(b"RENAMESCRIPT {1+}\r\na {1+}\r\nb\r\n").await,
        "OK \"Script renamed\"\r\n"
    );
    assert_eq!(
        t.raw(b"SETACTIVE {1+}\r\nb\r\n").await,
        "OK \"Script activated\"\r\n"
    );
    assert_eq!(
        t.raw(b"HAVESPACE {1+}\r\nb 5\r\n").await,
        "OK \"Putscript would succeed\"\r\n"
    );
    assert_eq!(
        t.raw(b"GETSCRIPT {1}\r\nb\r\n").await,
        "{5}\r\nkeep;\r\nOK \"Getscript completed\"\r\n"
    );
    // An empty literal deactivates like "".
    assert_eq!(
        t.raw(b"SETACTIVE {0+}\r\n\r\n").await,
        "OK \"All scripts deactivated\"\r\n"
    );
    assert_eq!(
        t.raw(b"DELETESCRIPT {1+}\r\nb\r\n").await,
        "OK \"Script deleted\"\r\n"
    );
}

#[tokio::test]
async fn a_literal_may_hold_anything_that_looks_like_syntax() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    let script = "# {12+}\r\n\"LOGOUT\r\nLOGOUT\r\n{3}\r\n";
    assert_eq!(t.put("tricky", script).await, "OK \"Script stored\"\r\n");
    assert_eq!(mem.script(ALICE, "tricky").unwrap(), script);
    assert!(!t.closed);
}

#[tokio::test]
async fn literals_arrive_in_pieces() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(t.raw(b"PUTSCRIPT \"a\" {10+}\r\nkee").await, "");
    assert_eq!(t.next, Next::ReadLiteral(10));
    assert_eq!(t.raw(b"p; # x").await, "");
    assert_eq!(t.raw(b"y\r\n").await, "OK \"Script stored\"\r\n");
    assert_eq!(mem.script(ALICE, "a").unwrap(), "keep; # xy");
}

#[tokio::test]
async fn oversized_script_literal_is_dropped_with_maxsize() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_script_size: 100,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    t.login("alice@example.org").await;
    let big = "#".repeat(101);
    assert_eq!(
        t.raw(format!("PUTSCRIPT \"a\" {{101+}}\r\n{big}\r\n").as_bytes())
            .await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 100 octets\"\r\n"
    );
    assert_eq!(t.discarded, 101);
    assert!(mem.script(ALICE, "a").is_none());
    assert_eq!(
        t.raw(format!("CHECKSCRIPT {{101}}\r\n{big}\r\n").as_bytes())
            .await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 100 octets\"\r\n"
    );
    // The whole command is dropped, literals after the oversized one included.
    assert_eq!(
        t.raw(format!("PUTSCRIPT {{101+}}\r\n{big} {{3+}}\r\nabc\r\n").as_bytes())
            .await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 100 octets\"\r\n"
    );
    assert_eq!(t.discarded, 101 * 3 + 3);
    // Not an error: the session goes on, and the exact bound is fine.
    let fits = "#".repeat(100);
    assert_eq!(t.put("a", &fits).await, "OK \"Script stored\"\r\n");
    assert_eq!(t.session.errors(), 0);
}

#[tokio::test]
async fn absurd_literal_closes_the_connection() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.raw(b"PUTSCRIPT \"a\" {99999999999999+}\r\n").await,
        "BYE (QUOTA/MAXSIZE) \"Literal of 99999999999999 octets refused, closing connection\"\r\n"
    );
    assert!(t.closed);
}

#[tokio::test]
async fn oversized_literal_elsewhere_is_an_error() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_script_size: 100,
        max_sasl_size: 50,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    // SASL initial response too long.
    assert_eq!(
        t.raw(format!("AUTHENTICATE \"PLAIN\" {{51+}}\r\n{}\r\n", "A".repeat(51)).as_bytes())
            .await,
        "NO \"Literal too large\"\r\n"
    );
    // SASL continuation too long: the exchange is cancelled.
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    assert_eq!(
        t.raw(format!("{{51+}}\r\n{}\r\n", "A".repeat(51)).as_bytes())
            .await,
        "NO \"SASL response too long, authentication cancelled\"\r\n"
    );
    t.login("alice@example.org").await;
    assert_eq!(
        t.raw(format!("GETSCRIPT {{101+}}\r\n{}\r\n", "n".repeat(101)).as_bytes())
            .await,
        "NO \"Literal too large\"\r\n"
    );
    assert_eq!(t.session.errors(), 3);
}

#[tokio::test]
async fn before_login_only_small_literals_are_read() {
    let mem = Mem::new();
    let mut t = Transcript::with(&mem, config(), loopback());
    // A script-sized literal before login is read and dropped, never kept.
    assert_eq!(
        t.raw(format!("PUTSCRIPT \"a\" {{2000+}}\r\n{}\r\n", "k".repeat(2000)).as_bytes())
            .await,
        "NO \"Literal too large\"\r\n"
    );
    assert!(!t.closed);
    // Once logged in, the same command is judged by its content.
    t.login("alice@example.org").await;
    let script = format!("#{}\r\nkeep;\r\n", "k".repeat(1998));
    let r = t
        .raw(format!("PUTSCRIPT \"a\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes())
        .await;
    assert!(r.starts_with("OK"), "{r}");
}

#[tokio::test]
async fn too_many_literals() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.raw(b"NOOP {1+}\r\na{1+}\r\nb{1+}\r\nc{1+}\r\nd{1+}\r\ne\r\n")
            .await,
        "NO \"Too many literals\"\r\n"
    );
}

#[tokio::test]
async fn long_lines_are_refused() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_line: 100,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    t.login("alice@example.org").await;
    assert_eq!(
        t.send(&format!("GETSCRIPT \"{}\"", "x".repeat(100))).await,
        "NO \"Line too long\"\r\n"
    );
    // Mid-command: the part collected so far is dropped too.
    assert_eq!(
        t.raw(format!("PUTSCRIPT {{1+}}\r\na{}\r\n", " ".repeat(120)).as_bytes())
            .await,
        "NO \"Line too long\"\r\n"
    );
    assert_eq!(t.send("NOOP").await, "OK \"Done\"\r\n");
    // During AUTHENTICATE: cancelled.
    let mut t = Transcript::with(
        &mem,
        ManageSieveConfig {
            max_line: 100,
            ..config()
        },
        loopback(),
    );
    assert_eq!(t.send("AUTHENTICATE \"PLAIN\"").await, "\"\"\r\n");
    assert_eq!(
        t.send(&format!("\"{}\"", "A".repeat(120))).await,
        "NO \"Line too long, authentication cancelled\"\r\n"
    );
    assert_eq!(t.send("LISTSCRIPTS").await, "NO \"Authenticate first\"\r\n");
}

#[tokio::test]
async fn unknown_commands_and_syntax_errors() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_errors: 20,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    t.login("alice@example.org").await;
    assert_eq!(t.send("XYZZY").await, "NO \"Unknown command\"\r\n");
    assert_eq!(t.send("").await, "NO \"Unknown command\"\r\n");
    assert_eq!(t.send("LOGIN a b").await, "NO \"Unknown command\"\r\n");
    assert_eq!(t.send("NOOP2").await, "NO \"Unknown command\"\r\n");
    assert_eq!(
        t.send("LOGOUT now").await,
        "NO \"this command takes no arguments\"\r\n"
    );
    assert_eq!(
        t.send("GETSCRIPT main").await,
        "NO \"usage: GETSCRIPT name\"\r\n"
    );
    assert_eq!(
        t.send("GETSCRIPT \"main").await,
        "NO \"unterminated quoted string\"\r\n"
    );
    assert_eq!(
        t.send("GETSCRIPT \"a\\b\"").await,
        "NO \"invalid escape in quoted string (only \\\\\\\" and \\\\\\\\)\"\r\n"
    );
    assert_eq!(
        t.send("PUTSCRIPT \"a\"").await,
        "NO \"usage: PUTSCRIPT name script\"\r\n"
    );
    assert_eq!(
        t.send("HAVESPACE \"a\" -1").await,
        "NO \"usage: HAVESPACE name size\"\r\n"
    );
    assert_eq!(
        t.raw(b"GETSCRIPT \"a\0\"\r\n").await,
        "NO \"quoted strings cannot hold CR, LF or NUL: use a literal\"\r\n"
    );
    assert_eq!(t.session.errors(), 11);
}

#[tokio::test]
async fn too_many_errors_say_bye() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_errors: 3,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    assert_eq!(t.send("FOO").await, "NO \"Unknown command\"\r\n");
    assert_eq!(t.send("BAR").await, "NO \"Unknown command\"\r\n");
    assert_eq!(
        t.send("BAZ").await,
        "BYE \"Unknown command; too many errors, closing connection\"\r\n"
    );
    assert!(t.closed);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    let r = t
        .raw(b"PUTSCRIPT \"a\" {5+}\r\nkeep;\r\nSETACTIVE \"a\"\r\nLISTSCRIPTS\r\nNOOP \"end\"\r\n")
        .await;
    assert_eq!(
        r,
        "OK \"Script stored\"\r\nOK \"Script activated\"\r\n\"a\" ACTIVE\r\nOK \"Listscripts completed\"\r\nOK (TAG \"end\") \"Done\"\r\n"
    );
}

#[tokio::test]
async fn bare_lf_lines_are_accepted() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.raw(b"PUTSCRIPT \"a\" {5+}\nkeep;\nGETSCRIPT \"a\"\n")
            .await,
        "OK \"Script stored\"\r\n{5}\r\nkeep;\r\nOK \"Getscript completed\"\r\n"
    );
}
