//! METADATA and METADATA-SERVER (RFC 5464): GETMETADATA with MAXSIZE and DEPTH, SETMETADATA
//! with quoted, literal and literal8 values and NIL, entry-name syntax (BAD), the limits
//! (`NO [METADATA MAXSIZE n]` as a literal is announced, `NO [METADATA TOOMANY]`), the read-only
//! server `/shared/admin`, and entries following their mailbox through RENAME and DELETE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common;
use common::*;
use wharf_imap::ImapConfig;

async fn login_with(env: &impl HasBackend, cfg: ImapConfig) -> T {
    let mut t = T::new(env, true, cfg);
    let r = t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.contains("a0 OK"), "{r}");
    t
}

#[tokio::test]
async fn set_and_get_mailbox_and_server_entries() {
    let env = env().await;
    let mut t = T::login(&env).await;
    assert!(
        t.cmd("c CAPABILITY")
            .await
            .contains(" METADATA METADATA-SERVER")
    );
    assert_eq!(
        t.cmd("a SETMETADATA INBOX (/private/comment \"My own comment\")")
            .await,
        "a OK SETMETADATA completed\r\n"
    );
    assert_eq!(
        t.cmd("b GETMETADATA INBOX /private/comment").await,
        "* METADATA INBOX (/private/comment \"My own comment\")\r\nb OK GETMETADATA completed\r\n"
    );
    // Names compare case-insensitively; an absent entry reads NIL; several entries at once.
    assert_eq!(
        t.cmd("c GETMETADATA inbox (/PRIVATE/Comment /shared/comment)")
            .await,
        "* METADATA INBOX (/private/comment \"My own comment\" /shared/comment NIL)\r\n\
         c OK GETMETADATA completed\r\n"
    );
    // The server's entries are apart from INBOX's.
    assert!(
        t.cmd("d SETMETADATA \"\" (/shared/comment \"Server note\" /private/vendor/x/y \"1\")")
            .await
            .starts_with("d OK")
    );
    assert_eq!(
        t.cmd("e GETMETADATA \"\" (/shared/comment /private/comment)")
            .await,
        "* METADATA \"\" (/private/comment NIL /shared/comment \"Server note\")\r\n\
         e OK GETMETADATA completed\r\n"
    );
    assert!(
        t.cmd("f GETMETADATA INBOX /shared/comment")
            .await
            .starts_with("* METADATA INBOX (/shared/comment NIL)")
    );
    // NIL removes.
    assert!(
        t.cmd("g SETMETADATA INBOX (/private/comment NIL)")
            .await
            .starts_with("g OK")
    );
    assert!(
        t.cmd("h GETMETADATA INBOX /private/comment")
            .await
            .starts_with("* METADATA INBOX (/private/comment NIL)")
    );
    // Bob sees nothing of alice's, /shared included: entries are per account.
    let mut bob = T::new(&env, true, ImapConfig::default());
    bob.cmd(&format!("a0 LOGIN {USER2} \"{PASS}\"")).await;
    assert!(
        bob.cmd("i GETMETADATA \"\" /shared/comment")
            .await
            .starts_with("* METADATA \"\" (/shared/comment NIL)")
    );
    // Unknown mailbox; not before login.
    assert!(
        t.cmd("j GETMETADATA Nope /private/comment")
            .await
            .starts_with("j NO [NONEXISTENT]")
    );
    assert!(
        t.cmd("k SETMETADATA Nope (/private/comment \"x\")")
            .await
            .starts_with("k NO [NONEXISTENT]")
    );
    let mut anon = T::new(&env, true, ImapConfig::default());
    assert!(
        anon.cmd("l GETMETADATA \"\" /shared/comment")
            .await
            .starts_with("l BAD")
    );
}

