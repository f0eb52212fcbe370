//! Transcripts of the AUTHORIZATION state: greeting, CAPA, USER/PASS, AUTH, STLS, APOP, QUIT,
//! every -ERR path and its response code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use wharf_pop3::{AuthFailure, ConnInfo, Input, Pop3Config, Shared};

fn plain_ir(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

#[tokio::test]
async fn greeting_has_no_apop_timestamp() {
    let (mem, _) = sample();
    let t = Transcript::new(&mem);
    assert_eq!(
        t.greeting().await,
        "+OK pop.example.org POP3 server ready\r\n"
    );
}

#[tokio::test]
async fn capa_before_and_after_login() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    let capa = t.send("CAPA").await;
    assert!(capa.starts_with("+OK "));
    assert!(capa.ends_with("\r\n.\r\n"));
    for c in [
        "TOP",
        "UIDL",
        "USER",
        "SASL PLAIN X-FINAL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "EXPIRE 0 USER",
    ] {
        assert!(
            capa.contains(&format!("\r\n{c}\r\n")),
            "missing {c} in {capa}"
        );
    }
    assert!(capa.contains("\r\nIMPLEMENTATION Wharf-"));
    assert!(!capa.contains("STLS"), "no STLS on a plain listener");
    assert!(!capa.contains("LOGIN-DELAY"));
    assert!(!capa.contains("APOP"));
    t.login("alice@example.org").await;
    let capa = t.send("capa").await;
    assert!(capa.contains("\r\nEXPIRE NEVER\r\n"), "{capa}");
    assert!(!capa.contains("\r\nUSER\r\n") && !capa.contains("SASL"));
}

#[tokio::test]
async fn capa_reflects_expire_policy_and_login_delay() {
    let (mem, _) = sample();
    mem.with(|s| s.expire.insert(1, 30));
    let cfg = Pop3Config {
        login_delay_secs: 60,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback(), Arc::new(Shared::new()));
    assert!(t.send("CAPA").await.contains("\r\nLOGIN-DELAY 60\r\n"));
    t.login("alice@example.org").await;
    let capa = t.send("CAPA").await;
    assert!(capa.contains("\r\nEXPIRE 30\r\n"), "{capa}");
}

#[tokio::test]
async fn user_pass_success_and_failures() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    assert_eq!(t.send("PASS x").await, "-ERR USER first\r\n");
    assert_eq!(t.send("USER alice@example.org").await, "+OK send PASS\r\n");
    assert_eq!(
        t.send("PASS wrong").await,
        "-ERR [AUTH] authentication failed\r\n"
    );
    // A failed PASS forgets the user name.
    assert_eq!(
        t.send(&format!("PASS {PASSWORD}")).await,
        "-ERR USER first\r\n"
    );
    assert_eq!(t.send("USER off@example.org").await, "+OK send PASS\r\n");
    assert_eq!(
        t.send(&format!("PASS {PASSWORD}")).await,
        "-ERR [SYS/PERM] account disabled\r\n"
    );
    assert_eq!(t.send("USER alice@example.org").await, "+OK send PASS\r\n");
    let r = t.send(&format!("PASS {PASSWORD}")).await;
    assert_eq!(r, "+OK alice@example.org has 3 messages (105 octets)\r\n");
    assert_eq!(
        t.send("USER bob@example.org").await,
        "-ERR already authenticated\r\n"
    );
    assert_eq!(t.send("PASS x").await, "-ERR already authenticated\r\n");
}

#[tokio::test]
async fn throttled_and_temporary_failures_are_sys_temp() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    mem.with(|s| {
        s.auth_result = Some(AuthFailure::Throttled {
            retry_after: Duration::from_secs(30),
        })
    });
    t.send("USER alice@example.org").await;
    assert_eq!(
        t.send("PASS whatever").await,
        "-ERR [SYS/TEMP] too many failed logins, try again in 30 seconds\r\n"
    );
    mem.with(|s| s.auth_result = Some(AuthFailure::Temporary("db down".into())));
    t.send("USER alice@example.org").await;
    assert_eq!(
        t.send("PASS whatever").await,
        "-ERR [SYS/TEMP] authentication temporarily unavailable\r\n"
    );
    mem.with(|s| s.auth_result = Some(AuthFailure::Malformed("bad".into())));
    t.send("USER alice@example.org").await;
    assert_eq!(
        t.send("PASS whatever").await,
        "-ERR [AUTH] malformed credentials: bad\r\n"
    );
}

