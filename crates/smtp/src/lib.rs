//! wharf-smtp: inbound SMTP on port 25 (MX: local recipients only, never a relay) and message
//! submission on 587 (STARTTLS) / 465 (implicit TLS) with SASL AUTH, delivering into local
//! mailboxes through `Store::deliver` (durable, group-committed before the final 250) and handing
//! remote recipients to the outbound queue through `RemoteHandoff`.
//!
//! Layout: `command` (syntax), `reply` (wire replies), `body` (DATA/BDAT receiver and smuggling
//! defence), `message` (trace and submission headers), `handoff` (the outbound queue boundary), `session` (the sans-io state machine),
//! `service` (the async loop over `wharf_net::Conn`), `limiter` (per-IP admission), `config`.

pub mod body;
pub mod command;
pub mod config;
pub mod handoff;
mod limiter;
pub mod message;
pub mod reply;
pub mod service;
pub mod session;

pub use config::{BareLfPolicy, SmtpConfig};
pub use handoff::{OutboundMessage, OutboundRecipient, RemoteHandoff};
pub use reply::Reply;
pub use service::SmtpService;
pub use session::{ConnInfo, Next, Response, Session};

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpRole {
    /// Port 25: mail for local recipients from anyone; no AUTH; never relays.
    Mx,
    /// Ports 587/465: authenticated users only; AUTH after TLS.
    Submission,
}
