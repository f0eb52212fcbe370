//! wharf-outbound: mail leaving Wharf. The SMTP client (`client`, with its I/O-free decisions in
//! `transaction` and replies in `reply`), TLS for it (`tls`), routing by MX or smarthost (`route`),
//! transport security policies (`mta_sts`, `dane`),
//! the durable queue contract (`queue`), the worker that drains it (`worker`: scheduling) and one
//! delivery to one destination (`delivery`), delivery status
//! notifications (`dsn`) and DKIM signing (`dkim`).

pub mod client;
pub mod dane;
mod delivery;
pub mod dkim;
pub mod dsn;
pub mod local;
pub mod mta_sts;
pub mod queue;
pub mod reply;
pub mod report_post;
pub mod route;
pub mod tls;
pub mod tls_report;
pub mod transaction;
pub mod worker;

pub use client::{ClientConfig, ClientError, Credentials, SmtpClient, TlsPolicy, TlsSummary};
pub use reply::Reply;
pub use tls::TrustAnchors;
pub use transaction::{Capabilities, Envelope, EnvelopeRecipient, Notify, Outcome, Ret};
pub use worker::{BounceSink, MetricsSnapshot, Outbound, QueueConfig};
