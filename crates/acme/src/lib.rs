//! wharf-acme: certificates from an ACME CA (RFC 8555) for the host name and
//! the autoconfig/MTA-STS names, obtained with HTTP-01 or TLS-ALPN-01
//! (RFC 8737), stored in an [`AcmeState`] (files of one node, or a state
//! several nodes share: one orders, all answer challenges and serve the
//! result), renewed before they run out and hot-swapped into the running
//! [`wharf_net::TlsProvider`].

mod cert;
mod challenge;
mod config;
mod error;
mod manager;
mod storage;

pub use cert::CertInfo;
pub use challenge::{Http01Challenges, tls_alpn_certificate};
pub use config::{AcmeSettings, ChallengeKind, certificate_names};
pub use error::AcmeError;
pub use manager::AcmeManager;
pub use storage::{AcmeState, AcmeStore, ChallengeAnswer};
