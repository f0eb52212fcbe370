//! Transcripts: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE, ENABLE, ID.

mod common;
use base64::Engine;
use common::*;
use wharf_imap::{ImapConfig, Next};

#[tokio::test]
async fn greeting_and_capability_before_tls() {
    let env = env().await;
    let mut t = T::new(&env, false, ImapConfig::default());
    let g = String::from_utf8(t.s.greeting()).unwrap();
    assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"), "{g}");
    assert!(g.contains("STARTTLS") && g.contains("LOGINDISABLED"), "{g}");
    assert!(!g.contains("AUTH=PLAIN"), "{g}");
    let r = t.cmd("a CAPABILITY").await;
    assert!(r.starts_with("* CAPABILITY IMAP4rev1 IMAP4rev2"), "{r}");
    assert!(r.ends_with("a OK CAPABILITY completed\r\n"), "{r}");
    assert_eq!(t.cmd("b NOOP").await, "b OK NOOP completed\r\n");
}

#[tokio::test]
async fn login_refused_before_tls() {
    let env = env().await;
    let mut t = T::new(&env, false, ImapConfig::default());
    let r = t.cmd(&format!("a LOGIN {USER} \"{PASS}\"")).await;
    assert_eq!(r, "a NO [PRIVACYREQUIRED] Use STARTTLS before LOGIN\r\n");
    let r = t.cmd("b AUTHENTICATE PLAIN AGFsaWNlAHg=").await;
    assert!(r.starts_with("b NO [PRIVACYREQUIRED]"), "{r}");
    let (r, next) = t.next(b"c STARTTLS\r\n").await;
    assert_eq!(r, "c OK Begin TLS negotiation now\r\n");
    assert_eq!(next, Next::StartTls);
    t.s.tls_started();
    let r = t.cmd("d CAPABILITY").await;
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("LOGINDISABLED") && !r.contains("STARTTLS"),
        "{r}"
    );
    let r = t.cmd(&format!("e LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.starts_with("e OK [CAPABILITY "), "{r}");
    let r = t.cmd("f STARTTLS").await;
    assert!(r.starts_with("f BAD"), "{r}");
}

#[tokio::test]
async fn loopback_opt_in_allows_plaintext_login() {
    let env = env().await;
    let cfg = ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        ..ImapConfig::default()
    };
    let mut t = T::new(&env, false, cfg);
    let r = t.cmd("a CAPABILITY").await;
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("LOGINDISABLED"),
        "{r}"
    );
    let r = t.cmd(&format!("a LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.starts_with("a OK"), "{r}");
}

#[tokio::test]
async fn login_failures_and_commands_needing_auth() {
    let env = env().await;
    let mut t = T::new(&env, true, ImapConfig::default());
    let r = t.cmd("a SELECT INBOX").await;
    assert_eq!(r, "a BAD Command not valid before authentication\r\n");
    let r = t.cmd(&format!("b LOGIN {USER} wrongpassword")).await;
    assert_eq!(r, "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    let r = t.cmd("c FETCH 1 FLAGS").await;
    assert!(r.starts_with("c BAD"), "{r}");
}

#[tokio::test]
async fn authenticate_plain_with_and_without_initial_response() {
    let env = env().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let creds = b64.encode(format!("\0{USER}\0{PASS}"));
    let mut t = T::new(&env, true, ImapConfig::default());
    let r = t.cmd(&format!("a AUTHENTICATE PLAIN {creds}")).await;
    assert!(r.starts_with("a OK [CAPABILITY"), "{r}");

    let mut t = T::new(&env, true, ImapConfig::default());
    let (r, next) = t.next(b"a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(next, Next::Sasl);
    assert!(r.starts_with("+"), "{r}");
    let rep = t.s.sasl_line(format!("{creds}\r\n").as_bytes()).await;
    let out = String::from_utf8(rep.out).unwrap();
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    assert!(t.s.is_authenticated());

    let mut t = T::new(&env, true, ImapConfig::default());
    let (_, next) = t.next(b"a AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(next, Next::Sasl);
    let rep = t.s.sasl_line(b"*\r\n").await;
    assert_eq!(
        String::from_utf8(rep.out).unwrap(),
        "a BAD Authentication aborted\r\n"
    );
    let r = t.cmd("b AUTHENTICATE CRAM-MD5").await;
    assert!(r.starts_with("b NO [CANNOT]"), "{r}");
}

#[tokio::test]
async fn enable_id_logout() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let r = t.cmd("a ENABLE IMAP4rev2 UTF8=ACCEPT FOO").await;
    assert_eq!(
        r,
        "* ENABLED IMAP4rev2 UTF8=ACCEPT\r\na OK ENABLE completed\r\n"
    );
    let r = t.cmd("b ID (\"name\" \"test\" \"version\" NIL)").await;
    assert!(r.starts_with("* ID (\"name\" \"Wharf\""), "{r}");
    let r = t.cmd("b2 ID NIL").await;
    assert!(r.ends_with("b2 OK ID completed\r\n"), "{r}");
    let (r, next) = t.next(b"c LOGOUT\r\n").await;
    assert_eq!(r, "* BYE Logging out\r\nc OK LOGOUT completed\r\n");
    assert_eq!(next, Next::Close);
}

#[tokio::test]
async fn repeated_failures_are_throttled_by_the_directory() {
    let env = env().await;
    let directory = wharf_directory::Directory::new(
        env.store.clone(),
        wharf_directory::DirectoryConfig {
            auth_fail_delay_base: std::time::Duration::ZERO,
            auth_fail_max_delay: std::time::Duration::ZERO,
            auth_ip_lockout_after: 3,
            ..wharf_directory::DirectoryConfig::default()
        },
    );
    let info = wharf_imap::ConnInfo {
        peer: "127.0.0.1".parse().unwrap(),
        tls: true,
        starttls_available: false,
    };
    let mut s = wharf_imap::Session::new(
        std::sync::Arc::new(ImapConfig::default()),
        directory,
        info,
        7,
    );
    for i in 0..3 {
        let r = s
            .handle(format!("a{i} LOGIN {USER} wrong-password\r\n").as_bytes())
            .await;
        assert_eq!(
            String::from_utf8(r.out).unwrap(),
            format!("a{i} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
        );
    }
    let r = s
        .handle(format!("b LOGIN {USER} \"{PASS}\"\r\n").as_bytes())
        .await;
    let out = String::from_utf8(r.out).unwrap();
    assert!(
        out.starts_with("b NO [UNAVAILABLE] Too many failures"),
        "locked out even with the right password: {out}"
    );
}
