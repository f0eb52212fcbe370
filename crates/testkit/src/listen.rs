//! A real `wharf_net::Server` on loopback for end-to-end tests: named listeners on 127.0.0.1:0
//! (plain, STARTTLS or implicit TLS) over a test certificate, each with its protocol handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wharf_net::{Handler, Limits, ListenerSpec, Server, TlsMode, TlsProvider};

use crate::tls::TestCert;

/// Limits roomy enough for any test's clients, with timeouts that still end a stuck test.
pub fn test_limits() -> Limits {
    Limits {
        max_connections: 100,
        max_per_ip: 100,
        idle_timeout: Duration::from_secs(60),
        tls_handshake_timeout: Duration::from_secs(10),
    }
}

/// Collects listeners, then `start`s the server.
pub struct Loopback {
    server: Server,
}

impl Loopback {
    /// `cert` is presented by the TLS listeners (none: plain listeners only).
    pub fn new(cert: Option<&TestCert>, limits: Limits) -> Loopback {
        Loopback::with_tls(cert.map(TestCert::provider), limits)
    }

    /// With any TLS provider (or none).
    pub fn with_tls(tls: Option<TlsProvider>, limits: Limits) -> Loopback {
        Loopback {
            server: Server::new(tls, limits),
        }
    }

    /// Binds a listener named `name` on 127.0.0.1:0 and returns its address.
    pub async fn listen(
        &mut self,
        name: &str,
        tls: TlsMode,
        handler: Arc<dyn Handler>,
    ) -> SocketAddr {
        self.listen_with(name, tls, false, handler).await
    }

    /// `listen`, with the PROXY protocol v2 header expected first when `proxy_protocol`.
    pub async fn listen_with(
        &mut self,
        name: &str,
        tls: TlsMode,
        proxy_protocol: bool,
        handler: Arc<dyn Handler>,
    ) -> SocketAddr {
        let spec = ListenerSpec {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls,
            proxy_protocol,
        };
        self.server
            .bind(spec, handler)
            .await
            .unwrap_or_else(|e| panic!("binding the {name} test listener: {e}"))
    }

    /// The usual pair of a mail protocol: `name` with STARTTLS and `tls_name` with implicit TLS,
    /// both served by `handler`. Returns (STARTTLS address, implicit TLS address).
    pub async fn listen_pair(
        &mut self,
        name: &str,
        tls_name: &str,
        handler: Arc<dyn Handler>,
    ) -> (SocketAddr, SocketAddr) {
        let plain = self.listen(name, TlsMode::StartTls, handler.clone()).await;
        let implicit = self.listen(tls_name, TlsMode::Implicit, handler).await;
        (plain, implicit)
    }

    /// Starts accepting on every listener.
    pub fn start(mut self) -> Server {
        self.server.start();
        self.server
    }
}
