//! Transcripts of the authenticated state: PUTSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT,
//! DELETESCRIPT, RENAMESCRIPT, CHECKSCRIPT, HAVESPACE, with every response code (QUOTA,
//! QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE, TRYLATER, ACTIVE, NONEXISTENT, ALREADYEXISTS, WARNINGS)
//! and script name rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_managesieve::{ManageSieveConfig, ScriptQuota};

const SCRIPT: &str = "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  fileinto \"X\";\r\n}\r\n";

#[tokio::test]
async fn put_list_activate_get() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "OK \"Listscripts completed\"\r\n"
    );
    assert_eq!(t.put("main", SCRIPT).await, "OK \"Script stored\"\r\n");
    assert_eq!(mem.script(ALICE, "main").unwrap(), SCRIPT);
    // Quoted script, synchronising literal for the name.
    assert_eq!(
        t.raw(b"PUTSCRIPT {5}\r\nother \"keep;\"\r\n").await,
        "OK \"Script stored\"\r\n"
    );
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "\"main\"\r\n\"other\"\r\nOK \"Listscripts completed\"\r\n"
    );
    assert_eq!(
        t.send("SETACTIVE \"main\"").await,
        "OK \"Script activated\"\r\n"
    );
    assert_eq!(mem.active(ALICE).as_deref(), Some("main"));
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "\"main\" ACTIVE\r\n\"other\"\r\nOK \"Listscripts completed\"\r\n"
    );
    assert_eq!(
        t.send("GETSCRIPT \"main\"").await,
        format!(
            "{{{}}}\r\n{SCRIPT}\r\nOK \"Getscript completed\"\r\n",
            SCRIPT.len()
        )
    );
    // PUTSCRIPT over an existing script replaces its text.
    assert_eq!(t.put("main", "keep;").await, "OK \"Script stored\"\r\n");
    assert_eq!(
        t.send("GETSCRIPT \"main\"").await,
        "{5}\r\nkeep;\r\nOK \"Getscript completed\"\r\n"
    );
    assert_eq!(
        t.send("SETACTIVE \"\"").await,
        "OK \"All scripts deactivated\"\r\n"
    );
    assert_eq!(mem.active(ALICE), None);
    // Bob sees none of alice's scripts.
    let mut b = Transcript::new(&mem);
    b.login("bob@example.org").await;
    assert_eq!(
        b.send("LISTSCRIPTS").await,
        "OK \"Listscripts completed\"\r\n"
    );
    assert_eq!(
        b.send("GETSCRIPT \"main\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
}

#[tokio::test]
async fn names_with_quotes_and_utf8_round_trip() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.send("PUTSCRIPT \"vacances \\\"\u{e9}t\u{e9}\\\" \\\\ 2026\" \"keep;\"")
            .await,
        "OK \"Script stored\"\r\n"
    );
    let name = "vacances \"\u{e9}t\u{e9}\" \\ 2026";
    assert!(mem.script(ALICE, name).is_some());
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "\"vacances \\\"\u{e9}t\u{e9}\\\" \\\\ 2026\"\r\nOK \"Listscripts completed\"\r\n"
    );
}

#[tokio::test]
async fn invalid_scripts_answer_line_and_column() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    let bad = "keep;\r\nif true {\r\n  bad;\r\n}\r\n";
    assert_eq!(
        t.put("broken", bad).await,
        "NO \"line 3, column 3: unknown command \\\"bad\\\"\"\r\n"
    );
    assert!(mem.script(ALICE, "broken").is_none());
    assert_eq!(
        t.raw(format!("CHECKSCRIPT {{{}+}}\r\n{bad}\r\n", bad.len()).as_bytes())
            .await,
        "NO \"line 3, column 3: unknown command \\\"bad\\\"\"\r\n"
    );
    assert_eq!(
        t.send("CHECKSCRIPT \"keep;\"").await,
        "OK \"Script is valid\"\r\n"
    );
    // Not UTF-8: refused with where.
    assert_eq!(
        t.raw(b"CHECKSCRIPT {9+}\r\nkeep;\r\nx\xff\r\n").await,
        "NO \"line 2, column 2: script is not valid UTF-8\"\r\n"
    );
    assert_eq!(
        t.raw(b"PUTSCRIPT \"u\" {9+}\r\nkeep;\r\nx\xff\r\n").await,
        "NO \"line 2, column 2: script is not valid UTF-8\"\r\n"
    );
}