#[tokio::test]
async fn depth_and_maxsize() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let r = t
        .cmd(
            "a SETMETADATA INBOX (/private/vendor/a \"0\" /private/vendor/a/b \"1\" \
             /private/vendor/a/b/c \"2\" /private/vendor/ab \"x\" /private/comment \"0123456789\")",
        )
        .await;
    assert!(r.starts_with("a OK"), "{r}");
    assert_eq!(
        t.cmd("b GETMETADATA INBOX /private/vendor/a").await,
        "* METADATA INBOX (/private/vendor/a \"0\")\r\nb OK GETMETADATA completed\r\n"
    );
    assert_eq!(
        t.cmd("c GETMETADATA (DEPTH 1) INBOX /private/vendor/a")
            .await,
        "* METADATA INBOX (/private/vendor/a \"0\" /private/vendor/a/b \"1\")\r\n\
         c OK GETMETADATA completed\r\n"
    );
    // Options after the mailbox, as RFC 5464's examples write them.
    assert_eq!(
        t.cmd("d GETMETADATA INBOX (DEPTH infinity) /private/vendor/a")
            .await,
        "* METADATA INBOX (/private/vendor/a \"0\" /private/vendor/a/b \"1\" \
         /private/vendor/a/b/c \"2\")\r\nd OK GETMETADATA completed\r\n"
    );
    // The whole /private tree, with a value left out for MAXSIZE.
    assert_eq!(
        t.cmd("e GETMETADATA (MAXSIZE 5 DEPTH infinity) INBOX (/private)")
            .await,
        "* METADATA INBOX (/private/vendor/a \"0\" /private/vendor/a/b \"1\" \
         /private/vendor/a/b/c \"2\" /private/vendor/ab \"x\")\r\n\
         e OK [METADATA LONGENTRIES 10] GETMETADATA completed\r\n"
    );
    assert_eq!(
        t.cmd("f GETMETADATA (MAXSIZE 3) INBOX /private/comment")
            .await,
        "f OK [METADATA LONGENTRIES 10] GETMETADATA completed\r\n"
    );
    // Bad options are syntax errors.
    for bad in [
        "g GETMETADATA (DEPTH 2) INBOX /private/comment",
        "g GETMETADATA (MAXSIZE x) INBOX /private/comment",
        "g GETMETADATA (DEPTH 1 DEPTH 1) INBOX /private/comment",
        "g GETMETADATA (FOO) INBOX /private/comment",
        "g GETMETADATA INBOX",
        "g GETMETADATA INBOX ()",
    ] {
        assert!(t.cmd(bad).await.starts_with("g BAD"), "{bad}");
    }
}

#[tokio::test]
async fn literal_and_binary_values() {
    let env = env().await;
    let mut t = T::login(&env).await;
    // A synchronising literal, a non-synchronising one, and a literal8 with NUL.
    let r = t
        .raw(
            b"a SETMETADATA INBOX (/private/a {7}\r\nx\r\ny\"z\\ /private/b {3+}\r\nabc \
              /shared/c ~{4}\r\nq\0\r\n)\r\n",
        )
        .await;
    assert!(r.starts_with("+ Ready"), "{r}");
    assert!(r.ends_with("a OK SETMETADATA completed\r\n"), "{r}");
    assert_eq!(
        t.cmd("b GETMETADATA INBOX (/private/a /private/b /shared/c)")
            .await,
        "* METADATA INBOX (/private/a {7}\r\nx\r\ny\"z\\ /private/b \"abc\" /shared/c ~{4}\r\nq\0\r\n)\r\n\
         b OK GETMETADATA completed\r\n"
    );
    // An empty value is a value.
    t.cmd("c SETMETADATA INBOX (/private/e \"\")").await;
    assert!(
        t.cmd("d GETMETADATA INBOX /private/e")
            .await
            .starts_with("* METADATA INBOX (/private/e \"\")")
    );
}

#[tokio::test]
async fn entry_names_are_checked() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for bad in [
        "/foo",
        "/private/",
        "/private//x",
        "/private/a*",
        "/shared/%",
        "private/x",
        "/privatex",
        "/shared",
    ] {
        let r = t.cmd(&format!("a SETMETADATA INBOX ({bad} \"v\")")).await;
        assert!(r.starts_with("a BAD"), "{bad}: {r}");
        if bad != "/shared" {
            let r = t.cmd(&format!("b GETMETADATA INBOX {bad}")).await;
            assert!(r.starts_with("b BAD"), "{bad}: {r}");
        }
        // Enough good commands between that the BAD streak never closes the session.
        t.cmd("n NOOP").await;
    }
    // A control character inside a literal name.
    let r = t
        .raw(b"c SETMETADATA INBOX ({11}\r\n/private/\x01x \"v\")\r\n")
        .await;
    assert!(r.contains("c BAD"), "{r}");
    // Vendor entries are allowed.
    assert!(
        t.cmd("d SETMETADATA INBOX (/private/vendor/vendor.example/x \"1\")")
            .await
            .starts_with("d OK")
    );
    assert!(
        t.cmd("e GETMETADATA \"\" /shared")
            .await
            .starts_with("* METADATA \"\" (/shared NIL)")
    );
}

