//! The SMTP client against a scripted server on loopback: STARTTLS (opportunistic and
//! verified), PIPELINING, per-recipient replies, dot-stuffing, CHUNKING, SMTPUTF8, AUTH,
//! HELO fallback, connection reuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use wharf_outbound::transaction::MessageNeeds;
use wharf_outbound::{
    ClientConfig, ClientError, Credentials, Envelope, EnvelopeRecipient, Notify, Outcome,
    SmtpClient, TlsPolicy, TrustAnchors,
};

fn cfg() -> ClientConfig {
    let mut c = ClientConfig::new("client.a.test");
    c.anchors = TrustAnchors::empty();
    c.command_timeout = Duration::from_secs(10);
    c.data_timeout = Duration::from_secs(10);
    c
}

fn env(sender: &str, rcpts: &[&str]) -> Envelope {
    Envelope {
        sender: sender.into(),
        recipients: rcpts
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.to_string(),
                notify: Notify::default_policy(),
                orcpt: None,
            })
            .collect(),
        envid: None,
        ret: None,
        require_tls: false,
    }
}

const MSG: &[u8] = b"From: a@a.test\r\nTo: b@b.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\nplain\r\n.\r\nend\r\n";

#[tokio::test]
async fn pipelined_starttls_delivery_with_per_recipient_replies() {
    let cert = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        rcpt: Arc::new(|a| {
            if a.starts_with("nobody") {
                "550 5.1.1 no such user".into()
            } else if a.starts_with("later") {
                "451 4.3.0 try later".into()
            } else {
                "250 2.1.5 ok".into()
            }
        }),
        ..FakeConfig::default()
    })
    .await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    let tls = c.tls().cloned().expect("STARTTLS used");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(
        !tls.verified,
        "self-signed, no anchors: encrypted but not verified"
    );
    let out = c
        .send(
            &env("a@a.test", &["b@b.test", "nobody@b.test", "later@b.test"]),
            MSG,
        )
        .await
        .unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }), "{out:?}");
    assert!(
        matches!(&out[1], Outcome::Failed { status, diagnostic } if status == "5.1.1" && diagnostic == "smtp; 550 5.1.1 no such user")
    );
    assert!(matches!(&out[2], Outcome::Deferred { status, .. } if status == "4.3.0"));
    c.quit().await.unwrap();
    let m = st.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0].tls && m[0].pipelined && !m[0].via_bdat);
    assert_eq!(m[0].rcpts, vec!["b@b.test"]);
    assert_eq!(
        m[0].data, MSG,
        "dot-stuffing undone by the server gives the original bytes"
    );
    let cmds = st.commands();
    assert!(
        cmds.iter()
            .any(|c| c.starts_with("MAIL FROM:<a@a.test> SIZE="))
    );
    // EHLO twice (before and after STARTTLS).
    assert_eq!(
        cmds.iter()
            .filter(|c| c.starts_with("EHLO client.a.test"))
            .count(),
        2
    );
}

#[tokio::test]
async fn verified_tls_with_anchor_and_required_verification_without() {
    let cert = TestCert::new("mx.b.test", &[]);
    let (addr, _st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        ..FakeConfig::default()
    })
    .await;
    let mut good = cfg();
    good.anchors = TrustAnchors::empty()
        .with_pem(cert.cert_pem.as_bytes())
        .unwrap();
    good.tls = TlsPolicy::RequiredVerified;
    let c = SmtpClient::connect(addr, "mx.b.test", &good).await.unwrap();
    assert!(c.tls().unwrap().verified);
    c.quit().await.unwrap();
    // Wrong name: verification fails and the policy refuses.
    let err = SmtpClient::connect(addr, "other.test", &good)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    // No anchors at all under RequiredVerified.
    let mut strict = cfg();
    strict.tls = TlsPolicy::RequiredVerified;
    assert!(matches!(
        SmtpClient::connect(addr, "mx.b.test", &strict).await,
        Err(ClientError::Tls(_))
    ));
}

