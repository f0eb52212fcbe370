//! Listener behaviour over loopback: connection limits, idle timeout, PROXY
//! protocol v2, panicking handlers, bind errors and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_net::proxy::{ProxyAddresses, ProxyCommand, ProxyHeader, encode_proxy_v2};
use wharf_net::{Limits, ListenerSpec, NetError, Server, TlsMode};

fn with(max_connections: usize, max_per_ip: usize) -> Limits {
    Limits {
        max_connections,
        max_per_ip,
        ..limits()
    }
}

/// Waits until the server counts `n` sessions (they are released
/// asynchronously when a client goes away).
async fn sessions(server: &Server, n: usize) {
    let start = Instant::now();
    while server.active_sessions() != n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "expected {n} sessions, have {}",
            server.active_sessions()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn per_ip_limit_answers_too_busy() {
    let r = serve(None, TlsMode::None, false, with(100, 2)).await;
    let mut a = plain_client(r.addr).await;
    let mut b = plain_client(r.addr).await;
    assert_eq!(a.line().await, "+OK hello\r\n");
    assert_eq!(b.line().await, "+OK hello\r\n");
    let mut c = plain_client(r.addr).await;
    assert_eq!(c.rest().await, TOO_BUSY);
    // A slot freed is a slot usable again.
    drop(a);
    sessions(&r.server, 1).await;
    let mut d = plain_client(r.addr).await;
    assert_eq!(d.line().await, "+OK hello\r\n");
    assert_eq!(b.cmd("PING").await, "+OK echo PING\r\n");
    drop((b, d));
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn global_limit_answers_too_busy() {
    let r = serve(None, TlsMode::None, false, with(2, 0)).await;
    let mut a = plain_client(r.addr).await;
    let mut b = plain_client(r.addr).await;
    a.line().await;
    b.line().await;
    let mut c = plain_client(r.addr).await;
    assert_eq!(c.rest().await, TOO_BUSY);
    // Even when the refused client already talks.
    let mut c = plain_client(r.addr).await;
    c.send(b"HELLO\r\nMORE\r\n").await;
    assert_eq!(c.rest().await, TOO_BUSY);
    drop(b);
    sessions(&r.server, 1).await;
    let mut d = plain_client(r.addr).await;
    assert_eq!(d.line().await, "+OK hello\r\n");
    drop((a, d));
    r.server.shutdown(Duration::from_secs(5)).await;
}

/// A reload swaps the limits under running listeners: new connections see the new ones, and
/// sessions already running are neither cut nor re-timed, even above a lowered limit.
#[tokio::test]
async fn swapped_limits_apply_to_new_connections_only() {
    let r = serve(None, TlsMode::None, false, with(100, 1)).await;
    let live = r.server.live_limits();
    let mut a = plain_client(r.addr).await;
    assert_eq!(a.line().await, "+OK hello\r\n");
    let mut refused = plain_client(r.addr).await;
    assert_eq!(refused.rest().await, TOO_BUSY);

    // Raised: a second client of the same address gets in, with the short idle timeout the
    // first session did not get.
    live.set_limits(Limits {
        idle_timeout: Duration::from_millis(300),
        ..with(100, 2)
    });
    let mut b = plain_client(r.addr).await;
    assert_eq!(b.line().await, "+OK hello\r\n");
    assert_eq!(b.rest().await, b"-ERR timeout\r\n");
    sessions(&r.server, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        a.cmd("PING").await,
        "+OK echo PING\r\n",
        "kept its idle timeout"
    );

    // Lowered below what runs: nobody is closed, newcomers are refused.
    let mut c = plain_client(r.addr).await;
    assert_eq!(c.line().await, "+OK hello\r\n");
    live.set_limits(with(1, 0));
    let mut d = plain_client(r.addr).await;
    assert_eq!(d.rest().await, TOO_BUSY);
    assert_eq!(a.cmd("PING").await, "+OK echo PING\r\n");
    assert_eq!(c.cmd("PING").await, "+OK echo PING\r\n");
    drop(c);
    sessions(&r.server, 1).await;
    let mut e = plain_client(r.addr).await;
    assert_eq!(e.rest().await, TOO_BUSY, "still at the new cap of 1");
    drop(a);
    sessions(&r.server, 0).await;
    let mut f = plain_client(r.addr).await;
    assert_eq!(f.line().await, "+OK hello\r\n");
    drop(f);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn too_busy_is_sent_over_tls_on_implicit_listeners() {
    let cert = test_cert("mail.test");
    let r = serve(
        Some(cert.provider()),
        TlsMode::Implicit,
        false,
        with(100, 1),
    )
    .await;
    let cfg = client_config(&[cert.der()], &[&rustls::version::TLS13]);
    let tcp = TcpStream::connect(r.addr).await.unwrap();
    let mut a = Client::new(tls_connect(tcp, cfg.clone()).await.unwrap());
    assert_eq!(a.line().await, "+OK hello\r\n");
    let tcp = TcpStream::connect(r.addr).await.unwrap();
    let mut b = Client::new(tls_connect(tcp, cfg).await.unwrap());
    assert_eq!(b.line().await.as_bytes(), TOO_BUSY);
    drop((a, b));
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn idle_timeout_closes() {
    let r = serve(
        None,
        TlsMode::None,
        false,
        Limits {
            idle_timeout: Duration::from_millis(300),
            ..limits()
        },
    )
    .await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    let t = Instant::now();
    assert_eq!(c.rest().await, b"-ERR timeout\r\n");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    sessions(&r.server, 0).await;
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn long_line_refused_and_session_continues() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    let mut long = vec![b'x'; 10_000];
    long.extend_from_slice(b"\r\nPING\r\n");
    c.send(&long).await;
    assert_eq!(c.line().await, "-ERR too long\r\n");
    assert_eq!(c.line().await, "+OK echo PING\r\n");
    drop(c);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn panicking_handler_does_not_stop_listener() {
    let r = serve(None, TlsMode::None, false, with(100, 1)).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    c.send(b"PANIC\r\n").await;
    assert_eq!(c.rest().await, b"");
    // The per-IP slot was released, and the listener still serves.
    sessions(&r.server, 0).await;
    let mut d = plain_client(r.addr).await;
    assert_eq!(d.line().await, "+OK hello\r\n");
    drop(d);
    r.server.shutdown(Duration::from_secs(5)).await;
}

fn header(src: &str, dst: &str) -> Vec<u8> {
    encode_proxy_v2(&ProxyHeader {
        command: ProxyCommand::Proxy,
        addresses: Some(ProxyAddresses {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        }),
        tlvs: vec![],
    })
}

async fn proxied(addr: SocketAddr, hdr: &[u8]) -> Client<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hdr).await.unwrap();
    Client::new(tcp)
}

#[tokio::test]
async fn proxy_v2_tcp4_and_tcp6_give_real_peer() {
    let r = serve(None, TlsMode::None, true, limits()).await;
    let mut c = proxied(r.addr, &header("203.0.113.5:40000", "198.51.100.1:25")).await;
    assert_eq!(c.line().await, "+OK hello\r\n");
    assert!(c.cmd("INFO").await.contains("peer=203.0.113.5:40000"));
    drop(c);

    let mut c6 = proxied(r.addr, &header("[2001:db8::7]:5555", "[2001:db8::1]:25")).await;
    assert_eq!(c6.line().await, "+OK hello\r\n");
    assert!(c6.cmd("INFO").await.contains("peer=[2001:db8::7]:5555"));

    // Header and first command in one write: the command survives.
    let mut hdr = header("192.0.2.9:1000", "192.0.2.1:25");
    hdr.extend_from_slice(b"INFO\r\n");
    let mut c = proxied(r.addr, &hdr).await;
    assert_eq!(c.line().await, "+OK hello\r\n");
    assert!(c.line().await.contains("peer=192.0.2.9:1000"));
    drop(c);

    // LOCAL (health check) keeps the socket's address.
    let local = encode_proxy_v2(&ProxyHeader {
        command: ProxyCommand::Local,
        addresses: None,
        tlvs: vec![],
    });
    let mut c = proxied(r.addr, &local).await;
    c.line().await;
    assert!(c.cmd("INFO").await.contains("peer=127.0.0.1:"));
    drop((c, c6));
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn proxy_v2_garbage_is_closed_without_greeting() {
    let r = serve(None, TlsMode::None, true, limits()).await;
    for junk in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..],
        b"EHLO example.com\r\n\r\n\r\n",
        &[
            0x0d, 0x0a, 0x0d, 0x0a, 0, 0x0d, 0x0a, b'Q', b'U', b'I', b'T', 0x0a, 0x31, 0x11, 0, 0,
        ],
    ] {
        let mut c = proxied(r.addr, junk).await;
        assert_eq!(c.rest().await, b"", "{junk:?}");
    }
    assert!(r.handler.seen().is_empty());
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn proxy_v2_real_address_is_what_limits_count() {
    let r = serve(None, TlsMode::None, true, with(100, 1)).await;
    let mut a = proxied(r.addr, &header("203.0.113.5:1", "192.0.2.1:25")).await;
    let mut b = proxied(r.addr, &header("203.0.113.6:1", "192.0.2.1:25")).await;
    assert_eq!(a.line().await, "+OK hello\r\n");
    assert_eq!(b.line().await, "+OK hello\r\n");
    let mut c = proxied(r.addr, &header("203.0.113.5:2", "192.0.2.1:25")).await;
    assert_eq!(c.rest().await, TOO_BUSY);
    drop((a, b));
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn proxy_v2_then_implicit_tls() {
    let cert = test_cert("mail.test");
    let r = serve(Some(cert.provider()), TlsMode::Implicit, true, limits()).await;
    let mut tcp = TcpStream::connect(r.addr).await.unwrap();
    tcp.write_all(&header("[2001:db8::9]:7000", "[2001:db8::1]:993"))
        .await
        .unwrap();
    let tls = tls_connect(
        tcp,
        client_config(&[cert.der()], &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    let mut c = Client::new(tls);
    c.line().await;
    let info = c.cmd("INFO").await;
    assert!(
        info.contains("peer=[2001:db8::9]:7000") && info.contains("TLSv1.3"),
        "{info}"
    );
    drop(c);
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_drains_sessions_that_listen_for_the_signal() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    assert_eq!(c.cmd("WAIT").await, "+OK waiting\r\n");
    let addr = r.addr;
    let t = Instant::now();
    let stop = tokio::spawn(r.server.shutdown(Duration::from_secs(10)));
    assert_eq!(c.line().await, "+OK shutting down\r\n");
    assert_eq!(c.rest().await, b"");
    stop.await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Not accepting any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_aborts_sessions_after_deadline() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    assert_eq!(c.cmd("HANG").await, "+OK hanging\r\n");
    let t = Instant::now();
    r.server.shutdown(Duration::from_millis(300)).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(c.rest().await, b"");
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut s = Server::new(None, limits());
    let err = s
        .bind(
            ListenerSpec {
                name: "dup".into(),
                addr: r.addr,
                tls: TlsMode::None,
                proxy_protocol: false,
            },
            Arc::new(TestHandler::default()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Bind { addr, .. } if addr == r.addr));
    assert!(err.to_string().contains(&r.addr.to_string()), "{err}");

    let err = s
        .bind(
            ListenerSpec {
                name: "submission".into(),
                addr: "127.0.0.1:0".parse().unwrap(),
                tls: TlsMode::StartTls,
                proxy_protocol: false,
            },
            Arc::new(TestHandler::default()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("submission"), "{err}");
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn several_listeners_one_server() {
    let cert = test_cert("mail.test");
    let handler = Arc::new(TestHandler::default());
    let mut s = Server::new(Some(cert.provider()), limits());
    for (name, mode) in [
        ("plain", TlsMode::None),
        ("starttls", TlsMode::StartTls),
        ("implicit", TlsMode::Implicit),
    ] {
        s.bind(
            ListenerSpec {
                name: name.into(),
                addr: "127.0.0.1:0".parse().unwrap(),
                tls: mode,
                proxy_protocol: false,
            },
            handler.clone(),
        )
        .await
        .unwrap();
    }
    s.start();
    let bound = s.bound();
    assert_eq!(bound.len(), 3);
    assert_eq!(bound[2].0, "implicit");
    assert_eq!(bound[2].2, TlsMode::Implicit);
    let mut c = plain_client(bound[1].1).await;
    c.line().await;
    assert!(c.cmd("INFO").await.contains("listener=starttls"));
    drop(c);
    let mut raw = TcpStream::connect(bound[0].1).await.unwrap();
    let mut buf = [0u8; 11];
    raw.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"+OK hello\r\n");
    drop(raw);
    s.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dropped_server_stops_accepting_without_signalling_sessions() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    let mut c = plain_client(r.addr).await;
    c.line().await;
    assert_eq!(c.cmd("WAIT").await, "+OK waiting\r\n");
    let addr = r.addr;
    drop(r.server);
    let start = Instant::now();
    while TcpStream::connect(addr).await.is_ok() {
        assert!(start.elapsed() < Duration::from_secs(5), "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(200), c.io.read(&mut buf)).await;
    assert!(read.is_err(), "session was told to shut down: {read:?}");
}

/// A session that ends while the client is still sending must not reset
/// the connection under its last reply.
#[tokio::test]
async fn last_reply_survives_unread_client_data() {
    let r = serve(None, TlsMode::None, false, limits()).await;
    for _ in 0..5 {
        let mut c = plain_client(r.addr).await;
        c.line().await;
        let mut data = b"SLAM\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'j', 20_000));
        let tcp = c.io.get_mut();
        let (mut rd, mut wr) = tcp.split();
        let (_, got) = tokio::join!(
            async {
                let _ = wr.write_all(&data).await;
            },
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut got = Vec::new();
                let res =
                    tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut got)).await;
                (res, got)
            }
        );
        let (res, got) = got;
        assert!(res.is_ok(), "not closed");
        assert_eq!(got.len(), SLAM_REPLY + 6, "{res:?}");
        assert!(got.starts_with(b"+OK rrr") && got.ends_with(b"r\r\n"));
    }
    r.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn silent_clients_on_proxy_and_tls_listeners_are_closed() {
    let cert = test_cert("mail.test");
    let quick = Limits {
        tls_handshake_timeout: Duration::from_millis(200),
        ..limits()
    };
    for (mode, proxy) in [(TlsMode::None, true), (TlsMode::Implicit, false)] {
        let r = serve(Some(cert.provider()), mode, proxy, quick).await;
        let t = Instant::now();
        let mut c = plain_client(r.addr).await;
        assert_eq!(c.rest().await, b"", "{mode:?} proxy={proxy}");
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        sessions(&r.server, 0).await;
        r.server.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn limits_hold_under_a_burst_of_connections() {
    for (global, per_ip) in [(5, 0), (0, 5), (5, 5)] {
        let r = serve(None, TlsMode::None, false, with(global, per_ip)).await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let addr = r.addr;
            tasks.push(tokio::spawn(async move {
                let mut c = plain_client(addr).await;
                let first = c.line().await;
                (first, c)
            }));
        }
        let mut admitted = 0;
        let mut refused = 0;
        let mut keep = Vec::new();
        for t in tasks {
            let (first, c) = t.await.unwrap();
            match first.as_bytes() {
                b"+OK hello\r\n" => admitted += 1,
                b if b == TOO_BUSY => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
            keep.push(c);
        }
        assert_eq!(
            (admitted, refused),
            (5, 15),
            "global={global} per_ip={per_ip}"
        );
        assert_eq!(r.server.active_sessions(), 5);
        drop(keep);
        sessions(&r.server, 0).await;
        r.server.shutdown(Duration::from_secs(5)).await;
    }
}
