//! Accept loop for HTTP and HTTPS: each connection gets its own task, TLS
//! takes the provider's current config per handshake (so reloads apply),
//! and shutdown lets in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use wharf_net::TlsProvider;

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsProvider>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req)
        });
        let builder = {
            let mut b = hyper::server::conn::http1::Builder::new();
            // Half-closing clients still get their response (see handler.rs).
            b.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .half_close(true);
            b
        };
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "http: connection ended");
                    }
                });
            }
            Some(provider) => {
                let provider = provider.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(Duration::from_secs(10), provider.accept(stream));
                    let stream = match hs.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "https: handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "https: handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "https: connection ended");
                    }
                });
            }
        }
    }
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("http: connections still open after 10s; closing");
    }
    Ok(())
}
