//! Semantic checks of a parsed configuration that serde cannot express; each error names the
//! offending key and points at where it is written (or would be).

use std::net::IpAddr;

use super::Loaded;
use super::hostname::valid_hostname;
use super::location::{ConfigError, located, span_of};
use super::schema::{
    AcmeChallenge, HttpSection, ListenerTls, OutboundSection, Protocol, RelaySection,
};

/// Semantic checks that serde cannot express; each names the offending key.
pub(super) fn validate(loaded: &Loaded, text: &str) -> Result<(), ConfigError> {
    let fail = |key: &str, message: String| {
        let span = span_of(text, key);
        located(&loaded.path, text, span, Some(key.to_string()), message)
    };
    let c = &loaded.config;
    if !valid_hostname(&c.server.hostname) {
        return Err(fail(
            "server.hostname",
            format!("`{}` is not a valid host name", c.server.hostname),
        ));
    }
    if let Some(d) = &c.server.primary_domain
        && !valid_hostname(d)
    {
        return Err(fail(
            "server.primary_domain",
            format!("`{d}` is not a valid domain name"),
        ));
    }
    if let Some(url) = &c.store.url
        && !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
    {
        return Err(fail(
            "store.url",
            format!(
                "`{}` is neither a sqlite:// nor a postgres:// URL",
                without_credentials(url)
            ),
        ));
    }
    if let Some(s3) = &c.store.s3 {
        if c.store.blob_dir.is_some() {
            return Err(fail(
                "store.blob_dir",
                "set either store.blob_dir or [store.s3], not both".to_string(),
            ));
        }
        if let Err(e) = wharf_store::blob_s3::parse_s3_url(&s3.to_config().url()) {
            return Err(fail("store.s3.bucket", e));
        }
        if let Some(e) = &s3.endpoint
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            return Err(fail(
                "store.s3.endpoint",
                format!("`{e}` is not an http:// or https:// URL"),
            ));
        }
        if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
            return Err(fail(
                "store.s3.access_key_id",
                "access_key_id and secret_access_key must be given together".to_string(),
            ));
        }
        if s3.timeout_secs == 0 {
            return Err(fail(
                "store.s3.timeout_secs",
                "must be greater than 0".to_string(),
            ));
        }
    }
    if c.tls.cert.is_some() != c.tls.key.is_some() {
        let key = if c.tls.cert.is_some() {
            "tls.key"
        } else {
            "tls.cert"
        };
        return Err(fail(
            key,
            "tls.cert and tls.key must be given together".to_string(),
        ));
    }
    let limits = &c.limits;
    for (key, v) in [
        ("limits.max_connections", limits.max_connections as u64),
        ("limits.max_per_ip", limits.max_per_ip as u64),
        ("limits.idle_timeout", limits.idle_timeout),
        ("limits.tls_handshake_timeout", limits.tls_handshake_timeout),
        ("limits.max_message_size", limits.max_message_size),
        ("limits.min_data_rate_window", limits.min_data_rate_window),
        ("store.pg_acquire_timeout_ms", c.store.pg_acquire_timeout_ms),
        (
            "store.pg_statement_timeout_ms",
            c.store.pg_statement_timeout_ms,
        ),
        (
            "store.pg_heavy_statement_timeout_ms",
            c.store.pg_heavy_statement_timeout_ms,
        ),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if limits.max_per_ip > limits.max_connections {
        return Err(fail(
            "limits.max_per_ip",
            format!(
                "{} exceeds limits.max_connections ({})",
                limits.max_per_ip, limits.max_connections
            ),
        ));
    }
    if let Err(e) = c.inbound.validate() {
        return Err(fail("inbound", e));
    }
    if let Err(e) = check_log_filter(&c.log.level) {
        return Err(fail("log.level", e));
    }
    if let Some(list) = &c.listeners {
        let mut seen: Vec<(String, IpAddr, u16)> = Vec::new();
        for (i, l) in list.iter().enumerate() {
            let r = l.resolve();
            if r.name.is_empty() {
                return Err(fail(
                    &format!("listener[{i}].name"),
                    "must not be empty".to_string(),
                ));
            }
            if r.protocol == Protocol::Http && r.tls == ListenerTls::Starttls {
                return Err(fail(
                    &format!("listener[{i}].tls"),
                    "HTTP has no STARTTLS; use tls = \"none\" (http, port 80) or tls = \"implicit\" (https, port 443)".to_string(),
                ));
            }
            if r.protocol == Protocol::Smtp && r.tls == ListenerTls::Implicit {
                return Err(fail(
                    &format!("listener[{i}].tls"),
                    "port 25 SMTP (protocol = \"smtp\") cannot use implicit TLS; use protocol = \"submission\" for port 465".to_string(),
                ));
            }
            for (name, addr, port) in &seen {
                if *name == r.name {
                    return Err(fail(
                        &format!("listener[{i}].name"),
                        format!("listener name `{name}` is used twice"),
                    ));
                }
                if r.port != 0 && *port == r.port && *addr == r.address {
                    return Err(fail(
                        &format!("listener[{i}].port"),
                        format!("{addr}:{port} is used by listener `{name}` too"),
                    ));
                }
            }
            seen.push((r.name, r.address, r.port));
        }
    }
    validate_outbound(&c.outbound, &fail)?;
    validate_http(&c.http, &fail)?;
    validate_acme(loaded, &fail)
}