#[tokio::test]
async fn warnings_are_announced() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.put("w", "# warn me\r\nkeep;").await,
        "OK (WARNINGS) \"line 1, column 1: something to warn about\"\r\n"
    );
    assert!(mem.script(ALICE, "w").is_some());
    assert_eq!(
        t.send("CHECKSCRIPT \"# warn\"").await,
        "OK (WARNINGS) \"line 1, column 1: something to warn about\"\r\n"
    );
}

#[tokio::test]
async fn delete_refuses_the_active_script() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    t.put("a", "keep;").await;
    t.put("b", "keep;").await;
    t.send("SETACTIVE \"a\"").await;
    assert_eq!(
        t.send("DELETESCRIPT \"a\"").await,
        "NO (ACTIVE) \"The active script cannot be deleted: deactivate it first\"\r\n"
    );
    assert_eq!(
        t.send("DELETESCRIPT \"b\"").await,
        "OK \"Script deleted\"\r\n"
    );
    assert_eq!(
        t.send("DELETESCRIPT \"b\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    t.send("SETACTIVE \"\"").await;
    assert_eq!(
        t.send("DELETESCRIPT \"a\"").await,
        "OK \"Script deleted\"\r\n"
    );
    assert!(mem.script(ALICE, "a").is_none());
}

#[tokio::test]
async fn rename_keeps_active_and_reports_conflicts() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    t.put("a", "keep;").await;
    t.put("b", "discard;").await;
    t.send("SETACTIVE \"a\"").await;
    assert_eq!(
        t.send("RENAMESCRIPT \"a\" \"b\"").await,
        "NO (ALREADYEXISTS) \"A script with the new name already exists\"\r\n"
    );
    assert_eq!(
        t.send("RENAMESCRIPT \"zz\" \"c\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    assert_eq!(
        t.send("RENAMESCRIPT \"a\" \"c\"").await,
        "OK \"Script renamed\"\r\n"
    );
    assert_eq!(mem.active(ALICE).as_deref(), Some("c"));
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "\"b\"\r\n\"c\" ACTIVE\r\nOK \"Listscripts completed\"\r\n"
    );
}

#[tokio::test]
async fn setactive_and_getscript_of_missing_scripts() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.send("SETACTIVE \"nope\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    assert_eq!(
        t.send("GETSCRIPT \"nope\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
}

#[tokio::test]
async fn bad_names_are_refused() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    let long = "n".repeat(129);
    for (cmd, why) in [
        (
            "PUTSCRIPT \"\" \"keep;\"".to_string(),
            "script name is empty",
        ),
        (
            "PUTSCRIPT \"a\tb\" \"keep;\"".to_string(),
            "script name contains a control character",
        ),
        (
            format!("PUTSCRIPT \"{long}\" \"keep;\""),
            "script name longer than 128 characters",
        ),
        (
            "GETSCRIPT \"a\u{85}\"".to_string(),
            "script name contains a control character",
        ),
        (
            "RENAMESCRIPT \"a\" \"\u{2028}\"".to_string(),
            "script name contains a control character",
        ),
        ("HAVESPACE \"\" 10".to_string(), "script name is empty"),
    ] {
        assert_eq!(
            t.send(&cmd).await,
            format!("NO \"Invalid script name: {why}\"\r\n"),
            "{cmd}"
        );
    }
    // A name with CR LF can only come as a literal; a NUL or invalid UTF-8 likewise.
    assert_eq!(
        t.raw(b"PUTSCRIPT {4+}\r\na\r\nb \"keep;\"\r\n").await,
        "NO \"Invalid script name: script name contains a control character\"\r\n"
    );
    assert_eq!(
        t.raw(b"DELETESCRIPT {2+}\r\n\xff\xfe\r\n").await,
        "NO \"Invalid script name: script name is not valid UTF-8\"\r\n"
    );
    let ok = "n".repeat(128);
    assert_eq!(
        t.send(&format!("PUTSCRIPT \"{ok}\" \"keep;\"")).await,
        "OK \"Script stored\"\r\n"
    );
    assert_eq!(mem.with(|s| s.scripts[&ALICE].len()), 1);
}