#[tokio::test]
async fn plaintext_refused_before_stls() {
    let (mem, _) = sample();
    let info = ConnInfo {
        peer: "127.0.0.1".parse().unwrap(),
        tls: false,
        starttls_available: true,
    };
    let cfg = Pop3Config::default(); // no loopback opt-in
    let mut t = Transcript::with(&mem, cfg, info, Arc::new(Shared::new()));
    let capa = t.send("CAPA").await;
    assert!(capa.contains("\r\nSTLS\r\n"));
    assert!(
        !capa.contains("\r\nUSER\r\n") && !capa.contains("SASL"),
        "{capa}"
    );
    let refusal = "-ERR [AUTH] authentication requires TLS: use STLS first\r\n";
    assert_eq!(t.send("USER alice@example.org").await, refusal);
    assert_eq!(t.send("PASS x").await, refusal);
    assert_eq!(
        t.send(&format!(
            "AUTH PLAIN {}",
            plain_ir("alice@example.org", PASSWORD)
        ))
        .await,
        refusal
    );
    assert_eq!(t.send("STLS").await, "+OK Begin TLS negotiation\r\n");
    assert!(t.tls_requested);
    assert_eq!(t.input(Input::TlsStarted).await, b"");
    let capa = t.send("CAPA").await;
    assert!(!capa.contains("STLS") && capa.contains("\r\nUSER\r\n"));
    assert_eq!(t.send("STLS").await, "-ERR already using TLS\r\n");
    t.login("alice@example.org").await;
}

#[tokio::test]
async fn plaintext_refused_from_non_loopback_even_with_opt_in() {
    let (mem, _) = sample();
    let info = ConnInfo {
        peer: "192.0.2.7".parse().unwrap(),
        tls: false,
        starttls_available: false,
    };
    let mut t = Transcript::with(&mem, config(), info, Arc::new(Shared::new()));
    assert_eq!(
        t.send("USER alice@example.org").await,
        "-ERR [AUTH] authentication requires TLS\r\n"
    );
    assert_eq!(
        t.send("STLS").await,
        "-ERR STLS not available on this port\r\n"
    );
}

#[tokio::test]
async fn auth_plain_with_and_without_initial_response() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    let r = t
        .send(&format!(
            "AUTH PLAIN {}",
            plain_ir("alice@example.org", PASSWORD)
        ))
        .await;
    assert!(r.starts_with("+OK alice@example.org has 3 messages"), "{r}");

    let mut t = Transcript::new(&mem);
    assert_eq!(t.send("AUTH plain").await, "+ \r\n");
    assert_eq!(t.session.max_line(), 8192, "SASL responses may be long");
    let r = t.send(&plain_ir("bob@example.org", PASSWORD)).await;
    assert!(r.starts_with("+OK bob@example.org has 0 messages"), "{r}");
}

#[tokio::test]
async fn auth_error_paths() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    assert_eq!(
        t.send("AUTH").await,
        "+OK SASL mechanisms follow\r\nPLAIN\r\nX-FINAL\r\n.\r\n"
    );
    assert_eq!(
        t.send("AUTH CRAM-MD5").await,
        "-ERR unsupported authentication mechanism\r\n"
    );
    assert_eq!(
        t.send("AUTH PLAIN !!!").await,
        "-ERR [AUTH] invalid base64 in initial response\r\n"
    );
    assert_eq!(
        t.send(&format!(
            "AUTH PLAIN {}",
            plain_ir("alice@example.org", "nope")
        ))
        .await,
        "-ERR [AUTH] authentication failed\r\n"
    );
    assert_eq!(t.send("AUTH PLAIN").await, "+ \r\n");
    assert_eq!(t.send("*").await, "-ERR authentication cancelled\r\n");
    assert_eq!(t.send("AUTH PLAIN").await, "+ \r\n");
    assert_eq!(
        t.send("%%%").await,
        "-ERR [AUTH] invalid base64 in SASL response\r\n"
    );
    assert_eq!(t.send("AUTH PLAIN").await, "+ \r\n");
    assert_eq!(t.too_long().await, "-ERR line too long\r\n");
    // Back in AUTHORIZATION after each failure.
    assert_eq!(t.session.max_line(), 255);
}

