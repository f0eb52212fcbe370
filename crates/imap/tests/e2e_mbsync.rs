//! mbsync (isync) against a live Wharf IMAP service: a full two-way sync of 200 varied messages
//! (multipart, attachments, RFC 2047/2231 names, 8-bit bodies, nested messages), flags changed
//! on both sides and new mail on both sides, then a sync that transfers nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use wharf_imap::ImapConfig;
use wharf_store::{FlagOp, Flags};

fn varied(i: usize) -> String {
    let head = format!(
        "From: =?UTF-8?B?{}?= <s{i}@example.org>\r\nTo: alice@example.test\r\nMessage-ID: <sync{i}@example.org>\r\nDate: Mon, 3 Apr 2023 10:{:02}:00 +0200\r\nMIME-Version: 1.0\r\n",
        "w4lsdmFyZQ==",
        i % 60
    );
    match i % 4 {
        0 => format!(
            "{head}Subject: =?ISO-8859-1?Q?Gr=FC=DFe_{i}?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, Nachricht {i}.\r\n"
        ),
        1 => format!(
            "{head}Subject: alternative {i}\r\nContent-Type: multipart/alternative; boundary=\"alt{i}\"\r\n\r\n--alt{i}\r\nContent-Type: text/plain\r\n\r\nplain {i}\r\n--alt{i}\r\nContent-Type: text/html\r\n\r\n<p>html {i}</p>\r\n--alt{i}--\r\n"
        ),
        2 => format!(
            "{head}Subject: attachment {i}\r\nContent-Type: multipart/mixed; boundary=mix\r\n\r\n--mix\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--mix\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9{i}.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n--mix--\r\n"
        ),
        _ => format!(
            "{head}Subject: forwarded {i}\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@example.org\r\nSubject: inner {i}\r\n\r\ninner body {i}\r\n"
        ),
    }
}

fn message_index(raw: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(raw);
    let start = text.find("<sync")? + 5;
    let end = start + text[start..].find('@')?;
    text[start..end].parse().ok()
}

/// Local maildir messages: message index → (path, maildir flags).
fn local_messages(maildir: &Path) -> HashMap<usize, (PathBuf, String)> {
    let mut out = HashMap::new();
    for sub in ["cur", "new"] {
        let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let flags = name.split(":2,").nth(1).unwrap_or("").to_string();
            let raw = std::fs::read(&p).unwrap();
            if let Some(i) = message_index(&raw) {
                out.insert(i, (p, flags));
            }
        }
    }
    out
}

fn set_local_flags(path: &Path, flags: &str) {
    let dir = path.parent().unwrap().parent().unwrap().join("cur");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split(":2,").next().unwrap();
    let mut f: Vec<char> = flags.chars().collect();
    f.sort();
    f.dedup();
    let new = dir.join(format!("{base}:2,{}", f.into_iter().collect::<String>()));
    std::fs::rename(path, new).unwrap();
}

