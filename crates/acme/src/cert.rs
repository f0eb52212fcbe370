//! What the renewal schedule needs to know about a certificate: its names,
//! validity window and serial, read from the leaf of a PEM chain.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::AcmeError;

const MAX_DEFAULT_MARGIN: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// dNSName entries of the subjectAltName, lower-cased.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Lower-case hex, no separators.
    pub serial: String,
}

impl CertInfo {
    /// Reads the first certificate of a PEM chain.
    pub fn from_pem(chain_pem: &str) -> Result<CertInfo, AcmeError> {
        let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .next()
            .ok_or_else(|| AcmeError::Cert("no CERTIFICATE block in the chain".to_string()))?
            .map_err(|e| AcmeError::Cert(e.to_string()))?;
        CertInfo::from_der(&leaf)
    }

    pub fn from_der(der: &[u8]) -> Result<CertInfo, AcmeError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| AcmeError::Cert(format!("unparsable certificate: {e}")))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for gn in &san.value.general_names {
                if let GeneralName::DNSName(n) = gn {
                    names.push(n.to_ascii_lowercase());
                }
            }
        }
        let validity = cert.validity();
        Ok(CertInfo {
            names,
            not_before: to_system_time(validity.not_before.timestamp()),
            not_after: to_system_time(validity.not_after.timestamp()),
            serial: cert.raw_serial_as_string().replace(':', ""),
        })
    }

    /// Every name in `wanted` is on the certificate.
    pub fn covers(&self, wanted: &[String]) -> bool {
        wanted
            .iter()
            .all(|w| self.names.iter().any(|n| n.eq_ignore_ascii_case(w)))
    }

    /// When renewal is due: `margin` before expiry, or by default when a
    /// third of the lifetime (at most 30 days) remains.
    pub fn renew_at(&self, margin: Option<Duration>) -> SystemTime {
        let margin = margin.unwrap_or_else(|| {
            let lifetime = self
                .not_after
                .duration_since(self.not_before)
                .unwrap_or(Duration::ZERO);
            (lifetime / 3).min(MAX_DEFAULT_MARGIN)
        });
        self.not_after.checked_sub(margin).unwrap_or(UNIX_EPOCH)
    }
}

fn to_system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(days: i64) -> String {
        let mut params =
            rcgen::CertificateParams::new(vec!["a.example".to_string(), "B.example".to_string()])
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = params.not_before + rcgen_duration(days);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn rcgen_duration(days: i64) -> std::time::Duration {
        std::time::Duration::from_secs(days as u64 * 86400)
    }

    #[test]
    fn reads_names_and_validity() {
        let info = CertInfo::from_pem(&cert(90)).unwrap();
        assert_eq!(info.names, ["a.example", "b.example"]);
        assert!(info.covers(&["b.example".to_string()]));
        assert!(!info.covers(&["c.example".to_string()]));
        let lifetime = info.not_after.duration_since(info.not_before).unwrap();
        assert_eq!(lifetime, rcgen_duration(90));
        assert!(!info.serial.is_empty());
    }

    #[test]
    fn default_margin_is_a_third_capped_at_30_days() {
        let short = CertInfo::from_pem(&cert(6)).unwrap();
        assert_eq!(
            short
                .not_after
                .duration_since(short.renew_at(None))
                .unwrap(),
            rcgen_duration(2)
        );
        let long = CertInfo::from_pem(&cert(365)).unwrap();
        assert_eq!(
            long.not_after.duration_since(long.renew_at(None)).unwrap(),
            rcgen_duration(30)
        );
        assert_eq!(
            long.not_after
                .duration_since(long.renew_at(Some(rcgen_duration(10))))
                .unwrap(),
            rcgen_duration(10)
        );
    }

    #[test]
    fn garbage_refused() {
        assert!(CertInfo::from_pem("nothing").is_err());
        assert!(CertInfo::from_der(b"\x30\x03abc").is_err());
    }
}
