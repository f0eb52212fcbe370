//! The error type of wharf-net: what went wrong at start or reload, named
//! precisely enough for an operator to fix it.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A listener could not be bound. The message names the address and, for
    /// a privileged port refused with EACCES, how to fix it.
    #[error("cannot bind {addr}: {source}{hint}", hint = bind_hint(addr, source))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// PEM input held no usable certificate or key, or was malformed.
    #[error("invalid PEM ({what}): {reason}")]
    Pem { what: String, reason: String },
    /// rustls refused the certificate/key pair (e.g. the key does not match).
    #[error("TLS configuration rejected: {0}")]
    Tls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("cannot generate self-signed certificate: {0}")]
    CertGen(String),
    /// A listener asks for something the server was not given (e.g. TLS
    /// without a certificate).
    #[error("listener {listener}: {reason}")]
    Config { listener: String, reason: String },
}

fn bind_hint(addr: &SocketAddr, source: &io::Error) -> &'static str {
    if source.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        " (ports below 1024 need privileges: run with CAP_NET_BIND_SERVICE or use --port-offset 10000)"
    } else if source.kind() == io::ErrorKind::AddrInUse {
        " (another process is listening there)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_error_names_address_and_fix() {
        let e = NetError::Bind {
            addr: "0.0.0.0:25".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let msg = e.to_string();
        assert!(msg.contains("0.0.0.0:25"), "{msg}");
        assert!(msg.contains("CAP_NET_BIND_SERVICE"), "{msg}");
        assert!(msg.contains("--port-offset 10000"), "{msg}");

        let e = NetError::Bind {
            addr: "0.0.0.0:10025".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(!e.to_string().contains("CAP_NET_BIND_SERVICE"));
    }
}
