//! TLS-RPT reports posted to an `https:` destination (RFC 8460 §5.3.2), against a TLS server on
//! loopback that records what it was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use wharf_outbound::TrustAnchors;
use wharf_outbound::report_post::{HttpsTarget, post_report};
use wharf_testkit::tls::{TestCert, https_sink};

fn anchors(cert: &TestCert) -> TrustAnchors {
    TrustAnchors::empty()
        .with_pem(cert.cert_pem.as_bytes())
        .unwrap()
}

const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_report_is_posted_gzipped_to_the_verified_host() {
    let cert = TestCert::new("tlsrpt.example.org", &[]);
    let (port, mut got) = https_sink(&cert, "202 Accepted").await;
    let target =
        HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/v1/report?d=1")).unwrap();
    let body = b"\x1f\x8b pretend gzip".to_vec();
    let status = post_report(&target, &LOOPBACK, &anchors(&cert), &body, LIMIT)
        .await
        .unwrap();
    assert_eq!(status, 202);
    let r = got.recv().await.unwrap();
    assert!(
        r.head.starts_with("POST /v1/report?d=1 HTTP/1.1\r\n"),
        "{}",
        r.head
    );
    assert!(
        r.head
            .contains(&format!("\r\nHost: tlsrpt.example.org:{port}\r\n")),
        "{}",
        r.head
    );
    assert!(
        r.head
            .contains("\r\nContent-Type: application/tlsrpt+gzip\r\n"),
        "{}",
        r.head
    );
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn a_refusal_is_an_error() {
    let cert = TestCert::new("tlsrpt.example.org", &[]);
    let (port, _got) = https_sink(&cert, "500 Internal Server Error").await;
    let target = HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/")).unwrap();
    let e = post_report(&target, &LOOPBACK, &anchors(&cert), b"x", LIMIT)
        .await
        .unwrap_err();
    assert!(e.to_string().ends_with("HTTP 500"), "{e}");
    assert!(e.is_temporary());
    let (port, _got) = https_sink(&cert, "403 Forbidden").await;
    let target = HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/")).unwrap();
    let e = post_report(&target, &LOOPBACK, &anchors(&cert), b"x", LIMIT)
        .await
        .unwrap_err();
    assert!(!e.is_temporary(), "{e}");
}

#[tokio::test]
async fn a_certificate_for_another_host_gets_nothing() {
    let cert = TestCert::new("elsewhere.example.org", &[]);
    let (port, mut got) = https_sink(&cert, "200 OK").await;
    let target = HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/")).unwrap();
    let e = post_report(&target, &LOOPBACK, &anchors(&cert), b"secret", LIMIT)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
    // And a certificate nobody vouches for, for the right host, neither.
    let stranger = TestCert::new("tlsrpt.example.org", &[]);
    let (port, _) = https_sink(&stranger, "200 OK").await;
    let target = HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/")).unwrap();
    let e = post_report(&target, &LOOPBACK, &anchors(&cert), b"secret", LIMIT)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(got.try_recv().is_err(), "nothing was posted");
}

#[tokio::test]
async fn an_address_that_refuses_is_skipped() {
    let cert = TestCert::new("tlsrpt.example.org", &[]);
    let (port, mut got) = https_sink(&cert, "200 OK").await;
    let target = HttpsTarget::parse(&format!("https://tlsrpt.example.org:{port}/")).unwrap();
    // ::1 is loopback too; nothing listens there on this port (the server bound 127.0.0.1).
    let addrs = [IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), LOOPBACK[0]];
    assert_eq!(
        post_report(&target, &addrs, &anchors(&cert), b"x", LIMIT)
            .await
            .unwrap(),
        200
    );
    assert_eq!(got.recv().await.unwrap().body, b"x");
}