#[tokio::test]
async fn auth_with_server_final_waits_for_the_client() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    let r = t
        .send(&format!(
            "AUTH X-FINAL {}",
            plain_ir("alice@example.org", PASSWORD)
        ))
        .await;
    assert_eq!(r, "+ dj1maW5hbA==\r\n");
    let r = t.send("").await;
    assert!(r.starts_with("+OK alice@example.org has 3"), "{r}");

    let mut t = Transcript::new(&mem);
    t.send(&format!(
        "AUTH X-FINAL {}",
        plain_ir("bob@example.org", PASSWORD)
    ))
    .await;
    assert_eq!(t.send("*").await, "-ERR authentication cancelled\r\n");
    assert_eq!(t.session.locked_account(), None);
}

#[tokio::test]
async fn second_login_gets_in_use() {
    let (mem, _) = sample();
    let mut a = Transcript::new(&mem);
    a.login("alice@example.org").await;
    let mut b = Transcript::new(&mem);
    b.send("USER alice@example.org").await;
    assert_eq!(
        b.send(&format!("PASS {PASSWORD}")).await,
        "-ERR [IN-USE] maildrop already locked by another POP3 session\r\n"
    );
    a.send("QUIT").await;
    b.login("alice@example.org").await;
}

#[tokio::test]
async fn store_failures_at_login_are_sys_temp_and_release_the_lock() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    mem.with(|s| s.fail_lock = true);
    t.send("USER alice@example.org").await;
    assert_eq!(
        t.send(&format!("PASS {PASSWORD}")).await,
        "-ERR [SYS/TEMP] maildrop temporarily unavailable\r\n"
    );
    mem.with(|s| {
        s.fail_lock = false;
        s.fail_snapshot = true;
    });
    t.send("USER alice@example.org").await;
    assert_eq!(
        t.send(&format!("PASS {PASSWORD}")).await,
        "-ERR [SYS/TEMP] maildrop temporarily unavailable\r\n"
    );
    assert!(
        mem.with(|s| s.locks.is_empty()),
        "lock released after the failed snapshot"
    );
}

#[tokio::test]
async fn login_delay_is_enforced() {
    let (mem, _) = sample();
    let shared = Arc::new(Shared::new());
    let cfg = Pop3Config {
        login_delay_secs: 3600,
        ..config()
    };
    let mut a = Transcript::with(&mem, cfg.clone(), loopback(), shared.clone());
    a.login("alice@example.org").await;
    a.send("QUIT").await;
    let mut b = Transcript::with(&mem, cfg, loopback(), shared);
    b.send("USER alice@example.org").await;
    assert_eq!(
        b.send(&format!("PASS {PASSWORD}")).await,
        "-ERR [LOGIN-DELAY] minimum time between logins is 3600 seconds\r\n"
    );
    b.login("bob@example.org").await;
}

#[tokio::test]
async fn wrong_state_unknown_and_apop() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    assert_eq!(t.send("APOP alice x").await, "-ERR APOP not supported\r\n");
    assert_eq!(
        t.send("STAT").await,
        "-ERR not valid before authentication\r\n"
    );
    assert_eq!(
        t.send("RETR 1").await,
        "-ERR not valid before authentication\r\n"
    );
    assert_eq!(t.send("FROB").await, "-ERR unknown command\r\n");
    assert_eq!(t.send("USER").await, "-ERR usage: USER name\r\n");
    assert_eq!(
        t.send("QUIT").await,
        "+OK pop.example.org POP3 server signing off\r\n"
    );
    assert!(t.closed);
}

#[tokio::test]
async fn too_many_errors_close_the_connection() {
    let (mem, _) = sample();
    let cfg = Pop3Config {
        max_errors: 3,
        ..config()
    };
    let mut t = Transcript::with(&mem, cfg, loopback(), Arc::new(Shared::new()));
    assert_eq!(t.send("BAD").await, "-ERR unknown command\r\n");
    assert_eq!(t.too_long().await, "-ERR line too long\r\n");
    assert!(!t.closed);
    assert_eq!(
        t.send("BAD").await,
        "-ERR unknown command\r\n-ERR too many errors, closing connection\r\n"
    );
    assert!(t.closed);
}
