//! wharf-net: everything between a TCP socket and a protocol session.
//!
//! Listeners ([`Server`]), TLS ([`TlsProvider`], implicit TLS and STARTTLS),
//! the upgradable buffered connection every protocol reads from ([`Conn`]),
//! PROXY protocol v2 ([`proxy`]), per-IP and global connection limits, idle
//! timeouts and graceful shutdown. Protocol crates never touch sockets: they
//! implement [`Handler`] and receive a [`Conn`].

mod conn;
mod error;
pub mod proxy;
mod server;
mod tls;

pub use async_trait::async_trait;
pub use conn::{Conn, Line};
pub use error::NetError;
pub use server::{Handler, Limits, ListenerSpec, Server};
pub use tls::{ACME_TLS_ALPN, TlsInfo, TlsMode, TlsProvider, generate_self_signed};