/// Levels a `[log] level` directive may name.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A tracing filter whose every directive is a level (`info`) or `target=level`
/// (`wharf_smtp=debug`). tracing-subscriber alone would take a bare word such as `verbose` as a
/// target name and so silently hide every other log line.
pub(crate) fn check_log_filter(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err(format!("empty; use one of {}", LOG_LEVELS.join(", ")));
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => return Err(format!("`{directive}` has no target before `=`")),
            None => directive,
        };
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!(
                "`{level}` is not a log level; use one of {} (or target=level, e.g. wharf_smtp=debug)",
                LOG_LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| ())
        .map_err(|e| format!("not a valid log filter: {e}"))
}

fn validate_http(
    h: &HttpSection,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, list) in [
        ("http.trusted_proxies", &h.trusted_proxies),
        ("http.metrics_allow", &h.metrics_allow),
    ] {
        for entry in list {
            if entry.parse::<wharf_http::IpNet>().is_err() {
                return Err(fail(
                    key,
                    format!(
                        "`{entry}` is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)"
                    ),
                ));
            }
        }
    }
    if h.mta_sts.max_age == 0 || h.mta_sts.max_age > 31_557_600 {
        return Err(fail(
            "http.mta_sts.max_age",
            "must be between 1 and 31557600 seconds (RFC 8461)".to_string(),
        ));
    }
    for mx in &h.mta_sts.mx {
        let name = mx.strip_prefix("*.").unwrap_or(mx).to_ascii_lowercase();
        if !valid_hostname(&name) {
            return Err(fail(
                "http.mta_sts.mx",
                format!("`{mx}` is not a host name or *.domain pattern"),
            ));
        }
    }
    Ok(())
}

fn validate_acme(
    loaded: &Loaded,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let a = &loaded.config.acme;
    if !a.enabled {
        return Ok(());
    }
    if !a.directory_url.starts_with("https://") {
        return Err(fail(
            "acme.directory_url",
            format!("`{}` is not an https:// URL", a.directory_url),
        ));
    }
    if let Some(c) = &a.contact {
        let addr = c.strip_prefix("mailto:").unwrap_or(c);
        let ok = addr.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && valid_hostname(&domain.to_ascii_lowercase())
        });
        if !ok {
            return Err(fail(
                "acme.contact",
                format!("`{c}` is not an e-mail address"),
            ));
        }
    }
    for n in &a.extra_names {
        if !valid_hostname(&n.trim_end_matches('.').to_ascii_lowercase()) {
            return Err(fail(
                "acme.extra_names",
                format!(
                    "`{n}` is not a host name (wildcards need DNS-01, which Wharf does not do)"
                ),
            ));
        }
    }
    for (key, v) in [
        ("acme.check_interval", a.check_interval),
        ("acme.retry_min", a.retry_min),
        ("acme.retry_max", a.retry_max),
        ("acme.order_timeout", a.order_timeout),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if a.retry_min > a.retry_max {
        return Err(fail(
            "acme.retry_min",
            format!("{} exceeds acme.retry_max ({})", a.retry_min, a.retry_max),
        ));
    }
    let tls = &loaded.config.tls;
    if tls.cert.is_some() || tls.key.is_some() {
        return Err(fail(
            "acme.enabled",
            "ACME manages the certificate itself; remove tls.cert and tls.key (or set acme.enabled = false)".to_string(),
        ));
    }
    let listeners = loaded.listeners();
    let needed = match a.challenge {
        AcmeChallenge::Http01 => listeners
            .iter()
            .any(|l| l.protocol == Protocol::Http && l.tls == ListenerTls::None),
        AcmeChallenge::TlsAlpn01 => listeners.iter().any(|l| l.tls == ListenerTls::Implicit),
    };
    if !needed {
        let what = match a.challenge {
            AcmeChallenge::Http01 => {
                "challenge \"http-01\" needs a [[listener]] with protocol = \"http\" and tls = \"none\" (port 80)"
            }
            AcmeChallenge::TlsAlpn01 => {
                "challenge \"tls-alpn-01\" needs a [[listener]] with tls = \"implicit\" (port 443)"
            }
        };
        return Err(fail("acme.challenge", what.to_string()));
    }
    Ok(())
}

