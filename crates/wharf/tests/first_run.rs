//! `wharf serve` over an existing `wharf.toml` whose store is still empty (a config written by
//! hand, or kept while the data folder is new): like a first run, it creates the primary domain
//! (`--domain` wins over the file) and its admin account, prints the password once, and that
//! password logs in over IMAP. A store that already has a domain is left as it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Env, Server};

/// One IMAP listener on an ephemeral loopback port; LOGIN without TLS is allowed on loopback.
fn config(primary_domain: Option<&str>) -> String {
    let domain = primary_domain
        .map(|d| format!("primary_domain = \"{d}\"\n"))
        .unwrap_or_default();
    format!(
        "[server]\nhostname = \"mail.example.test\"\n{domain}data_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n\
         [imap]\nallow_plaintext_auth_on_loopback = true\n\
         [[listener]]\nname = \"imap\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\n"
    )
}

/// Starts `wharf serve`; returns the server, its IMAP port and what it printed on stdout.
fn start(env: &Env, extra: &[&str]) -> (Server, u16, String) {
    let config = env.config();
    let mut args = vec!["--config", config.to_str().unwrap(), "serve"];
    args.extend_from_slice(extra);
    let mut server = Server::start(env.path(), &args);
    let ready = server.wait_ready();
    let port = ready
        .iter()
        .find(|(name, _)| name == "imap")
        .unwrap_or_else(|| panic!("no imap listener: {ready:?}"))
        .1;
    // The first-run table is printed before the listeners are bound, so it is complete by now.
    let stdout = server.stdout_text(Duration::from_millis(500));
    (server, port, stdout)
}

fn stop(mut server: Server) {
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// The value of a `  name:  value` line of the first-run table.
fn printed(stdout: &str, name: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// The tagged reply to `a LOGIN user password` on a fresh plaintext IMAP connection.
fn imap_login(port: u16, user: &str, password: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "greeting: {line}");
    writer
        .write_all(format!("a LOGIN \"{user}\" \"{password}\"\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed"
        );
        if line.starts_with("a ") {
            let _ = writer.write_all(b"z LOGOUT\r\n");
            return line.trim_end().to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_config_over_an_empty_store_creates_the_domain_and_admin() {
    let env = Env::empty();
    env.write_config(&config(Some("example.test")));
    assert!(!env.data().exists());

    let (server, port, stdout) = start(&env, &[]);
    assert_eq!(
        printed(&stdout, "user").as_deref(),
        Some("admin@example.test"),
        "first-run table expected on stdout:\n{stdout}"
    );
    let password = printed(&stdout, "password").expect("password printed");
    assert!(password.len() >= 16, "{password}");

    let store = env.store().await;
    assert!(store.get_domain("example.test").await.unwrap().is_some());
    assert!(
        store
            .get_account_by_address("admin@example.test")
            .await
            .unwrap()
            .is_some()
    );
    // RFC 5321 §4.5.1 postmaster@ and RFC 2142 abuse@ reach the admin (and with them the
    // DMARC and TLS-RPT reports `wharf dns` asks for at postmaster@).
    for role in ["postmaster@example.test", "abuse@example.test"] {
        assert_eq!(
            store.alias_targets(role).await.unwrap(),
            vec!["admin@example.test".to_string()],
            "{role}"
        );
    }
    assert!(
        stdout.contains("postmaster@example.test, abuse@example.test"),
        "{stdout}"
    );
    let ok = imap_login(port, "admin@example.test", &password);
    assert!(ok.starts_with("a OK"), "{ok}");
    let refused = imap_login(port, "admin@example.test", "not the password");
    assert!(refused.starts_with("a NO"), "{refused}");
    stop(server);

    // The store is no longer empty: no new account, no password printed, the old one still works.
    let (server, port, stdout) = start(&env, &[]);
    assert!(!stdout.contains("password"), "{stdout}");
    let ok = imap_login(port, "admin@example.test", &password);
    assert!(ok.starts_with("a OK"), "{ok}");
    stop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn domain_flag_names_the_first_domain_over_an_existing_config() {
    let env = Env::empty();
    // Without primary_domain the host name would give example.test; --domain must win.
    env.write_config(&config(None));

    let (server, port, stdout) = start(&env, &["--domain", "first.test"]);
    assert_eq!(
        printed(&stdout, "user").as_deref(),
        Some("admin@first.test"),
        "{stdout}"
    );
    let password = printed(&stdout, "password").expect("password printed");
    let store = env.store().await;
    assert!(store.get_domain("first.test").await.unwrap().is_some());
    assert!(store.get_domain("example.test").await.unwrap().is_none());
    let ok = imap_login(port, "admin@first.test", &password);
    assert!(ok.starts_with("a OK"), "{ok}");
    stop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_has_a_domain_gets_no_admin_account() {
    let env = Env::empty();
    env.write_config(&config(Some("example.test")));
    env.ok(&["domain", "add", "other.test"]);

    let (server, _, stdout) = start(&env, &[]);
    assert!(!stdout.contains("password"), "{stdout}");
    let store = env.store().await;
    assert!(store.get_domain("example.test").await.unwrap().is_none());
    assert!(
        store
            .get_account_by_address("admin@example.test")
            .await
            .unwrap()
            .is_none()
    );
    stop(server);
}

#[test]
fn a_host_name_without_a_dot_needs_a_domain() {
    let env = Env::empty();
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--config", env.config().to_str().unwrap()])
        .args(["--hostname", "vm", "--listen", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--hostname mail.example.com") && err.contains("--domain example.com"),
        "{err}"
    );
    assert!(!env.config().exists());
    assert!(!env.data().exists());
}
