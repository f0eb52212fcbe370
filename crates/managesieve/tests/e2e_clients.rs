//! A real client against a real server: Python sievelib (PyPI package `sievelib`) over
//! STARTTLS and over implicit TLS, with AUTHENTICATE PLAIN, uploading, listing, activating,
//! reading back, renaming and deleting scripts, and reading a bad script's error with its line
//! and column. The store is checked afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;

use support::*;
use wharf_managesieve::ManageSieveConfig;

fn sievelib(mode: &str, port: u16, ca: &Path) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/sievelib_client.py"
    );
    let o = Command::new("python3")
        .args([script, mode, "127.0.0.1", &port.to_string(), USER, PASS])
        .env("SSL_CERT_FILE", ca)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "sievelib client failed (is the PyPI package `sievelib` installed?):\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

async fn run(mode: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let env = start(dir.path(), ManageSieveConfig::default()).await;
    let ca = env.cert.write_pem(dir.path());
    let port = if mode == "ssl" {
        env.implicit.port()
    } else {
        env.starttls.port()
    };
    let out = tokio::task::spawn_blocking(move || sievelib(mode, port, &ca))
        .await
        .unwrap();
    assert!(out.contains("implementation Wharf\n"), "{out}");
    assert!(out.contains("sieve fileinto vacation enotify\n"), "{out}");
    assert!(out.contains("getscript ok\n"), "{out}");
    assert!(
        out.contains("putscript error: line 3, column 3: unknown command \"bad\"\n"),
        "{out}"
    );
    assert!(
        out.contains("checkscript error: line 1, column 1: unknown command \"bad\"\n"),
        "{out}"
    );
    assert!(out.contains("delete active: ACTIVE\n"), "{out}");
    assert!(out.contains("getscript missing: NONEXISTENT\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    let scripts = env.store.list_sieve_scripts(env.account.id).await.unwrap();
    assert_eq!(scripts.len(), 1, "{scripts:?}");
    assert_eq!(scripts[0].name, "other");
    assert!(scripts[0].active);
    assert_eq!(
        env.store
            .get_sieve_script(env.account.id, "other")
            .await
            .unwrap()
            .as_deref(),
        Some("keep;\r\n"),
        "sievelib sends CRLF lines; the script is stored as sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sievelib_over_starttls() {
    run("starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sievelib_over_implicit_tls() {
    run("ssl").await;
}