#[tokio::test]
async fn required_tls_refuses_plaintext_server() {
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let mut c = cfg();
    c.tls = TlsPolicy::Required;
    let err = SmtpClient::connect(addr, "mx.b.test", &c)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Tls(_)));
    assert!(matches!(err.outcome(), Outcome::Deferred { ref status, .. } if status == "4.7.5"));
    assert!(!st.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[tokio::test]
async fn chunking_used_when_offered() {
    let (addr, st) = start_fake(FakeConfig {
        extensions: vec!["PIPELINING".into(), "CHUNKING".into(), "8BITMIME".into()],
        ..FakeConfig::default()
    })
    .await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    let body = "From: a@a.test\r\n\r\n.8bit é body\r\n".as_bytes();
    let out = c.send(&env("a@a.test", &["b@b.test"]), body).await.unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    let m = st.messages();
    assert!(m[0].via_bdat);
    assert_eq!(m[0].data, body, "BDAT carries the bytes unstuffed");
    assert!(st.commands().iter().any(|c| c.ends_with("BODY=8BITMIME")));
}

#[tokio::test]
async fn smtputf8_needed_but_not_offered_fails_without_sending() {
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    let e = env("a@a.test", &["jürgen@b.test"]);
    assert!(MessageNeeds::of(&e, b"\r\n").smtputf8);
    let out = c.send(&e, b"Subject: x\r\n\r\ny\r\n").await.unwrap();
    assert!(matches!(&out[0], Outcome::Failed { status, .. } if status == "5.6.7"));
    assert!(!st.commands().iter().any(|c| c.starts_with("MAIL")));
    // The same connection still works for the next message.
    let out = c.send(&env("a@a.test", &["b@b.test"]), MSG).await.unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
}

#[tokio::test]
async fn connection_reused_for_several_messages_and_rset_after_rejection() {
    let (addr, st) = start_fake(FakeConfig {
        rcpt: Arc::new(|a| {
            if a.starts_with("x") {
                "550 5.1.1 no".into()
            } else {
                "250 ok".into()
            }
        }),
        ..FakeConfig::default()
    })
    .await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    for i in 0..3 {
        let out = c.send(&env("a@a.test", &["b@b.test"]), MSG).await.unwrap();
        assert!(matches!(out[0], Outcome::Delivered { .. }), "message {i}");
        assert!(c.reusable());
    }
    // Every recipient refused: DATA got 554 in the pipeline, the client resets and goes on.
    let out = c.send(&env("a@a.test", &["x@b.test"]), MSG).await.unwrap();
    assert!(matches!(out[0], Outcome::Failed { .. }));
    assert!(c.reusable());
    let out = c.send(&env("a@a.test", &["b@b.test"]), MSG).await.unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    c.quit().await.unwrap();
    assert_eq!(st.connections(), 1);
    assert_eq!(st.messages().len(), 4);
    assert!(st.commands().contains(&"RSET".to_string()));
}

#[tokio::test]
async fn auth_plain_over_tls_and_never_in_plaintext() {
    let cert = TestCert::new("relay.test", &[]);
    let (addr, st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        auth: Some(("user@a.test".into(), "s3cret pass".into())),
        ..FakeConfig::default()
    })
    .await;
    let mut c = cfg();
    c.auth = Some(Credentials {
        username: "user@a.test".into(),
        password: "s3cret pass".into(),
    });
    let mut cl = SmtpClient::connect(addr, "relay.test", &c).await.unwrap();
    let out = cl
        .send(&env("user@a.test", &["b@b.test"]), MSG)
        .await
        .unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    assert_eq!(st.messages()[0].authed.as_deref(), Some("user@a.test"));
    // Wrong password: refused, and a deferral (our configuration, not the recipient's fault).
    c.auth = Some(Credentials {
        username: "user@a.test".into(),
        password: "nope".into(),
    });
    let err = SmtpClient::connect(addr, "relay.test", &c)
        .await
        .err()
        .unwrap();
    assert!(matches!(err.outcome(), Outcome::Deferred { .. }), "{err:?}");
    // Without TLS the client refuses to send credentials at all.
    c.tls = TlsPolicy::Disabled;
    let before = st
        .commands()
        .iter()
        .filter(|c| c.starts_with("AUTH"))
        .count();
    assert!(matches!(
        SmtpClient::connect(addr, "relay.test", &c).await,
        Err(ClientError::Auth(_))
    ));
    assert_eq!(
        st.commands()
            .iter()
            .filter(|c| c.starts_with("AUTH"))
            .count(),
        before
    );
}

