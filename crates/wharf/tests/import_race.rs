//! `wharf import` beside a running `wharf serve` on one embedded store (issue 19 item 1): the
//! import process stores copies of one message while the server appends and expunges that very
//! message in a loop, with no grace period, so the server's collector may remove the blob file
//! the import found present and relied on, unless the database's pins stop it. Every imported
//! copy must read back whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use common::{Env, PASSWORD};

/// Copies imported per round, and rounds.
const COPIES: usize = 2000;
const ROUNDS: usize = 2;

fn message(round: usize) -> Vec<u8> {
    // CRLF, as the store keeps them, so that the import stores these very bytes.
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    format!(
        "From: bob@example.org\r\nTo: alice@example.test\r\nSubject: race {round}\r\n\
         Message-ID: <race-{round}@example.org>\r\n\r\n{filler}\r\n"
    )
    .into_bytes()
}

/// The server's side: APPEND the file to INBOX, flag and expunge it, again and again until the
/// stop file appears; prints how many times.
const EXPUNGER: &str = r#"
import imaplib, ssl, sys, os
port, user, password, path, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
m.login(user, password)
m.select('INBOX')
body = open(path, 'rb').read()
sys.stdout.write('ready\n'); sys.stdout.flush()
cycles = 0
while not os.path.exists(stop):
    typ, data = m.append('INBOX', None, None, body)
    assert typ == 'OK', data
    uid = data[0].decode().split('APPENDUID ')[1].split(' ')[1].rstrip(']')
    assert m.uid('STORE', uid, '+FLAGS.SILENT', r'(\Deleted)')[0] == 'OK'
    assert m.uid('EXPUNGE', uid)[0] == 'OK'
    cycles += 1
m.logout()
sys.stdout.write(f'{cycles}\n')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_beside_the_server_expunging_the_same_bytes_keeps_every_body() {
    let env = Env::new();
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [store]\nblob_grace_secs = 0\n[limits]\nshutdown_timeout = 5\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n",
    );
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let port = ready.port("imaps");

    for round in 0..ROUNDS {
        let maildir = env.path().join(format!("maildir{round}"));
        let plain = env.path().join(format!("message{round}.eml"));
        let stop = env.path().join(format!("stop{round}"));
        std::fs::create_dir_all(maildir.join("cur")).unwrap();
        std::fs::create_dir_all(maildir.join("new")).unwrap();
        for i in 0..COPIES {
            let name = format!("{i:05}.race{round}");
            std::fs::write(maildir.join("new").join(&name), message(round)).unwrap();
        }
        std::fs::write(&plain, message(round)).unwrap();
        let mut expunger = Command::new("python3")
            .args(["-c", EXPUNGER])
            .arg(port.to_string())
            .arg("alice@example.test")
            .arg(PASSWORD)
            .arg(&plain)
            .arg(&stop)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Start the import once the expunger is logged in, so that the two overlap.
        let mut said = std::io::BufReader::new(expunger.stdout.take().unwrap());
        let mut line = String::new();
        said.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the expunger did not log in");
        let target = format!("Imported{round}");
        let out = env.ok(&[
            "import",
            "alice@example.test",
            maildir.to_str().unwrap(),
            "--mailbox",
            &target,
        ]);
        assert!(out.contains(&COPIES.to_string()), "{out}");
        std::fs::write(&stop, "").unwrap();
        line.clear();
        said.read_line(&mut line).unwrap();
        let done = expunger.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "expunger: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        // The import and the expunges overlapped: the server stored and released the blob
        // the import was using, again and again, while it ran.
        let cycles: usize = line.trim().parse().unwrap();
        eprintln!("round {round}: {cycles} expunge cycles beside the import");
        assert!(
            cycles >= 3,
            "only {cycles} expunge cycles ran beside the import"
        );
    }

    // Every imported message reads back whole, through the server's store.
    let store = env.store().await;
    let alice = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let mailbox = store
            .get_mailbox(alice.id, &format!("Imported{round}"))
            .await
            .unwrap()
            .unwrap();
        let index = store.mailbox_index(mailbox.id).await.unwrap();
        assert_eq!(index.len(), COPIES);
        for entry in &index {
            match store.message_raw(entry.message_id).await {
                // The very bytes the server was appending: one blob for both.
                Ok(raw) if raw[..] == message(round)[..] => {}
                other => lost.push(format!("round {round} uid {}: {other:?}", entry.uid)),
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} bodies lost: {:?}",
        lost.len(),
        lost.first()
    );
    let inbox = store.get_mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    assert!(store.mailbox_index(inbox.id).await.unwrap().is_empty());
    drop(store);

    server.sigterm();
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(30))
            .is_some()
    );
}
