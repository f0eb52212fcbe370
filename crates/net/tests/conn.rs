//! `Conn` over an in-memory pipe: line framing and its limits, literals,
//! bounded buffers, idle timeout, and STARTTLS discarding buffered input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use wharf_net::{Conn, Line, TlsMode, TlsProvider};

fn addr() -> SocketAddr {
    "127.0.0.1:1".parse().unwrap()
}

fn pipe(mode: TlsMode, tls: Option<TlsProvider>) -> (Conn, DuplexStream) {
    let (server, client) = duplex(64 * 1024);
    (
        Conn::from_stream(server, addr(), addr(), "pipe", mode, tls),
        client,
    )
}

#[tokio::test]
async fn lines_crlf_lf_and_eof() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    client.write_all(b"A\r\nB\nC").await.unwrap();
    drop(client);
    assert_eq!(
        conn.read_line(10).await.unwrap(),
        Line::Complete(b"A\r\n".to_vec())
    );
    assert_eq!(
        conn.read_line(10).await.unwrap(),
        Line::Complete(b"B\n".to_vec())
    );
    assert_eq!(conn.read_line(10).await.unwrap(), Line::Eof);
    assert_eq!(conn.read_line(10).await.unwrap(), Line::Eof);
}

#[tokio::test]
async fn unterminated_tail_of_max_bytes_is_too_long() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    client.write_all(b"ok\nabc").await.unwrap();
    drop(client);
    assert_eq!(
        conn.read_line(3).await.unwrap(),
        Line::Complete(b"ok\n".to_vec())
    );
    assert_eq!(conn.read_line(3).await.unwrap(), Line::TooLong);
    assert_eq!(conn.read_line(3).await.unwrap(), Line::Eof);
}

#[tokio::test]
async fn line_limit_is_inclusive_of_terminator() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    client
        .write_all(b"12345678\r\n123456789\r\nok\r\n")
        .await
        .unwrap();
    assert_eq!(
        conn.read_line(10).await.unwrap(),
        Line::Complete(b"12345678\r\n".to_vec())
    );
    assert_eq!(conn.read_line(10).await.unwrap(), Line::TooLong);
    assert_eq!(
        conn.read_line(10).await.unwrap(),
        Line::Complete(b"ok\r\n".to_vec())
    );
}

#[tokio::test]
async fn too_long_line_never_buffered() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    let writer = tokio::spawn(async move {
        // 1 MiB without LF, then a good line.
        let chunk = vec![b'z'; 8192];
        for _ in 0..128 {
            client.write_all(&chunk).await.unwrap();
        }
        client.write_all(b"\r\nNEXT\r\n").await.unwrap();
        client
    });
    assert_eq!(conn.read_line(1000).await.unwrap(), Line::TooLong);
    assert!(
        conn.buffer_capacity() <= 8192,
        "buffer grew to {}",
        conn.buffer_capacity()
    );
    assert_eq!(
        conn.read_line(1000).await.unwrap(),
        Line::Complete(b"NEXT\r\n".to_vec())
    );
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn cancelled_discard_of_long_line_resumes() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    client.write_all(&[b'x'; 100]).await.unwrap();
    // The line is already known to be too long; the read waits for its LF.
    let r = tokio::time::timeout(Duration::from_millis(50), conn.read_line(10)).await;
    assert!(r.is_err(), "{r:?}");
    client
        .write_all(b"QUIT tail of the long line\r\nNOOP\r\n")
        .await
        .unwrap();
    assert_eq!(conn.read_line(10).await.unwrap(), Line::TooLong);
    assert_eq!(
        conn.read_line(10).await.unwrap(),
        Line::Complete(b"NOOP\r\n".to_vec())
    );
}

