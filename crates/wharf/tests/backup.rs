//! `wharf backup` while the server takes mail and expunges, `wharf restore` into a fresh data
//! folder, and the restored server compared over IMAP with the original; restore refuses a
//! store that holds data and a tampered backup.
//!
//! Needs python3 (smtplib, imaplib).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::e2e;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, Server};
use e2e::{Mail, PASSWORD, READER, SENDER};

const CLIENTS: &str = r#"
import hashlib, imaplib, json, os, re, smtplib, ssl, sys, time

HOST = "127.0.0.1"

def message(seq):
    deletable = "yes" if seq % 3 == 0 else "no"
    lines = [f"From: carol@remote.example.org", "To: bob@example.test",
             f"Subject: backup test {seq}", f"Message-ID: <backup-{seq}@remote.example.org>",
             f"X-Seq: {seq}", f"X-Del: {deletable}", ""]
    n = 2000 if seq % 5 == 0 else 3
    for i in range(n):
        lines.append(f"line {i} of message {seq}: " + hashlib.sha256(f"{seq}/{i}".encode()).hexdigest())
    return ("\r\n".join(lines) + "\r\n").encode()

def kv():
    return dict(a.split("=", 1) for a in sys.argv[2:])

def ctx(cafile):
    c = ssl.create_default_context(cafile=cafile)
    c.check_hostname = False
    return c

def login(a):
    m = imaplib.IMAP4_SSL(HOST, int(a["imaps"]), ssl_context=ctx(a["cafile"]), timeout=30)
    typ, data = m.login(a["user"], a["password"])
    assert typ == "OK", data
    return m

def send(a):
    s = smtplib.SMTP(HOST, int(a["smtp"]), timeout=30)
    s.ehlo("mx.remote.example.org")
    seq = 0
    with open(a["out"], "a") as out:
        while not os.path.exists(a["stop"]):
            seq += 1
            s.sendmail("carol@remote.example.org", ["bob@example.test"], message(seq))
            out.write(f"{seq} {time.time():.6f}\n")
            out.flush()
    s.quit()

def deleter(a):
    m = login(a)
    with open(a["out"], "a") as out:
        while not os.path.exists(a["stop"]):
            typ, _ = m.select("INBOX")
            assert typ == "OK"
            typ, data = m.uid("SEARCH", None, "HEADER", "X-Del", "yes")
            assert typ == "OK", data
            uids = data[0].split()
            if uids:
                spec = b",".join(uids).decode()
                typ, data = m.uid("FETCH", spec, "(BODY.PEEK[HEADER.FIELDS (X-Seq)])")
                assert typ == "OK", data
                for part in data:
                    if isinstance(part, tuple):
                        uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
                        seq = int(re.search(rb"X-Seq: (\d+)", part[1]).group(1))
                        out.write(f"{seq} {uid}\n")
                out.flush()
                typ, data = m.uid("STORE", spec, "+FLAGS.SILENT", "(\\Deleted)")
                assert typ == "OK", data
                typ, data = m.expunge()
                assert typ == "OK", data
            time.sleep(0.02)
    m.logout()

