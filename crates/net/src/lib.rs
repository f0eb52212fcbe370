//! wharf-net: everything between a TCP socket and a protocol session.
//!
//! Listeners ([`Server`]), TLS ([`TlsProvider`], implicit TLS and STARTTLS),
//! the upgradable buffered connection every protocol reads from ([`Conn`]),
//! PROXY protocol v2 ([`proxy`]), per-IP and global connection limits, idle
//! timeouts and graceful shutdown. Protocol crates never touch sockets: they
//! implement [`Handler`] and receive a [`Conn`].
//!
//! The limits and the default session guards can be replaced while the
//! listeners run ([`Server::live_limits`], [`LiveLimits`]): connections
//! accepted afterwards get the new values, running ones keep theirs.
//!
//! Slow and idle strangers ([`SessionGuards`], per listener, off unless set
//! with [`Server::set_session_guards`] or [`Server::bind_with_guards`]): a
//! connection has `pre_auth_timeout` in total to authenticate, bulk input
//! must keep up a minimum rate, and when the server is above 90 % of
//! `max_connections` the oldest unauthenticated sessions are closed to make
//! room. A cut read fails with `TimedOut`, so the protocol loop answers it as
//! an idle timeout (its goodbye gets a few seconds to go out). The protocol
//! loop reports two things:
//! - [`Conn::set_authenticated`] once a login succeeded (AUTH, LOGIN,
//!   USER/PASS, APOP): the deadline is lifted and the session is never shed.
//!   On port 25, where nobody logs in, call it once the session's first
//!   message was accepted (the 250 after DATA or BDAT LAST): until then a
//!   sender has `pre_auth_timeout` for its greeting, EHLO, STARTTLS and
//!   envelope, while the body itself is held to the minimum rate instead.
//! - [`Conn::begin_bulk_input`] / [`Conn::end_bulk_input`] around a message
//!   body (DATA, each BDAT chunk, an APPEND literal): inside, reads are held
//!   to `min_bulk_rate` averaged over `bulk_rate_window`, and the
//!   pre-authentication clock stops.

mod conn;
mod deflate;
mod error;
mod guard;
mod ipnet;
mod live;
pub mod proxy;
mod server;
mod tls;

pub use async_trait::async_trait;
pub use conn::{Conn, Line};
pub use error::NetError;
pub use guard::{SessionGuards, source_key};
pub use ipnet::{IpNet, in_any};
pub use live::{LiveLimits, Swappable};
pub use server::{Handler, Limits, ListenerSpec, Server};
pub use tls::{ACME_TLS_ALPN, TlsInfo, TlsMode, TlsProvider, generate_self_signed};
