//! The errors of one ACME attempt; every one leaves the old certificate in service.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("certificate: {0}")]
    Cert(String),
    #[error("validation failed: {0}")]
    Validation(String),
    #[error("the CA offers no {kind} challenge for {name}")]
    NoChallenge { kind: &'static str, name: String },
    #[error("TLS: {0}")]
    Tls(#[from] wharf_net::NetError),
    /// The shared state (the store of several nodes) failed.
    #[error("ACME state: {0}")]
    State(String),
}

impl AcmeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> AcmeError {
        AcmeError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rcgen::Error> for AcmeError {
    fn from(e: rcgen::Error) -> AcmeError {
        AcmeError::Cert(e.to_string())
    }
}
