//! The MTA-STS policy text and its TXT id, and the zone-file lines a local
//! domain needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, CNAMEs, RFC 6186 /
//! RFC 8314 SRV records).

use sha2::{Digest, Sha256};

use crate::config::{AdvertisedPorts, MtaStsConfig};

/// A DKIM key's DNS record: `selector._domainkey.domain` and its unsplit TXT value.
#[derive(Debug, Clone)]
pub struct DkimDnsRecord {
    pub dns_name: String,
    pub txt_value: String,
}

/// RFC 8461 policy body, CRLF lines.
pub fn mta_sts_policy(cfg: &MtaStsConfig, hostname: &str) -> String {
    let mut s = format!("version: STSv1\r\nmode: {}\r\n", cfg.mode.as_str());
    if cfg.mx.is_empty() {
        s.push_str(&format!("mx: {hostname}\r\n"));
    }
    for mx in &cfg.mx {
        s.push_str(&format!("mx: {mx}\r\n"));
    }
    s.push_str(&format!("max_age: {}\r\n", cfg.max_age.min(31_557_600)));
    s
}

/// `id` for the `_mta-sts` TXT record: derived from the policy, so it
/// changes exactly when the policy does (1-32 alphanumerics per RFC 8461).
pub fn mta_sts_id(policy: &str) -> String {
    let digest = Sha256::digest(policy.as_bytes());
    hex::encode(&digest[..16])
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Quoted TXT character-strings of at most 255 bytes each.
fn txt(value: &str) -> String {
    let bytes = value.as_bytes();
    bytes
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c).replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every record `domain` needs, as zone-file lines (TTL 3600).
pub fn dns_records(
    domain: &str,
    hostname: &str,
    ports: &AdvertisedPorts,
    mta_sts: &MtaStsConfig,
    dkim: &[DkimDnsRecord],
) -> Vec<String> {
    let d = fqdn(domain);
    let h = fqdn(hostname);
    let mut out = vec![
        format!("{d} 3600 IN MX 10 {h}"),
        format!("{d} 3600 IN TXT {}", txt("v=spf1 mx -all")),
    ];
    for k in dkim {
        out.push(format!(
            "{} 3600 IN TXT {}",
            fqdn(&k.dns_name),
            txt(&k.txt_value)
        ));
    }
    out.push(format!(
        "_dmarc.{d} 3600 IN TXT {}",
        txt(&format!(
            "v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"
        ))
    ));
    let id = mta_sts_id(&mta_sts_policy(mta_sts, hostname));
    out.push(format!(
        "_mta-sts.{d} 3600 IN TXT {}",
        txt(&format!("v=STSv1; id={id}"))
    ));
    out.push(format!("mta-sts.{d} 3600 IN CNAME {h}"));
    out.push(format!(
        "_smtp._tls.{d} 3600 IN TXT {}",
        txt(&format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}"))
    ));
    out.push(format!("autoconfig.{d} 3600 IN CNAME {h}"));
    out.push(format!("autodiscover.{d} 3600 IN CNAME {h}"));
    out.push(format!("_autodiscover._tcp.{d} 3600 IN SRV 0 1 443 {h}"));
    // RFC 8314 §5.1: implicit TLS gets the lower (preferred) priority; a
    // target of "." says the service is not offered (RFC 6186 §4).
    for (svc, prio, port) in [
        ("_submissions", 0, ports.submissions),
        ("_submission", 1, ports.submission),
        ("_imaps", 0, ports.imaps),
        ("_imap", 1, ports.imap),
        ("_pop3s", 10, ports.pop3s),
        ("_pop3", 20, ports.pop3),
    ] {
        if port == 0 {
            out.push(format!("{svc}._tcp.{d} 3600 IN SRV 0 0 0 ."));
        } else {
            out.push(format!("{svc}._tcp.{d} 3600 IN SRV {prio} 1 {port} {h}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_follows_policy() {
        let mut cfg = MtaStsConfig::default();
        let a = mta_sts_id(&mta_sts_policy(&cfg, "mx.example.org"));
        cfg.mode = crate::config::MtaStsMode::Enforce;
        let b = mta_sts_id(&mta_sts_policy(&cfg, "mx.example.org"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn long_txt_split() {
        let v = "p=".to_string() + &"A".repeat(400);
        let r = dns_records(
            "example.org",
            "mx.example.org",
            &AdvertisedPorts {
                pop3: 0,
                ..Default::default()
            },
            &MtaStsConfig::default(),
            &[DkimDnsRecord {
                dns_name: "s1._domainkey.example.org".into(),
                txt_value: v,
            }],
        );
        let dk = r.iter().find(|l| l.starts_with("s1._domainkey")).unwrap();
        assert!(dk.contains("\" \""));
        assert!(r.contains(&"_pop3._tcp.example.org. 3600 IN SRV 0 0 0 .".to_string()));
        assert!(
            r.contains(&"_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mx.example.org.".to_string())
        );
        assert!(
            r.iter()
                .any(|l| l.starts_with("example.org. 3600 IN MX 10 mx.example.org."))
        );
    }
}