#[tokio::test]
async fn literals_exact_and_discarded() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    let mut payload = b"{5}\r\nhello".to_vec();
    payload.extend(std::iter::repeat_n(b'x', 200_000));
    payload.extend_from_slice(b"after\r\n");
    let w = tokio::spawn(async move {
        client.write_all(&payload).await.unwrap();
        client
    });
    assert_eq!(
        conn.read_line(100).await.unwrap(),
        Line::Complete(b"{5}\r\n".to_vec())
    );
    assert_eq!(conn.read_exact_bytes(5).await.unwrap().unwrap(), b"hello");
    assert!(conn.discard_exact(100_000).await.unwrap());
    let rest = conn.read_exact_bytes(100_000).await.unwrap().unwrap();
    assert!(rest.iter().all(|&b| b == b'x'));
    assert!(conn.buffer_capacity() <= 64 * 1024);
    assert_eq!(
        conn.read_line(100).await.unwrap(),
        Line::Complete(b"after\r\n".to_vec())
    );
    drop(w.await.unwrap());
    assert_eq!(conn.read_exact_bytes(3).await.unwrap(), None);
    assert!(!conn.discard_exact(3).await.unwrap());
}

#[tokio::test]
async fn announced_huge_literal_costs_only_what_arrives() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    client.write_all(b"abc").await.unwrap();
    drop(client);
    // A client claiming 4 GiB and sending 3 bytes must not make us allocate.
    assert_eq!(conn.read_exact_bytes(4 << 30).await.unwrap(), None);
}

#[tokio::test]
async fn fill_buffer_consume_and_cap() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    conn.set_max_buffer(10);
    client.write_all(b"0123456789abcdef").await.unwrap();
    let mut total = 0;
    while total < 10 {
        total += conn.fill().await.unwrap();
    }
    assert_eq!(conn.buffer(), b"0123456789");
    let err = conn.fill().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    conn.consume(4);
    assert_eq!(conn.buffer(), b"456789");
    assert_eq!(conn.fill().await.unwrap(), 4);
    assert_eq!(conn.buffer(), b"456789abcd");
    conn.consume(100);
    assert_eq!(conn.buffer(), b"");
}

