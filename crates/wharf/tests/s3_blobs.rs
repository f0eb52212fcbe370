//! `wharf serve` with its message bodies in S3 (`[store.s3]`, issue 19 item 2) on PostgreSQL,
//! against a private Garage: mail is accepted (250) while the bucket answers, refused with a
//! temporary 451 while Garage is stopped, accepted again once it is back, and every accepted
//! message then reads whole. Needs the `garage` binary (`.ci/run` installs it) and PostgreSQL
//! on 127.0.0.1:5432.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Env, smtp_reply};
use wharf_testkit::{Garage, TempDatabase};

/// One message over SMTP; returns the reply to the final dot.
fn send(port: u16, subject: &str) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(smtp_reply(&mut r).starts_with("220"));
    for (cmd, code) in [
        ("EHLO client.example.org\r\n", "250"),
        ("MAIL FROM:<bob@example.org>\r\n", "250"),
        ("RCPT TO:<alice@example.test>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let got = smtp_reply(&mut r);
        assert!(got.starts_with(code), "{cmd:?}: {got}");
    }
    w.write_all(
        format!(
            "From: <bob@example.org>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n\r\n\
             the body of {subject}\r\n.\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let got = smtp_reply(&mut r);
    let _ = w.write_all(b"QUIT\r\n");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_answers_451_while_s3_is_down_and_250_once_it_is_back() {
    let mut garage = Garage::start_new();
    let db = TempDatabase::create("wharf_s3_e2e");
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\ntls = \"none\"\n\
         [store]\nurl = \"{}\"\n{}",
        db.url(),
        garage.toml("e2e")
    ));
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let port = ready.port("smtp");

    let first = tokio::task::spawn_blocking(move || send(port, "first"))
        .await
        .unwrap();
    assert!(first.starts_with("250"), "{first}");

    garage.stop();
    let started = Instant::now();
    let refused = tokio::task::spawn_blocking(move || send(port, "while down"))
        .await
        .unwrap();
    assert!(refused.starts_with("451 4.3.0"), "{refused}");
    // retry_secs = 2 in the test's [store.s3].
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    garage.start();
    let again = tokio::task::spawn_blocking(move || send(port, "after"))
        .await
        .unwrap();
    assert!(again.starts_with("250"), "{again}");

    // Two messages, both readable: the refused one left nothing behind.
    let store = wharf_store::open(&wharf_store::StoreConfig {
        url: db.url(),
        blob_dir: env.path().join("unused"),
        blob_s3: Some(garage.s3_config("e2e")),
        blob_grace: Duration::from_secs(900),
    })
    .await
    .unwrap();
    let alice = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = store.get_mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let index = store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 2);
    let mut subjects = Vec::new();
    for e in &index {
        let raw = store.message_raw(e.message_id).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(text.contains("the body of "), "{text}");
        subjects.extend(
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .map(str::to_string),
        );
    }
    assert_eq!(subjects, vec!["first".to_string(), "after".to_string()]);
    assert!(
        !env.path().join("unused").exists() && !env.data().join("blobs").exists(),
        "no blob folder with [store.s3]"
    );

    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
}

/// `[store.s3]` checks: a bad bucket name, and S3 next to `blob_dir`, are refused by
/// `wharf config check` with the key named.
#[test]
fn config_check_names_bad_s3_settings() {
    let env = Env::new();
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\n[store.s3]\nbucket = \"Bad_Name\"\n",
    );
    let e = env.fails(&["config", "check"]);
    assert!(e.contains("store.s3.bucket"), "{e}");
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\n[store]\nblob_dir = \"b\"\n[store.s3]\nbucket = \"mail\"\n",
    );
    let e = env.fails(&["config", "check"]);
    assert!(e.contains("blob_dir"), "{e}");
}
