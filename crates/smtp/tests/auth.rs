//! AUTH (RFC 4954): where it is offered, the SASL exchange (initial response, challenges, SCRAM's
//! final acknowledgement, abort), failures and their codes, driven through `Session::handle` with
//! an in-memory authenticator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::transcript;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use transcript::{PASSWORD, mx, submission};
use wharf_smtp::Next;

fn plain(user: &str, pass: &str) -> String {
    B64.encode(format!("\0{user}\0{pass}"))
}

#[tokio::test]
async fn refused_on_mx_before_ehlo_and_before_tls() {
    let (mut c, _) = mx().connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "502 5.5.1 AUTH not available on this port\r\n"
    );
    let (mut c, _) = submission(true).connect().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "503 5.5.1 Send EHLO first\r\n");
    c.cmd("HELO c.test").await;
    assert_eq!(c.codes("AUTH PLAIN").await, vec![503], "HELO is not EHLO");
    let (mut c, _) = submission(false).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
}

#[tokio::test]
async fn plain_with_initial_response_then_already_authenticated() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd(&format!(
            "AUTH PLAIN {}",
            plain("alice@example.test", PASSWORD)
        ))
        .await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "503 5.5.1 Already authenticated\r\n"
    );
}

#[tokio::test]
async fn plain_without_initial_response_gets_an_empty_challenge() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "334 \r\n");
    assert_eq!(c.next, Next::AuthResponse);
    assert_eq!(
        c.cmd(&plain("bob@example.test", PASSWORD)).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(c.next, Next::Command);
}

#[tokio::test]
async fn login_mechanism_walks_through_its_challenges() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        c.cmd(&B64.encode("alice@example.test")).await,
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(c.codes(&B64.encode(PASSWORD)).await, vec![235]);
}

#[tokio::test]
async fn server_final_is_a_challenge_and_the_empty_answer_completes_it() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    let r = c
        .cmd(&format!(
            "AUTH SCRAM-SHA-256 {}",
            plain("alice@example.test", PASSWORD)
        ))
        .await;
    assert_eq!(r, format!("334 {}\r\n", B64.encode("v=final")));
    assert_eq!(c.codes("").await, vec![235]);
    assert_eq!(c.codes("MAIL FROM:<alice@example.test>").await, vec![250]);
}

#[tokio::test]
async fn failures_and_their_codes() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd(&format!(
            "AUTH PLAIN {}",
            plain("alice@example.test", "wrong")
        ))
        .await,
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "504 5.5.4 Unrecognized authentication mechanism\r\n"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN !!!").await,
        "501 5.5.2 Invalid base64 in initial response\r\n"
    );
    c.cmd("AUTH LOGIN").await;
    assert_eq!(c.cmd("*").await, "501 5.0.0 Authentication aborted\r\n");
    c.cmd("AUTH LOGIN").await;
    assert_eq!(
        c.cmd("%%%").await,
        "501 5.5.2 Invalid base64 in response\r\n"
    );
    assert_eq!(c.next, Next::Command);
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNl").await,
        "501 5.5.2 Malformed authentication exchange\r\n"
    );
}

#[tokio::test]
async fn sasl_lines_may_be_longer_than_commands_but_not_unbounded() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    c.cmd("AUTH PLAIN").await;
    // 2000 octets: over the 512-octet command limit, within the 12288 of RFC 4954.
    let long = B64.encode(format!("\0alice@example.test\0{}", "x".repeat(1500)));
    assert_eq!(c.codes(&long).await, vec![535]);
    c.cmd("AUTH PLAIN").await;
    let huge = "A".repeat(13000);
    assert_eq!(c.cmd(&huge).await, "500 5.5.2 Line too long\r\n");
    assert_eq!(c.next, Next::Command, "the exchange is over");
}

#[tokio::test]
async fn no_auth_inside_a_transaction_and_tls_forgets_the_login() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    c.login("alice@example.test").await;
    let (mut d, _) = submission(true).connect().await;
    d.cmd("EHLO c.test").await;
    d.login("alice@example.test").await;
    assert_eq!(d.codes("MAIL FROM:<alice@example.test>").await, vec![250]);
    assert_eq!(d.cmd("RSET").await, "250 2.0.0 Ok\r\n",);
    let (mut e, _) = submission(false).connect().await;
    e.cmd("EHLO c.test").await;
    e.cmd("STARTTLS").await;
    e.cmd("EHLO c.test").await;
    e.login("alice@example.test").await;
    assert_eq!(e.codes("MAIL FROM:<alice@example.test>").await, vec![250]);
    assert_eq!(
        e.cmd("AUTH PLAIN").await,
        "503 5.5.1 Already authenticated\r\n"
    );
    let (mut f, _) = submission(true).connect().await;
    f.cmd("EHLO c.test").await;
    // Unauthenticated MAIL is refused, so a transaction cannot exist before AUTH on submission;
    // the check is still there for the state machine.
    assert_eq!(f.codes("MAIL FROM:<alice@example.test>").await, vec![530]);
    assert_eq!(c.codes("MAIL FROM:<alice@example.test>").await, vec![250]);
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "503 5.5.1 Already authenticated\r\n"
    );
}