#[tokio::test]
async fn limits_answer_maxsize_and_toomany() {
    let env = env().await;
    let cfg = ImapConfig {
        metadata_max_value: 16,
        metadata_max_entries_per_mailbox: 2,
        metadata_max_entries: 3,
        metadata_max_bytes: 1000,
        ..ImapConfig::default()
    };
    let mut t = login_with(&env, cfg).await;
    let long = "x".repeat(17);
    assert_eq!(
        t.cmd(&format!("a SETMETADATA INBOX (/private/x \"{long}\")"))
            .await,
        "a NO [METADATA MAXSIZE 16] Value too large\r\n"
    );
    // A synchronising literal too large: refused before any of it is sent.
    assert_eq!(
        t.raw(b"b SETMETADATA INBOX (/private/x {1073741824}\r\n")
            .await,
        "b NO [METADATA MAXSIZE 16] Value too large\r\n"
    );
    // A non-synchronising one: read away, then refused, and the session goes on.
    let huge = "x".repeat(5000);
    let r = t
        .raw(
            format!("c SETMETADATA INBOX (/private/x {{5000+}}\r\n{huge})\r\nd NOOP\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        r,
        "c NO [METADATA MAXSIZE 16] Value too large\r\nd OK NOOP completed\r\n"
    );
    // One no longer than an entry name may be is received, then refused all the same.
    let r = t
        .raw(format!("c2 SETMETADATA INBOX (/private/x {{17}}\r\n{long})\r\n").as_bytes())
        .await;
    assert_eq!(
        r,
        "+ Ready for literal data\r\nc2 NO [METADATA MAXSIZE 16] Value too large\r\n"
    );
    assert!(
        t.cmd("e GETMETADATA INBOX /private/x")
            .await
            .starts_with("* METADATA INBOX (/private/x NIL)")
    );
    // Two entries per mailbox: a third is refused, all or none.
    assert!(
        t.cmd("f SETMETADATA INBOX (/private/a \"1\" /private/b \"2\")")
            .await
            .starts_with("f OK")
    );
    assert_eq!(
        t.cmd("g SETMETADATA INBOX (/private/c \"3\")").await,
        "g NO [METADATA TOOMANY] Too many entries\r\n"
    );
    // Replacing one, or deleting one to add another in the same command, fits.
    assert!(
        t.cmd("h SETMETADATA INBOX (/private/a \"11\")")
            .await
            .starts_with("h OK")
    );
    assert!(
        t.cmd("i SETMETADATA INBOX (/private/a NIL /private/c \"3\")")
            .await
            .starts_with("i OK")
    );
    // Three per account: the server has room for one.
    assert!(
        t.cmd("j SETMETADATA \"\" (/private/s1 \"1\" /private/s2 \"2\")")
            .await
            .starts_with("j NO [METADATA TOOMANY]")
    );
    assert!(
        t.cmd("k SETMETADATA \"\" (/private/s1 \"1\")")
            .await
            .starts_with("k OK")
    );
    assert_eq!(
        t.cmd("l GETMETADATA \"\" (/private/s2)").await,
        "* METADATA \"\" (/private/s2 NIL)\r\nl OK GETMETADATA completed\r\n"
    );
}

#[tokio::test]
async fn server_admin_is_read_only() {
    let env = env().await;
    let cfg = ImapConfig {
        metadata_admin: Some("mailto:postmaster@example.test".into()),
        ..ImapConfig::default()
    };
    let mut t = login_with(&env, cfg).await;
    assert_eq!(
        t.cmd("a GETMETADATA \"\" (DEPTH 1) /shared").await,
        "* METADATA \"\" (/shared/admin \"mailto:postmaster@example.test\")\r\n\
         a OK GETMETADATA completed\r\n"
    );
    assert!(
        t.cmd("b SETMETADATA \"\" (/shared/Admin \"mailto:me@example.test\")")
            .await
            .starts_with("b NO [NOPERM]")
    );
    // A mailbox's /shared/admin is an ordinary entry.
    assert!(
        t.cmd("c SETMETADATA INBOX (/shared/admin \"x\")")
            .await
            .starts_with("c OK")
    );
}

#[tokio::test]
async fn entries_follow_their_mailbox() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.cmd("a CREATE Work/Sub").await;
    t.cmd("b SETMETADATA Work (/private/comment \"work\")")
        .await;
    t.cmd("c SETMETADATA Work/Sub (/private/comment \"sub\")")
        .await;
    assert!(t.cmd("d RENAME Work Job").await.starts_with("d OK"));
    assert!(
        t.cmd("e GETMETADATA Job /private/comment")
            .await
            .starts_with("* METADATA Job (/private/comment \"work\")")
    );
    assert!(
        t.cmd("f GETMETADATA Job/Sub /private/comment")
            .await
            .starts_with("* METADATA Job/Sub (/private/comment \"sub\")")
    );
    assert!(t.cmd("g DELETE Job/Sub").await.starts_with("g OK"));
    assert!(t.cmd("h CREATE Job/Sub").await.starts_with("h OK"));
    assert!(
        t.cmd("i GETMETADATA Job/Sub /private/comment")
            .await
            .starts_with("* METADATA Job/Sub (/private/comment NIL)")
    );
}

