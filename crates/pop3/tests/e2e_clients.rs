//! Real clients against a real server: Python poplib (STLS and POP3_SSL), fetchmail (UIDL
//! tracking with --keep, then deleting) and curl pop3:// (LIST, RETR). Every downloaded message
//! must be byte-identical to what was stored (in its CRLF wire form).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;

use support::*;

const N: usize = 100;

fn python(mode: &str, port: u16, out: &Path, delete: bool) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/poplib_client.py"
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        script,
        mode,
        "127.0.0.1",
        &port.to_string(),
        USER,
        PASS,
        out.to_str().unwrap(),
    ]);
    if delete {
        cmd.arg("--delete");
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "poplib failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn check_downloads(dir: &Path, msgs: &[Vec<u8>]) {
    for (i, m) in msgs.iter().enumerate() {
        let got = std::fs::read(dir.join(format!("{}.eml", i + 1))).unwrap();
        assert_eq!(got, wire_form(m), "message {} differs", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_stls_and_pop3_ssl_download_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config_default(), true).await;
    let msgs = varied_messages(N);
    fill_inbox(&env, &msgs).await;

    let out = tempfile::tempdir().unwrap();
    let port = env.starttls.port();
    let p = out.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || python("stls", port, &p, false))
        .await
        .unwrap();
    assert!(
        r.contains("signing off (0 messages removed, 100 left)"),
        "{r}"
    );
    check_downloads(out.path(), &msgs);
    let uidl1 = std::fs::read_to_string(out.path().join("uidl.txt")).unwrap();
    assert_eq!(uidl1.lines().count(), N);

    let out2 = tempfile::tempdir().unwrap();
    let port = env.implicit.port();
    let p = out2.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || python("ssl", port, &p, true))
        .await
        .unwrap();
    assert!(
        r.contains("signing off (100 messages removed, 0 left)"),
        "{r}"
    );
    check_downloads(out2.path(), &msgs);
    assert_eq!(
        std::fs::read_to_string(out2.path().join("uidl.txt")).unwrap(),
        uidl1,
        "UIDL stable"
    );
    assert!(
        inbox_uids(&env).await.is_empty(),
        "QUIT removed everything from INBOX"
    );
}

#[allow(non_snake_case)]
fn Pop3Config_default() -> wharf_pop3::Pop3Config {
    wharf_pop3::Pop3Config::default()
}

fn fetchmail(home: &Path, port: u16, maildir: &Path, args: &[&str]) -> (i32, String) {
    let rc = home.join("fetchmailrc");
    let mda = home.join("mda.sh");
    std::fs::write(
        &mda,
        format!(
            "#!/bin/sh\nf=$(mktemp {}/msg.XXXXXXXX)\ncat > \"$f\"\n",
            maildir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mda, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\nset no syslog\nset invisible\npoll 127.0.0.1 protocol pop3 port {port} uidl\n  user \"{USER}\" password \"{PASS}\" is root here\n  ssl no sslcertck no rewrite\n  mda \"{}\"\n",
            mda.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new("fetchmail")
        .args([
            "-f",
            rc.to_str().unwrap(),
            "--idfile",
            home.join("fetchids").to_str().unwrap(),
            "--nodetach",
        ])
        .args(args)
        .env("HOME", home)
        .env("FETCHMAILHOME", home)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), log)
}