#[tokio::test]
async fn auth_login_when_plain_missing() {
    let cert = TestCert::new("relay.test", &[]);
    let (addr, st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        auth: Some(("u".into(), "p".into())),
        auth_mechs: "LOGIN".into(),
        ..FakeConfig::default()
    })
    .await;
    let mut c = cfg();
    c.auth = Some(Credentials {
        username: "u".into(),
        password: "p".into(),
    });
    let mut cl = SmtpClient::connect(addr, "relay.test", &c).await.unwrap();
    assert_eq!(cl.capabilities().auth, vec!["LOGIN".to_string()]);
    let out = cl.send(&env("u@a.test", &["b@b.test"]), MSG).await.unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    assert!(st.commands().contains(&"AUTH LOGIN".to_string()));
    assert_eq!(st.messages()[0].authed.as_deref(), Some("u"));
}

#[tokio::test]
async fn helo_fallback_and_data_rejection() {
    let (addr, st) = start_fake(FakeConfig {
        reject_ehlo: true,
        final_reply: "452 4.3.1 insufficient storage".into(),
        ..FakeConfig::default()
    })
    .await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    assert!(!c.capabilities().esmtp && !c.capabilities().pipelining);
    let out = c
        .send(&env("a@a.test", &["b@b.test", "c@b.test"]), MSG)
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, Outcome::Deferred { status, .. } if status == "4.3.1")),
        "{out:?}"
    );
    let cmds = st.commands();
    assert!(cmds.contains(&"HELO client.a.test".to_string()));
    assert!(
        cmds.contains(&"MAIL FROM:<a@a.test>".to_string()),
        "no ESMTP parameters to a HELO server"
    );
}

#[tokio::test]
async fn greeting_refusal_and_dead_port() {
    let (addr, _st) = start_fake(FakeConfig {
        greeting: "554 5.7.1 go away".into(),
        ..FakeConfig::default()
    })
    .await;
    let err = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .err()
        .unwrap();
    assert!(matches!(err.outcome(), Outcome::Failed { .. }));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let err = SmtpClient::connect(dead, "mx.b.test", &cfg())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Connect { .. }));
    assert!(matches!(err.outcome(), Outcome::Deferred { ref status, .. } if status == "4.4.2"));
}

#[tokio::test]
async fn starttls_refused_continues_in_plaintext_only_when_opportunistic() {
    let (addr, st) = start_fake(FakeConfig {
        refuse_starttls: true,
        ..FakeConfig::default()
    })
    .await;
    let mut c = SmtpClient::connect(addr, "mx.b.test", &cfg())
        .await
        .unwrap();
    assert!(c.tls().is_none());
    let out = c.send(&env("a@a.test", &["b@b.test"]), MSG).await.unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    assert!(!st.messages()[0].tls);
    let mut strict = cfg();
    strict.tls = TlsPolicy::Required;
    let err = SmtpClient::connect(addr, "mx.b.test", &strict)
        .await
        .err()
        .unwrap();
    assert!(matches!(err.outcome(), Outcome::Deferred { .. }), "{err:?}");
    assert_eq!(st.messages().len(), 1);
}