fn mbsync(config: &Path) -> String {
    let out = Command::new("mbsync")
        .args(["-c", config.to_str().unwrap(), "-a", "-V"])
        .output()
        .expect("mbsync (Debian package isync) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_two_way_sync_of_200_messages() {
    let env = sql_env().await;
    let account = env.directory.account(USER).await.unwrap().unwrap();
    let inbox = env
        .store
        .get_mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    for i in 0..200 {
        let flags = match i % 5 {
            0 => Flags::SEEN,
            1 => Flags::SEEN | Flags::FLAGGED,
            2 => Flags::ANSWERED | Flags::SEEN,
            _ => Flags::empty(),
        };
        env.store
            .append(
                inbox.id,
                Bytes::from(varied(i)),
                flags,
                &[],
                1_680_000_000 + i as i64,
            )
            .await
            .unwrap();
    }
    let (server, _plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let local = env.dir.path().join("maildir");
    std::fs::create_dir_all(&local).unwrap();
    let config = env.dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount wharf\nHost 127.0.0.1\nPort {}\nUser {USER}\nPass \"{PASS}\"\nSSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore remote\nAccount wharf\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSync All\nSyncState *\n",
            tls.port(),
            local.display(),
            local.display()
        ),
    )
    .unwrap();
    let cfg2 = config.clone();
    tokio::task::spawn_blocking(move || mbsync(&cfg2))
        .await
        .unwrap();
    let maildir = local.join("INBOX");
    let msgs = local_messages(&maildir);
    assert_eq!(msgs.len(), 200, "every message pulled");
    // byte-exact copies
    let index = env.store.mailbox_index(inbox.id).await.unwrap();
    for e in &index {
        let raw = env.store.message_raw(e.message_id).await.unwrap();
        let i = message_index(&raw).unwrap();
        // mbsync stores LF line endings and adds its X-TUID header: compare modulo those.
        let local = String::from_utf8(std::fs::read(&msgs[&i].0).unwrap()).unwrap();
        let local: String = local
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("X-TUID: "))
            .collect();
        let remote = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        assert_eq!(local, remote, "message {i}");
        assert_eq!(
            msgs[&i].1.contains('S'),
            e.flags.contains(Flags::SEEN),
            "message {i}"
        );
        assert_eq!(
            msgs[&i].1.contains('F'),
            e.flags.contains(Flags::FLAGGED),
            "message {i}"
        );
    }
    // flags changed on both sides, new mail on both sides
    for i in 3..13 {
        let (p, f) = &msgs[&i];
        set_local_flags(p, &format!("{f}FS"));
    }
    let uid_of: HashMap<usize, u32> = {
        let mut m = HashMap::new();
        for e in &index {
            let raw = env.store.message_raw(e.message_id).await.unwrap();
            m.insert(message_index(&raw).unwrap(), e.uid);
        }
        m
    };
    let server_side: Vec<u32> = (100..110).map(|i| uid_of[&i]).collect();
    env.store
        .store_flags(
            inbox.id,
            &server_side,
            FlagOp::Add,
            Flags::ANSWERED | Flags::FLAGGED,
            &[],
            None,
        )
        .await
        .unwrap();
    env.store
        .append(
            inbox.id,
            Bytes::from(varied(200)),
            Flags::empty(),
            &[],
            1_690_000_000,
        )
        .await
        .unwrap();
    std::fs::write(
        maildir.join("new").join("1700000000.local1.test"),
        varied(201),
    )
    .unwrap();
    let cfg2 = config.clone();
    tokio::task::spawn_blocking(move || mbsync(&cfg2))
        .await
        .unwrap();
    let msgs = local_messages(&maildir);
    assert_eq!(msgs.len(), 202);
    let index = env.store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 202, "the local message was pushed");
    for e in &index {
        let raw = env.store.message_raw(e.message_id).await.unwrap();
        let i = message_index(&raw).unwrap();
        if (3..13).contains(&i) {
            assert!(
                e.flags.contains(Flags::FLAGGED | Flags::SEEN),
                "local flags pushed: {i}"
            );
        }
        if (100..110).contains(&i) {
            assert!(
                msgs[&i].1.contains('F') && msgs[&i].1.contains('R'),
                "server flags pulled: {i} {:?}",
                msgs[&i]
            );
        }
    }
    // a third sync transfers nothing
    let before = env.store.mailbox_status(inbox.id).await.unwrap();
    let mut listing: Vec<String> = msgs
        .values()
        .map(|(p, _)| p.display().to_string())
        .collect();
    listing.sort();
    let cfg2 = config.clone();
    let out = tokio::task::spawn_blocking(move || mbsync(&cfg2))
        .await
        .unwrap();
    let after = env.store.mailbox_status(inbox.id).await.unwrap();
    assert_eq!(before, after, "nothing changed on the server:\n{out}");
    let mut listing2: Vec<String> = local_messages(&maildir)
        .values()
        .map(|(p, _)| p.display().to_string())
        .collect();
    listing2.sort();
    assert_eq!(listing, listing2, "nothing changed locally:\n{out}");
    server.shutdown(Duration::from_secs(2)).await;
}
