//! Host and domain names in the configuration: this system's host name, the RFC 1123 syntax
//! check, and the mail domain a host name implies.

/// Fallback host name when the system's cannot be read.
pub(super) const FALLBACK_HOSTNAME: &str = "localhost";

/// mail.example.com → example.com; a single-label name stays as it is.
pub fn domain_of_host(host: &str) -> String {
    match host.split_once('.') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => host.to_string(),
    }
}

pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && valid_hostname(s))
        .unwrap_or_else(|| FALLBACK_HOSTNAME.to_string())
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
