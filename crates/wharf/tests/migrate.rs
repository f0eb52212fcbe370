//! `wharf migrate`: a 10,000-message embedded store (imported, then changed over IMAP: flags,
//! a copy into another mailbox, expunges) copied to PostgreSQL and to a new blob folder; the
//! server on the new store shows the same UIDVALIDITY, UIDs, flags and bodies over IMAPS. A
//! second run copies nothing and still verifies (resumable).
//!
//! Needs python3 and PostgreSQL on 127.0.0.1:5432.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use common::{Env, Server};
use wharf_testkit::TempDatabase;

const PASSWORD: &str = "correct horse battery migrate";
const MESSAGES: usize = 10_000;

fn config(store: &str) -> String {
    format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n{store}\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n"
    )
}

/// Runs the IMAP script `action` (`change` or `snapshot`) against the server; its stdout.
fn imap(port: u16, action: &str) -> String {
    let script = r#"
import hashlib, imaplib, json, ssl, sys
port, password, action = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=120)
m.login("alice@example.test", password)
if action == "change":
    m.select("INBOX")
    m.uid("STORE", "1:100", "+FLAGS", "(\\Flagged $Work)")
    m.create("Archive")
    m.uid("COPY", "1:50", "Archive")
    m.uid("STORE", "200:210", "+FLAGS", "(\\Deleted)")
    m.expunge()
    print("changed")
else:
    out = {}
    for box in ("INBOX", "Archive"):
        typ, data = m.select(box, readonly=True)
        uidvalidity = m.response("UIDVALIDITY")[1][0].decode()
        typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        rows = []
        for part in data:
            if isinstance(part, tuple):
                meta = part[0].decode()
                uid = meta.split("UID ")[1].split()[0].rstrip(")")
                flags = sorted(meta.split("FLAGS (")[1].split(")")[0].split())
                rows.append([int(uid), flags, hashlib.sha256(part[1]).hexdigest()])
        rows.sort()
        out[box] = {"uidvalidity": uidvalidity, "rows": rows}
    print(json.dumps(out))
m.logout()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), PASSWORD, action])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imaplib {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve(env: &Env) -> (Server, u16) {
    let mut s = Server::start(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
    );
    let ports = s.wait_ready();
    let port = ports.iter().find(|(n, _)| n == "imaps").unwrap().1;
    (s, port)
}

fn stop(mut s: Server) {
    s.sigterm();
    assert!(s.wait_exit(Duration::from_secs(60)).unwrap().success());
}

#[test]
fn ten_thousand_messages_move_to_postgres_unchanged() {
    let env = Env::new();
    env.write_config(&config(""));
    env.ok(&["domain", "add", "example.test"]);
    let out = env.run_with_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let mut mbox = String::new();
    for i in 0..MESSAGES {
        let status = if i % 3 == 0 { "Status: RO\n" } else { "" };
        let _ = write!(
            mbox,
            "From bob@example.org Tue Nov 14 22:13:20 2023\nFrom: bob@example.org\nSubject: m{i}\n\
             Message-ID: <m{i}@example.org>\n{status}\nbody {i} {}\n\n",
            "x".repeat(i % 200)
        );
    }
    let mbox_path = env.path().join("in.mbox");
    std::fs::write(&mbox_path, mbox).unwrap();
    let imported = env.ok(&["import", "alice@example.test", mbox_path.to_str().unwrap()]);
    assert!(
        imported.contains(&format!("imported {MESSAGES} messages")),
        "{imported}"
    );

    let (server, port) = serve(&env);
    assert_eq!(imap(port, "change").trim(), "changed");
    let before = imap(port, "snapshot");
    stop(server);
    assert!(
        before.contains("\\\\Flagged") && before.contains("$Work"),
        "flags present"
    );

    let db = TempDatabase::create("wharf_migrate");
    let blobs = env.path().join("shared-blobs");
    let url = db.url();
    for round in 0..2 {
        let run = env.run(&[
            "migrate",
            "--to",
            &url,
            "--blobs-to",
            blobs.to_str().unwrap(),
        ]);
        let out = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success() && out.contains("verified"),
            "round {round}: {out}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        if round == 1 {
            assert!(
                out.contains("0 copied"),
                "a second run copies no blob again: {out}"
            );
        }
    }

    env.write_config(&config(&format!(
        "[store]\nurl = \"{url}\"\nblob_dir = \"{}\"\n",
        blobs.display()
    )));
    // The embedded files are out of the way: the server can only read the new store.
    std::fs::rename(env.data().join("blobs"), env.path().join("old-blobs")).unwrap();
    let (server, port) = serve(&env);
    let after = imap(port, "snapshot");
    stop(server);
    assert!(
        before.len() > 1_000_000 / 2,
        "a real snapshot: {} bytes",
        before.len()
    );
    assert!(
        before == after,
        "IMAP shows the same UIDs, UIDVALIDITY, flags and bodies"
    );
    drop(db);
}

