//! wharf-smtp: inbound SMTP on port 25 (MX: local recipients only, never a relay) and message
//! submission on 587 (STARTTLS) / 465 (implicit TLS) with SASL AUTH, delivering into local
//! mailboxes (durable, group-committed before the final 250) and handing remote recipients to the
//! outbound queue through `RemoteHandoff`.
//!
//! Layout: `session` (the sans-io state machine: `Session::handle(Input) -> Step`), `commands/*`
//! (behaviour per command family), `backend` (the ports the session needs) and `adapters` (those
//! ports bound to the directory and the store), `syntax` (command parser and replies), `body`
//! (DATA/BDAT receiver and smuggling defence), `spool` (memory budget and spool files for message
//! content), `message` (trace and submission headers), `service` (the async loop over
//! `wharf_net::Conn`), `limiter` (per-IP admission), `config`.

pub mod adapters;
pub mod backend;
pub mod body;
mod commands;
pub mod config;
mod limiter;
pub mod message;
pub mod service;
pub mod session;
pub mod spool;
pub mod srs;
pub mod syntax;

/// The parser and replies keep their old paths (`wharf_smtp::command`, `wharf_smtp::reply`).
pub use syntax::{command, reply};

pub use backend::{
    Arrival, ArrivalAction, ArrivalCheck, ArrivalVerdict, AuthFailure, Authenticator, Backend,
    DeliveryEnvelope, LocalDelivery, LocalOutcome, Login, Origin, Recipients, RemoteHandoff,
    Resolution, SaslOutcome, SaslSession,
};
pub use config::{BareLfPolicy, SmtpConfig};
pub use reply::Reply;
pub use service::SmtpService;
pub use session::{ConnInfo, Input, Next, Output, Session, Step};
pub use spool::Spool;

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpRole {
    /// Port 25: mail for local recipients from anyone; no AUTH; never relays.
    Mx,
    /// Ports 587/465: authenticated users only; AUTH after TLS.
    Submission,
}