def dump(a):
    m = login(a)
    typ, _ = m.select("INBOX", readonly=True)
    assert typ == "OK"
    uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    messages = []
    for part in data:
        if not isinstance(part, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
        raw = part[1]
        seq = int(re.search(rb"X-Seq: (\d+)", raw).group(1))
        # Wharf prepends Return-Path and Received; the rest is what was sent, byte for byte.
        intact = raw.endswith(message(seq))
        messages.append({"uid": uid, "seq": seq, "intact": intact,
                         "sha256": hashlib.sha256(raw).hexdigest()})
    m.logout()
    print(json.dumps({"uidvalidity": uidvalidity, "messages": messages}))

{"send": send, "deleter": deleter, "dump": dump}[sys.argv[1]](kv())
"#;

struct Clients {
    script: std::path::PathBuf,
}

impl Clients {
    fn new(dir: &Path) -> Clients {
        let script = dir.join("backup_clients.py");
        std::fs::write(&script, CLIENTS).unwrap();
        Clients { script }
    }

    fn command(&self, cmd: &str, args: &[String]) -> Command {
        let mut c = Command::new("python3");
        c.arg(&self.script).arg(cmd).args(args);
        c
    }

    fn spawn(&self, cmd: &str, args: &[String]) -> Child {
        self.command(cmd, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// INBOX of bob: UIDVALIDITY and seq → (uid, sha256, intact).
    fn dump(&self, args: &[String]) -> (u64, Vec<(u64, u64, String, bool)>) {
        let out = self.command("dump", args).output().unwrap();
        assert!(
            out.status.success(),
            "dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let msgs = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap(),
                    m["uid"].as_u64().unwrap(),
                    m["sha256"].as_str().unwrap().to_string(),
                    m["intact"].as_bool().unwrap(),
                )
            })
            .collect();
        (v["uidvalidity"].as_u64().unwrap(), msgs)
    }
}

fn imap_args(imaps: u16, cafile: &Path) -> Vec<String> {
    vec![
        format!("imaps={imaps}"),
        format!("cafile={}", cafile.display()),
        format!("user={READER}"),
        format!("password={PASSWORD}"),
    ]
}

fn read_pairs(path: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn online_backup_under_smtp_load_restores_every_acknowledged_message_with_its_uids() {
    let _ = SENDER;
    let mut mail = Mail::new();
    // Expunged bodies go at once: only the backup's pins keep a snapshot's bodies on disk.
    mail.stop();
    let mut config = std::fs::read_to_string(mail.env.config()).unwrap();
    config.push_str("[store]\nblob_grace_secs = 0\n");
    mail.env.write_config(&config);
    mail.start();

    let work = mail.work.clone();
    let clients = Clients::new(&work);
    let acked = work.join("acked");
    let deleted = work.join("deleted");
    let stop = work.join("stop");
    let sender = clients.spawn(
        "send",
        &[
            format!("smtp={}", mail.port("smtp")),
            format!("out={}", acked.display()),
            format!("stop={}", stop.display()),
        ],
    );
    let mut deleter_args = imap_args(mail.port("imaps"), &mail.cafile());
    deleter_args.push(format!("out={}", deleted.display()));
    deleter_args.push(format!("stop={}", stop.display()));
    let deleter = clients.spawn("deleter", &deleter_args);

    let waited = Instant::now();
    while read_pairs(&acked).len() < 40 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "sender too slow"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let backup_dir = mail.env.path().join("backup");
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let t = Instant::now();
    let out = mail.env.ok(&["backup", backup_dir.to_str().unwrap()]);
    eprintln!("backup took {:?}: {out}", t.elapsed());
    assert!(out.contains("backup written to"), "{out}");
    // Mail keeps flowing (and being expunged) after the snapshot too.
    let after = read_pairs(&acked).len();
    while read_pairs(&acked).len() < after + 10 {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&stop, "").unwrap();
    finish(sender, "sender");
    finish(deleter, "deleter");

    let acked = read_pairs(&acked);
    let deleted: HashMap<u64, u64> = read_pairs(&deleted)
        .into_iter()
        .map(|(seq, uid)| (seq, uid as u64))
        .collect();
    let (validity_a, orig) = clients.dump(&imap_args(mail.port("imaps"), &mail.cafile()));
    let config = std::fs::read_to_string(mail.env.config()).unwrap();
    mail.stop();

    // A fresh data folder under the same configuration.
    let fresh = Env::empty();
    fresh.write_config(&config);
    let out = fresh.ok(&["restore", backup_dir.to_str().unwrap()]);
    eprintln!("{out}");
    let mut server = Server::start(
        fresh.path(),
        &["--config", fresh.config().to_str().unwrap(), "serve"],
    );
    let ports = server.wait_ready();
    let imaps = ports.iter().find(|(n, _)| n == "imaps").unwrap().1;
    let cafile = fresh.data().join("tls").join("cert.pem");
    let (validity_b, restored) = clients.dump(&imap_args(imaps, &cafile));
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());

    assert_eq!(
        validity_a, validity_b,
        "UIDVALIDITY must survive the restore"
    );
    let orig: HashMap<u64, (u64, String)> = orig
        .into_iter()
        .map(|(seq, uid, sha, intact)| {
            assert!(intact, "original message {seq} corrupt");
            (seq, (uid, sha))
        })
        .collect();
    let acked_seqs: std::collections::HashSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    let mut by_seq: HashMap<u64, (u64, String)> = HashMap::new();
    let mut from_deleted = 0;
    for (seq, uid, sha, intact) in &restored {
        assert!(intact, "restored message {seq} (uid {uid}) is corrupt");
        assert!(
            acked_seqs.contains(seq),
            "restored message {seq} was never acknowledged"
        );
        assert!(
            by_seq.insert(*seq, (*uid, sha.clone())).is_none(),
            "message {seq} restored twice"
        );
        match orig.get(seq) {
            Some((ouid, osha)) => {
                assert_eq!(uid, ouid, "message {seq}: UID differs from the original");
                assert_eq!(sha, osha, "message {seq}: bytes differ from the original");
            }
            None => {
                // Expunged from the original after the snapshot: its body came from the pin.
                assert_eq!(
                    deleted.get(seq),
                    Some(uid),
                    "message {seq} (uid {uid}) is neither in the original nor was it expunged"
                );
                from_deleted += 1;
            }
        }
    }
    let mut required = 0;
    for (seq, at) in &acked {
        if *at < started && seq % 3 != 0 {
            required += 1;
            assert!(
                by_seq.contains_key(seq),
                "message {seq}, acknowledged before the backup started, is missing"
            );
        }
    }
    eprintln!(
        "acked {}, required {required}, restored {}, of which expunged from the original after the snapshot {from_deleted}",
        acked.len(),
        restored.len()
    );
    assert!(required >= 20);
}

/// An mbox with `n` small messages.
fn mbox(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "From carol@remote.example.org Mon Jan  1 00:00:00 2024\nFrom: carol@remote.example.org\nSubject: m{i}\n\nbody {i}\n\n"
        ));
    }
    s
}

