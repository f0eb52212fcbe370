//! The HTTP service as a wharf-net [`Handler`], so HTTP and HTTPS listeners
//! share everything the mail listeners have: connection limits (global and
//! per IP), PROXY v2, implicit TLS from the one [`wharf_net::TlsProvider`]
//! (SIGHUP reloads, ACME swaps and TLS-ALPN-01 answers included), the
//! `wharf_connections_total` counters and the drain on SIGTERM.
//!
//! hyper needs an `AsyncRead + AsyncWrite` stream while a [`Conn`] offers
//! buffered async calls, so a small pump copies bytes between the `Conn` and
//! one end of an in-memory pipe whose other end hyper serves.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tower::ServiceExt;
use wharf_net::{Conn, Handler};

/// Bytes the in-memory pipe holds in each direction.
const PIPE: usize = 64 * 1024;
/// An HTTP connection waiting this long for the client (keep-alive between
/// requests, or a stalled upload) is closed; mail sessions keep the longer
/// `limits.idle_timeout`.
const HTTP_IDLE: Duration = Duration::from_secs(60);
/// Time to send a complete request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How the request arrived: over TLS or not (a request extension). Credentials are taken only
/// over TLS, from loopback, or from a trusted proxy that says the client used https.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub encrypted: bool,
}

pub struct HttpHandler {
    router: Router,
}

impl HttpHandler {
    pub fn new(router: Router) -> HttpHandler {
        HttpHandler { router }
    }
}

/// Aborts the HTTP task if the session is cut short (drain deadline passed).
struct AbortOnDrop(JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[wharf_net::async_trait]
impl Handler for HttpHandler {
    async fn handle(&self, mut conn: Conn) {
        let peer = conn.peer();
        let transport = Transport {
            encrypted: conn.is_tls(),
        };
        if conn.idle_timeout().is_zero() || conn.idle_timeout() > HTTP_IDLE {
            conn.set_idle_timeout(HTTP_IDLE);
        }
        let (app_side, pump_side) = tokio::io::duplex(PIPE);
        let mut task = AbortOnDrop(tokio::spawn(serve_http(
            self.router.clone(),
            app_side,
            peer,
            transport,
            conn.shutdown_signal(),
        )));
        pump(&mut conn, pump_side).await;
        let _ = (&mut task.0).await;
    }

    fn too_busy(&self) -> &'static [u8] {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\nConnection: close\r\nRetry-After: 10\r\n\r\ntoo many connections"
    }

    fn protocol(&self) -> &'static str {
        "http"
    }
}

/// hyper on the pipe. On drain, in-flight requests finish and idle
/// keep-alive connections close; the pipe end is dropped when done, which
/// the pump sees as EOF.
async fn serve_http(
    router: Router,
    io: DuplexStream,
    peer: SocketAddr,
    transport: Transport,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req.extensions_mut().insert(transport);
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A client may send its request and then shut down its sending side (HTTP/1.1 allows
    // it; `printf … | nc` and some health checkers do): it still gets the response.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .half_close(true);
    let http = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    let draining = async {
        if shutdown.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = http.as_mut() => r,
        () = draining => {
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "http: connection ended");
    }
}

/// Copies client bytes into the pipe and hyper's bytes to the client until
/// either side is done. Client input waits in `to_app` while hyper is not
/// reading, and hyper's output is read meanwhile, so neither direction can
/// block the other.
async fn pump(conn: &mut Conn, side: DuplexStream) {
    let (mut rd, mut wr) = tokio::io::split(side);
    let mut to_app: Vec<u8> = Vec::new();
    let mut client_eof = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = conn.fill(), if to_app.is_empty() && !client_eof => match r {
                Ok(0) => {
                    client_eof = true;
                    let _ = wr.shutdown().await;
                }
                Ok(_) => {
                    let n = conn.buffer().len();
                    to_app.extend_from_slice(conn.buffer());
                    conn.consume(n);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "http: client read ended");
                    break;
                }
            },
            r = wr.write(&to_app), if !to_app.is_empty() => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    to_app.drain(..n);
                }
            },
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Err(e) = conn.write_all(&buf[..n]).await {
                        tracing::debug!(error = %e, "http: client write failed");
                        break;
                    }
                }
            },
        }
    }
    let _ = conn.close().await;
}
