//! Implicit TLS, STARTTLS, protocol versions and certificate reload, over
//! real loopback sockets with rustls and `openssl s_client` as clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_net::TlsMode;

#[tokio::test]
async fn implicit_tls_rustls_tls13_and_tls12() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, false, limits()).await;

    for (versions, expect) in [
        (vec![&rustls::version::TLS13], "TLSv1.3 TLS13_"),
        (
            vec![&rustls::version::TLS12],
            "TLSv1.2 TLS_ECDHE_ECDSA_WITH_",
        ),
    ] {
        let tcp = TcpStream::connect(r.addr).await.unwrap();
        let tls = tls_connect(tcp, client_config(&[cert.der()], &versions))
            .await
            .unwrap();
        let mut c = Client::new(tls);
        assert_eq!(c.line().await, "+OK hello\r\n");
        let info = c.cmd("INFO").await;
        assert!(info.contains(expect), "{info}");
        assert!(info.contains("peer=127.0.0.1:"), "{info}");
        assert_eq!(c.cmd("QUIT").await, "+OK bye\r\n");
    }
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn implicit_tls_with_openssl_s_client() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, false, limits()).await;
    let out = s_client(&["-connect", &r.addr.to_string()], "INFO\nQUIT\n").await;
    assert!(out.contains("+OK hello"), "{out}");
    assert!(out.contains("tls=TLSv1.3"), "{out}");
    assert!(out.contains("+OK bye"), "{out}");

    let out = s_client(
        &["-connect", &r.addr.to_string(), "-tls1_2"],
        "INFO\nQUIT\n",
    )
    .await;
    assert!(out.contains("tls=TLSv1.2"), "{out}");
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn starttls_with_openssl_s_client() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::StartTls, false, limits()).await;
    let out = s_client(
        &["-connect", &r.addr.to_string(), "-starttls", "pop3"],
        "INFO\nQUIT\n",
    )
    .await;
    assert!(out.contains("tls=TLSv1.3"), "{out}");
    assert!(out.contains("+OK bye"), "{out}");
    assert_eq!(r.handler.seen(), vec!["STLS", "INFO", "QUIT"]);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn starttls_with_rustls_and_state() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::StartTls, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    assert_eq!(c.line().await, "+OK hello\r\n");
    assert!(c.cmd("INFO").await.contains("tls=plain"));
    assert_eq!(c.cmd("STARTTLS").await, "+OK begin TLS\r\n");
    let tls = tls_connect(
        c.into_inner(),
        client_config(&[cert.der()], &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    let mut c = Client::new(tls);
    assert!(c.cmd("INFO").await.contains("tls=TLSv1.3"));
    // A second STARTTLS inside TLS is refused.
    assert_eq!(c.cmd("STARTTLS").await, "-ERR no TLS\r\n");
    drop(c);
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// CVE-2011-0411: bytes sent in the same packet as STARTTLS must never be
/// read as if they had arrived over TLS.
#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::StartTls, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    assert_eq!(c.line().await, "+OK hello\r\n");
    c.send(b"STARTTLS\r\nINJECTED\r\nINFO\r\n").await;
    assert_eq!(c.line().await, "+OK begin TLS\r\n");
    let tls = tls_connect(
        c.into_inner(),
        client_config(&[cert.der()], &[&rustls::version::TLS13]),
    )
    .await
    .expect("handshake must succeed: the pipelined bytes were buffered, then dropped");
    let mut c = Client::new(tls);
    assert!(c.cmd("INFO").await.contains("tls=TLSv1.3"));
    assert_eq!(c.cmd("QUIT").await, "+OK bye\r\n");
    assert_eq!(r.handler.seen(), vec!["STARTTLS", "INFO", "QUIT"]);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn starttls_unavailable_on_plain_listener() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    assert_eq!(c.cmd("STARTTLS").await, "-ERR no TLS\r\n");
    drop(c);
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// TLS 1.0 and 1.1 are refused by the server itself: openssl is told to
/// try them at security level 0 (so the client really sends the hello) and
/// must receive the server's protocol_version alert.
#[tokio::test]
async fn tls10_and_tls11_refused_by_openssl() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, false, limits()).await;
    for flag in ["-tls1", "-tls1_1"] {
        let out = s_client(
            &[
                "-connect",
                &r.addr.to_string(),
                flag,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ],
            "INFO\n",
        )
        .await;
        // The client really sent its hello, and got back exactly one
        // 7-byte record: the server's fatal alert (rustls answers a hello
        // without TLS 1.2+ with handshake_failure).
        assert!(
            !out.contains("written 0 bytes"),
            "{flag}: openssl did not send a hello:\n{out}"
        );
        assert!(
            out.contains("has read 7 bytes")
                && (out.contains("alert handshake failure")
                    || out.contains("alert protocol version")),
            "{flag}: expected the server's fatal alert:\n{out}"
        );
        assert!(out.contains("Cipher is (NONE)"), "{out}");
        assert!(!out.contains("+OK hello"), "{out}");
    }
    assert!(r.handler.seen().is_empty());
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// Independent of the local openssl build: a hand-made TLS 1.1 ClientHello
/// gets a fatal alert (handshake_failure, 40, from rustls; protocol_version,
/// 70, would do as well) and nothing else.
#[tokio::test]
async fn raw_tls10_tls11_client_hello_gets_fatal_alert() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, false, limits()).await;
    for minor in [1u8, 2] {
        let mut tcp = TcpStream::connect(r.addr).await.unwrap();
        tcp.write_all(&client_hello(minor)).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
        assert_eq!(buf.len(), 7, "expected exactly one alert record: {buf:?}");
        assert_eq!(buf[0], 0x15, "not an alert record: {buf:?}");
        assert_eq!(buf[5], 2, "alert not fatal: {buf:?}");
        assert!([40, 70].contains(&buf[6]), "unexpected alert: {buf:?}");
    }
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// A minimal ClientHello offering only TLS 1.`minor - 1` (0x0301 = 1.0,
/// 0x0302 = 1.1) with two classic CBC suites.
fn client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![3, minor];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0x00, 0x35]); // suites
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut hs = vec![1, 0, 0, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test]
async fn failed_handshake_does_not_stop_listener() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, false, limits()).await;
    let mut tcp = TcpStream::connect(r.addr).await.unwrap();
    tcp.write_all(b"EHLO plaintext on a TLS port\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "server kept a garbage handshake open");
    assert!(!buf.starts_with(b"+OK"), "{buf:?}");
    // Client trusting another certificate fails too.
    let other = test_cert("other.test");
    let tcp = TcpStream::connect(r.addr).await.unwrap();
    assert!(
        tls_connect(
            tcp,
            client_config(&[other.der()], &[&rustls::version::TLS13])
        )
        .await
        .is_err()
    );
    // And the listener still serves.
    let tcp = TcpStream::connect(r.addr).await.unwrap();
    let tls = tls_connect(
        tcp,
        client_config(&[cert.der()], &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    let mut c = Client::new(tls);
    assert_eq!(c.line().await, "+OK hello\r\n");
    drop(c);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cert_reload_applies_to_new_handshakes_only() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let old = test_cert("old.test");
    std::fs::write(&cert_path, &old.cert_pem).unwrap();
    std::fs::write(&key_path, &old.key_pem).unwrap();
    let provider = wharf_net::TlsProvider::from_pem_files(&cert_path, &key_path).unwrap();
    let r = serve(Some(provider.clone()), TlsMode::Implicit, false, limits()).await;
    let both = client_config(&[old.der()], &[&rustls::version::TLS13]);

    let tcp = TcpStream::connect(r.addr).await.unwrap();
    let tls = tls_connect(tcp, both.clone()).await.unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], old.der());
    let mut live = Client::new(tls);
    assert_eq!(live.line().await, "+OK hello\r\n");

    // A broken reload keeps the old certificate in service.
    std::fs::write(&key_path, "not a key").unwrap();
    assert!(
        provider
            .reload_from_pem_files(&cert_path, &key_path)
            .is_err()
    );
    {
        let tcp = TcpStream::connect(r.addr).await.unwrap();
        let tls = tls_connect(tcp, both.clone()).await.unwrap();
        assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], old.der());
    }

    let new = test_cert("new.test");
    std::fs::write(&cert_path, &new.cert_pem).unwrap();
    std::fs::write(&key_path, &new.key_pem).unwrap();
    provider
        .reload_from_pem_files(&cert_path, &key_path)
        .unwrap();

    let cfg = client_config(&[old.der(), new.der()], &[&rustls::version::TLS13]);
    {
        let tcp = TcpStream::connect(r.addr).await.unwrap();
        let tls = tls_connect(tcp, cfg).await.unwrap();
        assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], new.der());
    }
    // The client that trusts only the old certificate is now refused.
    let tcp = TcpStream::connect(r.addr).await.unwrap();
    assert!(tls_connect(tcp, both).await.is_err());
    // The live session is untouched.
    assert!(live.cmd("INFO").await.contains("tls=TLSv1.3"));
    drop(live);
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// Runs `openssl s_client` with `stdin` as input (LF turned into CRLF) and
/// returns stdout and stderr together.
async fn s_client(args: &[&str], stdin: &str) -> String {
    let mut full: Vec<String> = vec!["s_client".into(), "-crlf".into(), "-ign_eof".into()];
    full.extend(args.iter().map(|s| s.to_string()));
    let input = stdin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args(&full)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl must be installed");
        {
            use std::io::Write;
            let mut si = child.stdin.take().unwrap();
            // Give the handshake a moment so s_client sends the commands
            // once the session is up (it buffers them anyway).
            std::thread::sleep(Duration::from_millis(300));
            let _ = si.write_all(input.as_bytes());
        }
        child.wait_with_output().unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("openssl s_client hung")
        .unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