#[tokio::test]
async fn idle_timeout_on_read() {
    let (mut conn, _client) = pipe(TlsMode::None, None);
    conn.set_idle_timeout(Duration::from_millis(50));
    assert_eq!(conn.fill().await.unwrap_err().kind(), ErrorKind::TimedOut);
    assert_eq!(
        conn.read_line(10).await.unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    // The shutdown signal of a stand-alone connection does not fire.
    let mut sig = conn.shutdown_signal();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sig.changed())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn write_to_a_client_that_does_not_read_times_out() {
    let (server, _client) = duplex(64);
    let mut conn = Conn::from_stream(server, addr(), addr(), "pipe", TlsMode::None, None);
    conn.set_idle_timeout(Duration::from_millis(50));
    let err = conn.write_all(&[b'x'; 4096]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[tokio::test]
async fn zero_idle_timeout_means_no_limit() {
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    conn.set_idle_timeout(Duration::ZERO);
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.write_all(b"late\r\n").await.unwrap();
        client
    });
    assert_eq!(
        conn.read_line(100).await.unwrap(),
        Line::Complete(b"late\r\n".to_vec())
    );
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn start_tls_refused_without_starttls_listener() {
    let cert = test_cert("mail.test");
    let (mut conn, _c) = pipe(TlsMode::None, Some(cert.provider()));
    assert!(!conn.starttls_available());
    assert_eq!(
        conn.start_tls().await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let (mut conn, _c) = pipe(TlsMode::StartTls, None);
    assert!(!conn.starttls_available());
    assert_eq!(
        conn.start_tls().await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn start_tls_drops_buffered_plaintext() {
    let cert = test_cert("mail.test");
    let (mut conn, mut client) = pipe(TlsMode::StartTls, Some(cert.provider()));
    assert!(conn.starttls_available());
    client
        .write_all(b"STARTTLS\r\nRCPT TO:<evil@example.com>\r\n")
        .await
        .unwrap();
    assert_eq!(
        conn.read_line(100).await.unwrap(),
        Line::Complete(b"STARTTLS\r\n".to_vec())
    );
    assert!(
        !conn.buffer().is_empty(),
        "the injected command is buffered"
    );
    let cfg = client_config(&[cert.der()], &[&rustls::version::TLS13]);
    let (server, client) = tokio::join!(conn.start_tls(), tls_connect(client, cfg));
    server.unwrap();
    let mut client = client.unwrap();
    assert!(conn.buffer().is_empty());
    assert!(conn.is_tls() && !conn.starttls_available());
    assert_eq!(conn.tls_info().unwrap().version, "TLSv1.3");
    client.write_all(b"EHLO after\r\n").await.unwrap();
    assert_eq!(
        conn.read_line(100).await.unwrap(),
        Line::Complete(b"EHLO after\r\n".to_vec())
    );
    conn.write_all(b"250 ok\r\n").await.unwrap();
    let mut buf = [0u8; 8];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"250 ok\r\n");
}

#[tokio::test]
async fn failed_start_tls_leaves_connection_unusable() {
    let cert = test_cert("mail.test");
    let (mut conn, mut client) = pipe(TlsMode::StartTls, Some(cert.provider()));
    let (r, _) = tokio::join!(conn.start_tls(), async {
        client
            .write_all(b"this is not TLS at all\r\n")
            .await
            .unwrap();
    });
    assert!(r.is_err());
    assert!(!conn.is_tls());
    assert!(conn.write_all(b"x").await.is_err());
    assert!(conn.read_line(10).await.is_err());
}

/// Reference framing: what `read_line(max)` must return for `input`.
fn model(input: &[u8], max: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..=i];
        out.push(if line.len() <= max {
            Line::Complete(line.to_vec())
        } else {
            Line::TooLong
        });
        rest = &rest[i + 1..];
    }
    // An unterminated tail of max bytes or more cannot become a line that
    // fits (its LF would make it longer than max): already too long.
    if rest.len() >= max {
        out.push(Line::TooLong);
    }
    out.push(Line::Eof);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn read_line_matches_model(
        input in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..3000),
        chunks in proptest::collection::vec(1usize..700, 1..20),
        max in 1usize..400,
        cancel in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(async {
            let (mut conn, mut client) = pipe(TlsMode::None, None);
            let data = input.clone();
            let writer = tokio::spawn(async move {
                let mut off = 0;
                let mut i = 0;
                while off < data.len() {
                    let n = chunks[i % chunks.len()].min(data.len() - off);
                    client.write_all(&data[off..off + n]).await.unwrap();
                    off += n;
                    i += 1;
                    tokio::task::yield_now().await;
                }
            });
            let mut got = Vec::new();
            loop {
                // Race every read against a yield, as sessions race reads
                // against shutdown signals: losing the race must not lose
                // or corrupt input.
                let l = if cancel {
                    tokio::select! {
                        l = conn.read_line(max) => l.unwrap(),
                        _ = tokio::task::yield_now() => continue,
                    }
                } else {
                    conn.read_line(max).await.unwrap()
                };
                assert!(conn.buffer_capacity() <= max.max(4096) * 2);
                let eof = l == Line::Eof;
                got.push(l);
                if eof {
                    break;
                }
            }
            writer.await.unwrap();
            got
        });
        prop_assert_eq!(got, model(&input, max));
    }
}

/// An idle connection costs its struct and a small buffer, not a process.
#[tokio::test]
async fn idle_connection_is_small() {
    assert!(
        std::mem::size_of::<Conn>() <= 512,
        "Conn is {} bytes",
        std::mem::size_of::<Conn>()
    );
    let (mut conn, mut client) = pipe(TlsMode::None, None);
    for _ in 0..100 {
        client.write_all(b"A0001 NOOP\r\n").await.unwrap();
        assert!(matches!(
            conn.read_line(8192).await.unwrap(),
            Line::Complete(_)
        ));
    }
    assert!(conn.buffer_capacity() <= 8192, "{}", conn.buffer_capacity());
    // After one long line the memory is given back.
    let mut long = vec![b'y'; 60_000];
    long.extend_from_slice(b"\r\n");
    let w = tokio::spawn(async move {
        client.write_all(&long).await.unwrap();
        client
    });
    assert!(matches!(conn.read_line(65536).await.unwrap(), Line::Complete(l) if l.len() == 60_002));
    assert!(conn.buffer_capacity() <= 4096, "{}", conn.buffer_capacity());
    drop(w.await.unwrap());
}