#[test]
fn restore_refuses_a_store_with_data_and_a_tampered_backup() {
    let env = Env::new();
    env.add_user("bob@example.test");
    std::fs::write(env.path().join("in.mbox"), mbox(3)).unwrap();
    env.ok(&["import", "bob@example.test", "in.mbox"]);
    let dkim = env.data().join("dkim").join("example.test");
    std::fs::create_dir_all(&dkim).unwrap();
    std::fs::write(dkim.join("s1.pem"), "key").unwrap();
    env.ok(&["dkim", "generate", "example.test", "--selector", "stored"]);
    let state_key = std::fs::read_to_string(env.data().join("state.key")).unwrap();
    let records = env.ok(&["dns", "example.test"]);

    let dir = env.path().join("bk");
    let out = env.ok(&["backup", dir.to_str().unwrap()]);
    assert!(out.contains("3 messages"), "{out}");
    assert!(dir.join("manifest.json").is_file());
    assert!(dir.join("files/dkim/example.test/s1.pem").is_file());
    assert!(dir.join("files/state.key").is_file());
    // Not into a folder holding something.
    let err = env.fails(&["backup", dir.to_str().unwrap()]);
    assert!(err.contains("not empty"), "{err}");
    // Not over the store it came from.
    let err = env.fails(&["restore", dir.to_str().unwrap()]);
    assert!(err.contains("fresh data folder"), "{err}");

    let copy = |name: &str| {
        let to = env.path().join(name);
        let status = Command::new("cp")
            .args(["-a"])
            .arg(&dir)
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success());
        to
    };
    let fresh = Env::new();
    // A changed database file.
    let bad_db = copy("bad_db");
    let mut bytes = std::fs::read(bad_db.join("wharf.db")).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0x55;
    std::fs::write(bad_db.join("wharf.db"), bytes).unwrap();
    let err = fresh.fails(&["restore", bad_db.to_str().unwrap()]);
    assert!(err.contains("does not match the manifest"), "{err}");
    assert!(!fresh.data().join("wharf.db").exists());
    // A changed body.
    let bad_blob = copy("bad_blob");
    let blob = walk_files(&bad_blob.join("blobs")).pop().unwrap();
    std::fs::write(&blob, "changed").unwrap();
    let err = fresh.fails(&["restore", bad_blob.to_str().unwrap()]);
    assert!(err.contains("damaged"), "{err}");
    assert!(!fresh.data().join("wharf.db").exists());
    // A missing body.
    let no_blob = copy("no_blob");
    std::fs::remove_file(walk_files(&no_blob.join("blobs")).pop().unwrap()).unwrap();
    let err = fresh.fails(&["restore", no_blob.to_str().unwrap()]);
    assert!(err.contains("lacks blob"), "{err}");
    // No manifest: an unfinished backup.
    let unfinished = copy("unfinished");
    std::fs::remove_file(unfinished.join("manifest.json")).unwrap();
    let err = fresh.fails(&["restore", unfinished.to_str().unwrap()]);
    assert!(err.contains("not a complete backup"), "{err}");
    assert!(!fresh.data().join("wharf.db").exists());

    // The intact one restores, keys included.
    let out = fresh.ok(&["restore", dir.to_str().unwrap()]);
    assert!(out.contains("3 messages"), "{out}");
    assert!(fresh.ok(&["user", "list"]).contains("bob@example.test"));
    assert_eq!(
        std::fs::read_to_string(fresh.data().join("dkim/example.test/s1.pem")).unwrap(),
        "key"
    );
    // The node-state key came back too, so the stored DKIM key opens: same records.
    assert_eq!(
        std::fs::read_to_string(fresh.data().join("state.key")).unwrap(),
        state_key
    );
    assert_eq!(fresh.ok(&["dns", "example.test"]), records);
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// The PostgreSQL backend: `wharf backup` of a running server (pg_dump of one snapshot plus the
/// bodies it names) restored into a new database and blob folder shows the same mailbox over
/// IMAPS: UIDVALIDITY, UIDs, flags and bodies. A non-empty database is refused, and so is a
/// changed dump.
#[test]
fn postgres_backup_restores_the_same_mailbox() {
    let (db1, db2, db3) = (
        wharf_testkit::TempDatabase::create("wharf_bk_src"),
        wharf_testkit::TempDatabase::create("wharf_bk_dst"),
        wharf_testkit::TempDatabase::create("wharf_bk_bad"),
    );
    let config = |url: &str, blobs: &str| {
        format!(
            "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
             [store]\nurl = \"{url}\"\nblob_dir = \"{blobs}\"\n[limits]\nshutdown_timeout = 5\n\
             [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n"
        )
    };
    let env = Env::new();
    env.write_config(&config(&db1.url(), "blobs-a"));
    env.add_user("bob@example.test");
    std::fs::write(env.path().join("in.mbox"), mbox(40)).unwrap();
    env.ok(&["import", "bob@example.test", "in.mbox"]);
    let snapshot = |env: &Env| -> String {
        let (mut server, ready) = env.serve();
        let script = r#"
import hashlib, imaplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login("bob@example.test", sys.argv[2])
m.select("INBOX")
if sys.argv[3] == "change":
    m.uid("STORE", "1:5", "+FLAGS", "(\\Flagged)")
    m.uid("STORE", "6", "+FLAGS", "(\\Deleted)")
    m.expunge()
print(m.response("UIDVALIDITY"))
typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
for part in data:
    if isinstance(part, tuple):
        print(part[0].decode().split(" BODY")[0], hashlib.sha256(part[1]).hexdigest())
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &ready.port("imaps").to_string(),
                common::PASSWORD,
                if env.path().join("changed").exists() {
                    "read"
                } else {
                    "change"
                },
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(env.path().join("changed"), "").unwrap();
        // Backed up while it runs.
        if env.path().join("take").exists() {
            let dir = env.path().join("bk");
            let out = env.ok(&["backup", dir.to_str().unwrap()]);
            assert!(out.contains("39 messages"), "{out}");
        }
        server.sigterm();
        server.wait_exit(std::time::Duration::from_secs(30));
        String::from_utf8(out.stdout).unwrap()
    };
    snapshot(&env); // makes the changes
    std::fs::write(env.path().join("take"), "").unwrap();
    let before = snapshot(&env);
    let dir = env.path().join("bk");
    assert!(dir.join("wharf.pgdump").is_file() && dir.join("manifest.json").is_file());

    // Into a database that already holds a store: refused.
    let fresh = Env::new();
    fresh.write_config(&config(&db1.url(), "blobs-b"));
    let err = fresh.fails(&["restore", dir.to_str().unwrap()]);
    assert!(err.contains("not empty"), "{err}");
    // A changed dump: refused before anything is loaded.
    let bad = env.path().join("bad");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&dir)
            .arg(&bad)
            .status()
            .unwrap()
            .success()
    );
    let mut bytes = std::fs::read(bad.join("wharf.pgdump")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(bad.join("wharf.pgdump"), bytes).unwrap();
    fresh.write_config(&config(&db3.url(), "blobs-c"));
    let err = fresh.fails(&["restore", bad.to_str().unwrap()]);
    assert!(err.contains("does not match the manifest"), "{err}");

    fresh.write_config(&config(&db2.url(), "blobs-d"));
    let out = fresh.ok(&["restore", dir.to_str().unwrap()]);
    assert!(out.contains("39 messages"), "{out}");
    std::fs::write(fresh.path().join("changed"), "").unwrap();
    let after = snapshot(&fresh);
    assert_eq!(before, after, "the restored store shows the same mailbox");
    assert!(before.contains("\\Flagged"), "{before}");
    drop((db1, db2, db3));
}