/// fetchmail hands messages to the MDA with LF line endings.
fn lf_form(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(&wire_form(raw))
        .replace("\r\n", "\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_keep_then_uidl_then_delete() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config_default(), true).await;
    let msgs = varied_messages(N);
    fill_inbox(&env, &msgs).await;
    let home = tempfile::tempdir().unwrap();
    let maildir = tempfile::tempdir().unwrap();
    let port = env.implicit.port();
    let (h, m) = (home.path().to_path_buf(), maildir.path().to_path_buf());

    let (code, log) = tokio::task::spawn_blocking({
        let (h, m) = (h.clone(), m.clone());
        move || fetchmail(&h, port, &m, &["--keep"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{log}");
    let mut got: Vec<Vec<u8>> = std::fs::read_dir(maildir.path())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(got.len(), N, "{log}");
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| lf_form(m)).collect();
    got.sort();
    want.sort();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(String::from_utf8_lossy(g), String::from_utf8_lossy(w));
    }
    assert_eq!(inbox_uids(&env).await.len(), N, "--keep deleted nothing");

    // Second run: UIDL says everything was seen, nothing new is downloaded.
    let (code, log) = tokio::task::spawn_blocking({
        let (h, m) = (h.clone(), m.clone());
        move || fetchmail(&h, port, &m, &["--keep"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "exit 1 = no new mail: {log}");
    assert_eq!(std::fs::read_dir(maildir.path()).unwrap().count(), N);

    // Without --keep, fetching all: downloaded and deleted from the server.
    let (code, log) = tokio::task::spawn_blocking(move || fetchmail(&h, port, &m, &["--all"]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read_dir(maildir.path()).unwrap().count(), 2 * N);
    assert!(
        inbox_uids(&env).await.is_empty(),
        "IMAP no longer sees them: {log}"
    );
}

fn curl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "30",
            "-u",
            &format!("{USER}:{PASS}"),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_list_and_retr() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config_default(), true).await;
    let msgs = varied_messages(N);
    fill_inbox(&env, &msgs).await;
    let stls = format!("pop3://127.0.0.1:{}/", env.starttls.port());
    let implicit = format!("pop3s://127.0.0.1:{}/", env.implicit.port());
    let list = tokio::task::spawn_blocking({
        let u = stls.clone();
        move || curl(&["--ssl-reqd", "-k", &u])
    })
    .await
    .unwrap();
    let list = String::from_utf8(list).unwrap();
    assert_eq!(list.lines().count(), N, "{list}");
    for (i, line) in list.lines().enumerate() {
        let (n, size) = line.split_once(' ').unwrap();
        assert_eq!(n, (i + 1).to_string());
        assert_eq!(
            size.trim().parse::<usize>().unwrap(),
            wire_form(&msgs[i]).len()
        );
    }
    for n in [1usize, 2, 6, 7, 17, 50, 100] {
        for base in [&stls, &implicit] {
            let url = format!("{base}{n}");
            let body = tokio::task::spawn_blocking(move || curl(&["--ssl-reqd", "-k", &url]))
                .await
                .unwrap();
            assert_eq!(body, wire_form(&msgs[n - 1]), "curl RETR {n}");
        }
    }
    // Plain pop3:// without TLS is refused (no loopback opt-in).
    let o = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-u",
            &format!("{USER}:{PASS}"),
            &stls,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "plaintext login must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_login_scram_with_python() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config_default(), true).await;
    fill_inbox(&env, &varied_messages(3)).await;
    let port = env.starttls.port();
    let o = tokio::task::spawn_blocking(move || {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sasl_client.py");
        Command::new("python3")
            .args([script, "127.0.0.1", &port.to_string(), USER, PASS])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        out,
        "PLAIN-IR ok 3\nPLAIN ok 3\nLOGIN ok 3\nSCRAM-SHA-256 ok 3\nbad proof: -ERR [AUTH] authentication failed\n"
    );
}

/// Plaintext pipelined after STLS is discarded: it is never executed as if it came over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stls_discards_pipelined_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config_default(), true).await;
    let port = env.starttls.port();
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")
assert f.readline().startswith(b"+OK")
s.sendall(b"STLS\r\nUSER alice@example.org\r\n")
assert f.readline() == b"+OK Begin TLS negotiation\r\n"
t = ssl._create_unverified_context().wrap_socket(s)
g = t.makefile("rb")
t.sendall(b"PASS whatever\r\n")
print(g.readline().decode().strip())
"#;
    let o = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "-ERR USER first\n");
}