fn read_until_tag(r: &mut BufReader<TcpStream>, tag: &str) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.starts_with(&format!("{tag} ")) {
            return all;
        }
    }
}

/// Over a socket, on the real store: literals with continuation requests, a binary value
/// read back as a literal8, the limit answered before a large literal is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_over_a_socket_on_the_store() {
    let env = sql_env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ImapConfig::default()
    };
    let (server, plain, _tls, _cert) = server(&env, cfg).await;
    let res = tokio::task::spawn_blocking(move || {
        let s = TcpStream::connect(plain).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut greet = String::new();
        r.read_line(&mut greet).unwrap();
        assert!(greet.contains("METADATA METADATA-SERVER") || greet.starts_with("* OK"));
        write!(w, "a LOGIN {USER} \"{PASS}\"\r\n").unwrap();
        assert!(read_until_tag(&mut r, "a").contains("a OK"));
        w.write_all(b"b SETMETADATA INBOX (/private/bin ~{3}\r\n")
            .unwrap();
        let mut cont = String::new();
        r.read_line(&mut cont).unwrap();
        assert!(cont.starts_with("+ "), "{cont}");
        w.write_all(b"\0\x01\x02 /shared/comment \"hello\")\r\n")
            .unwrap();
        let out = read_until_tag(&mut r, "b");
        assert_eq!(out, "b OK SETMETADATA completed\r\n");
        w.write_all(b"c GETMETADATA INBOX (DEPTH infinity) (/private /shared)\r\n")
            .unwrap();
        let mut head = String::new();
        r.read_line(&mut head).unwrap();
        assert_eq!(head, "* METADATA INBOX (/private/bin ~{3}\r\n");
        let mut bin = [0u8; 3];
        r.read_exact(&mut bin).unwrap();
        assert_eq!(&bin, b"\0\x01\x02");
        let rest = read_until_tag(&mut r, "c");
        assert_eq!(
            rest,
            " /shared/comment \"hello\")\r\nc OK GETMETADATA completed\r\n"
        );
        w.write_all(b"d SETMETADATA \"\" (/private/big {999999999}\r\n")
            .unwrap();
        assert_eq!(
            read_until_tag(&mut r, "d"),
            "d NO [METADATA MAXSIZE 65536] Value too large\r\n"
        );
        w.write_all(b"e LOGOUT\r\n").unwrap();
        read_until_tag(&mut r, "e")
    })
    .await
    .unwrap();
    assert!(res.contains("e OK"), "{res}");
    // What the socket stored is in the database.
    let alice = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    let inbox = env
        .store
        .get_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let entries = env
        .store
        .get_metadata(alice.id, Some(inbox.id))
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    server.shutdown(Duration::from_secs(2)).await;
}

/// A real client: Python's imaplib sends the commands raw over implicit TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_metadata() {
    let env = sql_env().await;
    let (server, _plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let args = vec![tls.port().to_string(), cert, USER.into(), PASS.into()];
    python_client("imaplib_metadata.py", args, "imaplib metadata OK").await;
    server.shutdown(Duration::from_secs(2)).await;
}