/// `wharf migrate --blobs-to s3://bucket/prefix`: the bodies go into a bucket of a private
/// Garage (endpoint, region and key from the standard AWS_* variables), each checked against its
/// hash; a second run after objects went missing copies exactly those (resumable); the server on
/// PostgreSQL + `[store.s3]` then reads every message. Needs the `garage` binary.
#[test]
fn migrate_copies_the_bodies_into_s3_resumably() {
    const N: usize = 200;
    let garage = wharf_testkit::Garage::start_new();
    let env = Env::new();
    env.write_config(&config(""));
    env.add_user("alice@example.test");
    let mut mbox = String::new();
    for i in 0..N {
        let _ = write!(
            mbox,
            "From bob@example.org Tue Nov 14 22:13:20 2023\nFrom: bob@example.org\nSubject: s{i}\n\
             Message-ID: <s{i}@example.org>\n\nbody {i} {}\n\n",
            "y".repeat(i % 300)
        );
    }
    let mbox_path = env.path().join("in.mbox");
    std::fs::write(&mbox_path, mbox).unwrap();
    env.ok(&["import", "alice@example.test", mbox_path.to_str().unwrap()]);

    let db = TempDatabase::create("wharf_migrate_s3");
    let url = db.url();
    let migrate = || {
        let out = Command::new(common::BIN)
            .arg("--config")
            .arg(env.config())
            .args([
                "migrate",
                "--to",
                &url,
                "--blobs-to",
                "s3://wharf-test/migrated",
            ])
            .current_dir(env.path())
            .env_remove("RUST_LOG")
            .env("AWS_ENDPOINT_URL", garage.endpoint())
            .env("AWS_REGION", "garage")
            .env("AWS_ACCESS_KEY_ID", garage.key_id())
            .env("AWS_SECRET_ACCESS_KEY", garage.secret())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains("verified"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let first = migrate();
    assert!(
        first.contains(&format!(
            "blobs: {N} copied to s3://wharf-test/migrated, 0 already"
        )),
        "{first}"
    );
    // Three objects lost (as if the first run had stopped early): the next run copies them.
    let s3 = wharf_store::blob_s3::S3BlobStore::open(&garage.s3_config("migrated")).unwrap();
    let listed = s3.list(Duration::ZERO).unwrap();
    assert_eq!(listed.len(), N);
    for h in &listed[..3] {
        s3.remove(h).unwrap();
    }
    let second = migrate();
    assert!(
        second.contains(&format!(
            "blobs: 3 copied to s3://wharf-test/migrated, {} already",
            N - 3
        )),
        "{second}"
    );
    assert!(second.contains("[store.s3]") && second.contains("bucket = \"wharf-test\""));

    // The new node's config; the embedded bodies are out of the way.
    env.write_config(&config(&format!(
        "[store]\nurl = \"{url}\"\n{}",
        garage.toml("migrated")
    )));
    std::fs::rename(env.data().join("blobs"), env.path().join("old-blobs")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = wharf_store::open(&wharf_store::StoreConfig {
            url: url.clone(),
            blob_dir: env.path().join("unused"),
            blob_s3: Some(garage.s3_config("migrated")),
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
        assert_eq!(index.len(), N);
        for (i, e) in index.iter().enumerate() {
            let raw = store.message_raw(e.message_id).await.unwrap();
            let text = String::from_utf8_lossy(&raw);
            assert!(text.contains(&format!("body {i} ")), "{text}");
        }
    });
    let list = env.ok(&["mailbox", "list", "alice@example.test"]);
    let line = list.lines().find(|l| l.starts_with("INBOX ")).unwrap();
    assert_eq!(line.split_whitespace().nth(2), Some("200"), "{line}");
    drop(db);
}