fn validate_outbound(
    o: &OutboundSection,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if o.retry_schedule.is_empty() {
        return Err(fail(
            "outbound.retry_schedule",
            "needs at least one delay (seconds)".to_string(),
        ));
    }
    if o.retry_schedule.contains(&0) {
        return Err(fail(
            "outbound.retry_schedule",
            "delays must be greater than 0 seconds".to_string(),
        ));
    }
    for (key, v) in [
        ("outbound.max_age", o.max_age),
        ("outbound.max_connections", o.max_connections as u64),
        (
            "outbound.max_connections_per_domain",
            o.max_connections_per_domain as u64,
        ),
        (
            "outbound.max_messages_per_connection",
            o.max_messages_per_connection as u64,
        ),
        ("outbound.poll_interval", o.poll_interval),
        ("outbound.lease", o.lease),
        ("outbound.batch", o.batch as u64),
        ("outbound.dns_timeout", o.dns_timeout),
        ("outbound.mx_port", u64::from(o.mx_port)),
        ("outbound.connect_timeout", o.connect_timeout),
        ("outbound.command_timeout", o.command_timeout),
        ("outbound.data_timeout", o.data_timeout),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if o.max_connections_per_domain > o.max_connections {
        return Err(fail(
            "outbound.max_connections_per_domain",
            format!(
                "{} exceeds outbound.max_connections ({})",
                o.max_connections_per_domain, o.max_connections
            ),
        ));
    }
    if o.dane && o.dns_server.0.is_empty() {
        // The AD bit of /etc/resolv.conf's server means nothing unless the admin chose it.
        return Err(fail(
            "outbound.dane",
            "needs outbound.dns_server: a DNSSEC-validating resolver you trust (e.g. unbound on 127.0.0.1:53)".to_string(),
        ));
    }
    if let Some(r) = &o.relayhost {
        validate_relay(r, "outbound.relayhost", fail)?;
    }
    for (domain, r) in &o.routes {
        let key = format!("outbound.routes.\"{domain}\"");
        if !valid_hostname(&domain.to_ascii_lowercase()) {
            return Err(fail(&key, format!("`{domain}` is not a valid domain name")));
        }
        validate_relay(r, &key, fail)?;
    }
    Ok(())
}

fn validate_relay(
    r: &RelaySection,
    key: &str,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let host = r.host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_err() && !valid_hostname(&host.to_ascii_lowercase()) {
        return Err(fail(
            &format!("{key}.host"),
            format!("`{}` is neither a host name nor an IP address", r.host),
        ));
    }
    if r.port == 0 {
        return Err(fail(&format!("{key}.port"), "must not be 0".to_string()));
    }
    if r.password.is_some() && r.password_file.is_some() {
        return Err(fail(
            &format!("{key}.password_file"),
            "give password or password_file, not both".to_string(),
        ));
    }
    let has_secret = r.password.is_some() || r.password_file.is_some();
    if r.username.is_some() != has_secret {
        let k = if r.username.is_some() {
            "password"
        } else {
            "username"
        };
        return Err(fail(
            &format!("{key}.{k}"),
            "username and password (or password_file) must be given together".to_string(),
        ));
    }
    Ok(())
}

/// `url` with any `user:password@` before its host left out: the message can leave the host
/// (the admin API answers a reload with it).
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_are_left_out_of_urls() {
        assert_eq!(
            without_credentials("mysql://wharf:S3cret@db:3306/mail"),
            "mysql://…@db:3306/mail"
        );
        assert_eq!(without_credentials("sqlite:///var/x"), "sqlite:///var/x");
        assert_eq!(
            without_credentials("redis://db/a@b"),
            "redis://db/a@b",
            "an @ after the host is not a credential"
        );
    }
}
