//! Real server over real sockets (STARTTLS and implicit TLS listeners on loopback), with the
//! real directory (credentials, SASL, throttling) and the real embedded store: raw transcripts
//! of STARTTLS, AUTHENTICATE (PLAIN with initial response, LOGIN by continuations), every
//! script command landing in the store, oversized literals, throttling, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use support::*;
use wharf_directory::DirectoryConfig;
use wharf_managesieve::ManageSieveConfig;

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_login_and_every_script_command_on_the_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let env = start(dir.path(), ManageSieveConfig::default()).await;
    let (mut c, greeting) = Client::connect(env.starttls).await;
    assert!(
        greeting.starts_with("\"IMPLEMENTATION\" \"Wharf\"\r\n"),
        "{greeting}"
    );
    assert!(greeting.contains("\"SASL\" \"\"\r\n"), "{greeting}");
    assert!(greeting.contains("\"STARTTLS\"\r\n"), "{greeting}");
    assert!(
        greeting.contains("\"MAXREDIRECTS\" \"4\"\r\n"),
        "{greeting}"
    );
    assert!(greeting.contains("\"VERSION\" \"1.0\"\r\n"), "{greeting}");
    assert_eq!(
        c.login(USER, PASS).await,
        "NO (ENCRYPT-NEEDED) \"Authentication requires TLS: use STARTTLS first\"\r\n"
    );
    let (mut c, caps) = c.starttls(&env.cert).await;
    assert!(
        caps.contains("\"SASL\" \"SCRAM-SHA-256 PLAIN LOGIN\"\r\n"),
        "{caps}"
    );
    assert!(!caps.contains("STARTTLS"), "{caps}");
    assert!(
        caps.ends_with("OK \"TLS negotiation successful\"\r\n"),
        "{caps}"
    );
    assert_eq!(
        c.login(USER, PASS).await,
        "OK \"Authentication successful\"\r\n"
    );
    let caps = c.cmd("CAPABILITY").await;
    assert!(
        caps.contains(&format!("\"OWNER\" \"{USER}\"\r\n")),
        "{caps}"
    );

    let script = "require \"fileinto\";\r\nfileinto \"Archive\";\r\n";
    c.send(format!("PUTSCRIPT \"main\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes())
        .await;
    assert_eq!(c.response().await, "OK \"Script stored\"\r\n");
    assert_eq!(
        c.cmd("PUTSCRIPT \"spare\" \"keep;\"").await,
        "OK \"Script stored\"\r\n"
    );
    assert_eq!(
        c.cmd("LISTSCRIPTS").await,
        "\"main\"\r\n\"spare\"\r\nOK \"Listscripts completed\"\r\n"
    );
    assert_eq!(
        c.cmd("SETACTIVE \"main\"").await,
        "OK \"Script activated\"\r\n"
    );
    assert_eq!(
        env.store.active_sieve_script(env.account.id).await.unwrap(),
        Some(("main".to_string(), script.to_string()))
    );
    assert_eq!(
        c.cmd("GETSCRIPT \"main\"").await,
        format!(
            "{{{}}}\r\n{script}\r\nOK \"Getscript completed\"\r\n",
            script.len()
        )
    );
    assert_eq!(
        c.cmd("DELETESCRIPT \"main\"").await,
        "NO (ACTIVE) \"The active script cannot be deleted: deactivate it first\"\r\n"
    );
    assert_eq!(
        c.cmd("RENAMESCRIPT \"main\" \"spare\"").await,
        "NO (ALREADYEXISTS) \"A script with the new name already exists\"\r\n"
    );
    assert_eq!(
        c.cmd("RENAMESCRIPT \"main\" \"filters\"").await,
        "OK \"Script renamed\"\r\n"
    );
    assert_eq!(
        env.store
            .active_sieve_script(env.account.id)
            .await
            .unwrap()
            .map(|(n, _)| n),
        Some("filters".to_string()),
        "the active script stays active under its new name"
    );
    assert_eq!(
        c.cmd("GETSCRIPT \"main\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    assert_eq!(
        c.cmd("CHECKSCRIPT \"keep;\r\"").await,
        "NO \"quoted strings cannot hold CR, LF or NUL: use a literal\"\r\n"
    );
    assert_eq!(
        c.cmd("PUTSCRIPT \"broken\" \"if true { bad; }\"").await,
        "NO \"line 1, column 11: unknown command \\\"bad\\\"\"\r\n"
    );
    assert_eq!(
        c.cmd("HAVESPACE \"new\" 1000").await,
        "OK \"Putscript would succeed\"\r\n"
    );
    assert_eq!(
        c.cmd("HAVESPACE \"new\" 100000").await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 65536 octets\"\r\n"
    );
    assert_eq!(
        c.cmd("SETACTIVE \"\"").await,
        "OK \"All scripts deactivated\"\r\n"
    );
    assert_eq!(
        c.cmd("DELETESCRIPT \"filters\"").await,
        "OK \"Script deleted\"\r\n"
    );
    assert_eq!(
        c.cmd("DELETESCRIPT \"filters\"").await,
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    let left = env.store.list_sieve_scripts(env.account.id).await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["spare"]
    );
    assert_eq!(c.cmd("NOOP \"t1\"").await, "OK (TAG \"t1\") \"Done\"\r\n");
    assert_eq!(
        c.cmd("UNAUTHENTICATE").await,
        "OK \"Unauthenticate completed\"\r\n"
    );
    assert_eq!(c.cmd("LISTSCRIPTS").await, "NO \"Authenticate first\"\r\n");
    assert_eq!(c.cmd("LOGOUT").await, "OK \"Logout completed\"\r\n");
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_login_by_continuations() {
    let dir = tempfile::tempdir().unwrap();
    let env = start(dir.path(), ManageSieveConfig::default()).await;
    let (mut c, greeting) = Client::connect_tls(env.implicit, &env.cert).await;
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    assert!(greeting.contains("\"SASL\" \"SCRAM-SHA-256 PLAIN LOGIN\"\r\n"));
    assert_eq!(
        c.login(USER, "wrong password").await,
        "NO \"Authentication failed\"\r\n"
    );
    // LOGIN: challenges as strings, answers as a quoted string and a literal.
    c.send(b"AUTHENTICATE \"LOGIN\"\r\n").await;
    assert_eq!(c.raw.line().await, format!("\"{}\"\r\n", b64("Username:")));
    c.send(format!("\"{}\"\r\n", b64(USER)).as_bytes()).await;
    assert_eq!(c.raw.line().await, format!("\"{}\"\r\n", b64("Password:")));
    let p = b64(PASS);
    c.send(format!("{{{}+}}\r\n{p}\r\n", p.len()).as_bytes())
        .await;
    assert_eq!(c.response().await, "OK \"Authentication successful\"\r\n");
    assert_eq!(
        c.cmd("LISTSCRIPTS").await,
        "OK \"Listscripts completed\"\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_literals_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ManageSieveConfig {
        max_script_size: 1000,
        max_scripts: 2,
        allow_plaintext_auth_on_loopback: true,
        ..ManageSieveConfig::default()
    };
    let env = start(dir.path(), cfg).await;
    let (mut c, _) = Client::connect(env.starttls).await;
    assert_eq!(
        c.login(USER, PASS).await,
        "OK \"Authentication successful\"\r\n"
    );
    // Read and dropped, never stored, and the session goes on.
    let big = "#".repeat(5000);
    c.send(format!("PUTSCRIPT \"big\" {{5000+}}\r\n{big}\r\n").as_bytes())
        .await;
    assert_eq!(
        c.response().await,
        "NO (QUOTA/MAXSIZE) \"Script larger than the maximum of 1000 octets\"\r\n"
    );
    assert_eq!(c.cmd("NOOP").await, "OK \"Done\"\r\n");
    // The store's count bound and the configured one.
    for n in ["a", "b"] {
        assert_eq!(
            c.cmd(&format!("PUTSCRIPT \"{n}\" \"keep;\"")).await,
            "OK \"Script stored\"\r\n"
        );
    }
    assert_eq!(
        c.cmd("PUTSCRIPT \"c\" \"keep;\"").await,
        "NO (QUOTA/MAXSCRIPTS) \"At most 2 scripts per account\"\r\n"
    );
    assert!(
        env.store
            .list_sieve_scripts(env.account.id)
            .await
            .unwrap()
            .len()
            == 2
    );
    // An absurd announcement is not read at all: BYE and close.
    c.send(b"PUTSCRIPT \"x\" {4000000000+}\r\n").await;
    assert_eq!(
        c.response().await,
        "BYE (QUOTA/MAXSIZE) \"Literal of 4000000000 octets refused, closing connection\"\r\n"
    );
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_throttled_with_trylater() {
    let dir = tempfile::tempdir().unwrap();
    let dircfg = DirectoryConfig {
        auth_fail_delay_base: Duration::from_millis(10),
        auth_fail_max_delay: Duration::from_millis(50),
        auth_ip_lockout_after: 3,
        auth_account_lockout_after: 3,
        auth_lockout: Duration::from_secs(60),
        ..DirectoryConfig::default()
    };
    let cfg = ManageSieveConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ManageSieveConfig::default()
    };
    let env = start_with(dir.path(), cfg, dircfg).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (mut c, _) = Client::connect(env.starttls).await;
        codes.push(c.login(USER, "wrong-password").await);
    }
    assert_eq!(codes[0], "NO \"Authentication failed\"\r\n");
    assert!(
        codes
            .last()
            .unwrap()
            .starts_with("NO (TRYLATER) \"Too many failed logins"),
        "{codes:?}"
    );
    // Even the right password is refused while locked out.
    let (mut c, _) = Client::connect(env.starttls).await;
    assert!(c.login(USER, PASS).await.starts_with("NO (TRYLATER)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_bye_to_idle_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let env = start(dir.path(), ManageSieveConfig::default()).await;
    let (c, _) = Client::connect(env.starttls).await;
    let (mut c, _) = c.starttls(&env.cert).await;
    assert_eq!(
        c.login(USER, PASS).await,
        "OK \"Authentication successful\"\r\n"
    );
    let server = env.server;
    let stop = tokio::spawn(async move { server.shutdown(Duration::from_secs(5)).await });
    assert_eq!(
        c.response().await,
        "BYE (TRYLATER) \"Server shutting down\"\r\n"
    );
    stop.await.unwrap();
}