#[tokio::test]
async fn havespace_and_quotas() {
    let mem = Mem::new();
    let cfg = ManageSieveConfig {
        max_scripts: 2,
        max_script_size: 100,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback());
    t.login("alice@example.org").await;
    assert_eq!(
        t.send("HAVESPACE \"a\" 100").await,
        "OK \"Putscript would succeed\"\r\n"
    );
    assert_eq!(
        t.send("HAVESPACE \"a\" 101").await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 100 octets\"\r\n"
    );
    t.put("a", "keep;").await;
    t.put("b", "keep;").await;
    assert_eq!(
        t.send("HAVESPACE \"c\" 10").await,
        "NO (QUOTA/MAXSCRIPTS) \"At most 2 scripts per account\"\r\n"
    );
    // Replacing an existing one still fits.
    assert_eq!(
        t.send("HAVESPACE \"b\" 10").await,
        "OK \"Putscript would succeed\"\r\n"
    );
    assert_eq!(
        t.put("c", "keep;").await,
        "NO (QUOTA/MAXSCRIPTS) \"At most 2 scripts per account\"\r\n"
    );
    assert_eq!(t.put("b", "discard;").await, "OK \"Script stored\"\r\n");
    // The port's own quota applies when smaller.
    mem.with(|s| {
        s.quota = Some(ScriptQuota {
            max_scripts: 10,
            max_script_size: 6,
        })
    });
    assert_eq!(
        t.put("b", "discard;").await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 6 octets\"\r\n"
    );
    assert_eq!(
        t.send("HAVESPACE \"x\" 4294967296").await,
        "NO \"number larger than 4294967295\"\r\n"
    );
}

#[tokio::test]
async fn store_limits_and_failures() {
    let mem = Mem::new();
    let mut t = alice(&mem).await;
    mem.with(|s| s.store_limit = 1);
    t.put("a", "keep;").await;
    assert_eq!(
        t.put("b", "keep;").await,
        "NO (QUOTA/MAXSCRIPTS) \"Limit reached: too many sieve scripts\"\r\n"
    );
    mem.with(|s| s.over_quota = true);
    assert_eq!(
        t.put("a", "keep;").await,
        "NO (QUOTA) \"Storage quota exceeded\"\r\n"
    );
    mem.with(|s| {
        s.over_quota = false;
        s.fail_store = true;
    });
    let trylater = "NO (TRYLATER) \"Script storage temporarily unavailable\"\r\n";
    for cmd in [
        "LISTSCRIPTS",
        "GETSCRIPT \"a\"",
        "SETACTIVE \"a\"",
        "SETACTIVE \"\"",
        "DELETESCRIPT \"a\"",
        "RENAMESCRIPT \"a\" \"b\"",
        "HAVESPACE \"a\" 1",
        "PUTSCRIPT \"a\" \"keep;\"",
    ] {
        assert_eq!(t.send(cmd).await, trylater, "{cmd}");
    }
    // Store failures are not the client's errors: the session goes on.
    assert!(!t.closed);
    mem.with(|s| s.fail_store = false);
    assert_eq!(
        t.send("LISTSCRIPTS").await,
        "\"a\"\r\nOK \"Listscripts completed\"\r\n"
    );
}

#[tokio::test]
async fn getscript_of_text_with_crlf_and_non_ascii() {
    let mem = Mem::new();
    mem.add(ALICE, "x", "# \u{e9}t\u{e9}\r\nkeep;\r\n");
    let mut t = alice(&mem).await;
    let text = "# \u{e9}t\u{e9}\r\nkeep;\r\n";
    assert_eq!(
        t.send("GETSCRIPT \"x\"").await,
        format!(
            "{{{}}}\r\n{text}\r\nOK \"Getscript completed\"\r\n",
            text.len()
        )
    );
}
