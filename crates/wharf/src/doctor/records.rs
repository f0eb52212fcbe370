//! Reading the TXT records `wharf doctor` checks (SPF, DMARC, DKIM, MTA-STS, TLS-RPT) and
//! evaluating SPF for this host's addresses. DNS is behind the [`Lookup`] trait so the
//! evaluation is unit-tested against a table.

use std::net::IpAddr;

/// The DNS questions the checks ask. `Ok(vec![])` means "no such record" (NXDOMAIN or NODATA);
/// `Err` is a failed lookup (timeout, SERVFAIL), reported as such rather than as a missing record.
#[allow(async_fn_in_trait)]
pub trait Lookup {
    /// TXT records, each with its character-strings concatenated.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
    /// A and AAAA records.
    async fn addrs(&self, name: &str) -> Result<Vec<IpAddr>, String>;
    /// (preference, exchange) pairs, exchange lower-cased without the trailing dot.
    async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, String>;
}

/// `tag=value` pairs of a DKIM/DMARC/MTA-STS/TLS-RPT record, tags lower-cased, in order.
pub fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The records whose first tag is `v=<version>` (case-insensitive value per the RFCs' examples).
pub fn versioned<'a>(txts: &'a [String], version: &str) -> Vec<&'a String> {
    txts.iter()
        .filter(|t| {
            tags(t)
                .first()
                .is_some_and(|(k, v)| k == "v" && v.eq_ignore_ascii_case(version))
        })
        .collect()
}

// ------------------------------------------------------------------ DMARC

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    pub policy: String,
    pub rua: Option<String>,
}

/// RFC 7489 §6.3: `v=DMARC1` first, then a `p` of none, quarantine or reject.
pub fn parse_dmarc(record: &str) -> Result<Dmarc, String> {
    let t = tags(record);
    match t.first() {
        Some((k, v)) if k == "v" && v == "DMARC1" => {}
        _ => return Err("does not start with v=DMARC1".into()),
    }
    let policy = match tag(&t, "p") {
        Some(p) => p.to_ascii_lowercase(),
        None => return Err("has no p= tag (none, quarantine or reject)".into()),
    };
    if !["none", "quarantine", "reject"].contains(&policy.as_str()) {
        return Err(format!("p={policy} is not one of none, quarantine, reject"));
    }
    if let Some(pct) = tag(&t, "pct")
        && pct.parse::<u8>().map_or(true, |n| n > 100)
    {
        return Err(format!("pct={pct} is not a number from 0 to 100"));
    }
    Ok(Dmarc {
        policy,
        rua: tag(&t, "rua").map(str::to_string),
    })
}

// ------------------------------------------------------------------ DKIM

/// `p=` of a DKIM key record with folding whitespace removed; `Err` names what is wrong.
pub fn dkim_public_key(record: &str) -> Result<(String, String), String> {
    let t = tags(record);
    if let Some(v) = tag(&t, "v")
        && v != "DKIM1"
    {
        return Err(format!("v={v} is not DKIM1"));
    }
    let k = tag(&t, "k").unwrap_or("rsa").to_ascii_lowercase();
    let p: String = tag(&t, "p")
        .ok_or("has no p= tag")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if p.is_empty() {
        return Err("p= is empty (the key is revoked)".into());
    }
    Ok((k, p))
}

// ------------------------------------------------------------------ MTA-STS, TLS-RPT

/// RFC 8461 §3.1: exactly one `v=STSv1` record with an `id`.
pub fn mta_sts_id(txts: &[String]) -> Result<String, String> {
    let recs = versioned(txts, "STSv1");
    match recs.as_slice() {
        [] => Err("no v=STSv1 record".into()),
        [one] => tag(&tags(one), "id")
            .filter(|id| {
                !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .map(str::to_string)
            .ok_or_else(|| "the v=STSv1 record has no valid id= (1-32 letters and digits)".into()),
        _ => Err(format!(
            "{} v=STSv1 records; RFC 8461 wants exactly one",
            recs.len()
        )),
    }
}

pub fn tls_rpt_ok(txts: &[String]) -> Result<(), String> {
    let recs = versioned(txts, "TLSRPTv1");
    match recs.as_slice() {
        [] => Err("no v=TLSRPTv1 record".into()),
        [one] if tag(&tags(one), "rua").is_some() => Ok(()),
        [_] => Err("the v=TLSRPTv1 record has no rua=".into()),
        _ => Err("more than one v=TLSRPTv1 record".into()),
    }
}

// ------------------------------------------------------------------ SPF

/// RFC 7208 results (§2.6); `None` is "no record".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spf {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    PermError(String),
    TempError(String),
}

impl Spf {
    pub fn name(&self) -> String {
        match self {
            Spf::Pass => "pass".into(),
            Spf::Fail => "fail".into(),
            Spf::SoftFail => "softfail".into(),
            Spf::Neutral => "neutral".into(),
            Spf::None => "none (no SPF record)".into(),
            Spf::PermError(e) => format!("permerror ({e})"),
            Spf::TempError(e) => format!("temperror ({e})"),
        }
    }
}

/// RFC 7208 §4.6.4: at most 10 mechanisms that query DNS.
const MAX_LOOKUPS: usize = 10;

/// The single `v=spf1` record among `txts`.
pub fn spf_record(txts: &[String]) -> Result<Option<&String>, String> {
    let recs: Vec<&String> = txts
        .iter()
        .filter(|t| {
            let t = t.trim_start().to_ascii_lowercase();
            t == "v=spf1" || t.starts_with("v=spf1 ")
        })
        .collect();
    match recs.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(format!(
            "{} v=spf1 records; RFC 7208 §4.5 makes that a permerror: merge them into one",
            recs.len()
        )),
    }
}

/// check_host() of RFC 7208 for `ip` and `domain`, without macros (a record that uses them is
/// reported as not evaluable rather than guessed at).
pub async fn check_spf<L: Lookup>(dns: &L, ip: IpAddr, domain: &str) -> Spf {
    let mut lookups = 0;
    check_host(dns, ip, domain, &mut lookups, 0).await
}

async fn check_host<L: Lookup>(
    dns: &L,
    ip: IpAddr,
    domain: &str,
    lookups: &mut usize,
    depth: usize,
) -> Spf {
    let txts = match dns.txt(domain).await {
        Ok(t) => t,
        Err(e) => return Spf::TempError(format!("TXT {domain}: {e}")),
    };
    let record = match spf_record(&txts) {
        Ok(Some(r)) => r.clone(),
        Ok(None) => return Spf::None,
        Err(e) => return Spf::PermError(e),
    };
    let mut redirect = None;
    for term in record.split_whitespace().skip(1) {
        if term.contains('%') {
            return Spf::PermError(format!(
                "`{term}` uses macros, which wharf doctor does not expand"
            ));
        }
        if let Some((name, value)) = term.split_once('=') {
            if name.eq_ignore_ascii_case("redirect") {
                redirect = Some(value.to_string());
            }
            continue;
        }
        let (qualifier, mech) = match term.as_bytes().first() {
            Some(b'+') => (Spf::Pass, &term[1..]),
            Some(b'-') => (Spf::Fail, &term[1..]),
            Some(b'~') => (Spf::SoftFail, &term[1..]),
            Some(b'?') => (Spf::Neutral, &term[1..]),
            _ => (Spf::Pass, term),
        };
        let (name, arg) = match mech.split_once(':') {
            Some((n, a)) => (n.to_ascii_lowercase(), Some(a)),
            None => match mech.split_once('/') {
                // `a/24`, `mx//64`: a CIDR suffix right after the name.
                Some((n, _)) => (n.to_ascii_lowercase(), None),
                None => (mech.to_ascii_lowercase(), None),
            },
        };
        let cidr_part = mech.find('/').map(|i| &mech[i..]).unwrap_or("");
        let matched = match name.as_str() {
            "all" => Ok(true),
            "ip4" | "ip6" => match arg.and_then(parse_cidr) {
                Some((net, len)) => Ok(in_net(ip, net, len)),
                None => return Spf::PermError(format!("bad `{term}`")),
            },
            "a" | "mx" => {
                *lookups += 1;
                if *lookups > MAX_LOOKUPS {
                    return Spf::PermError("more than 10 DNS-querying mechanisms".into());
                }
                let target = arg
                    .map(|a| a.split('/').next().unwrap_or(a).to_string())
                    .unwrap_or_else(|| domain.to_string());
                let (v4len, v6len) = parse_dual_cidr(cidr_part);
                let hosts = if name == "a" {
                    vec![target]
                } else {
                    match dns.mx(&target).await {
                        Ok(mx) => mx.into_iter().map(|(_, h)| h).collect(),
                        Err(e) => return Spf::TempError(format!("MX {target}: {e}")),
                    }
                };
                let mut hit = false;
                for h in hosts {
                    match dns.addrs(&h).await {
                        Ok(list) => {
                            hit |= list.into_iter().any(|a| {
                                let len = if a.is_ipv4() { v4len } else { v6len };
                                in_net(ip, a, len)
                            })
                        }
                        Err(e) => return Spf::TempError(format!("A/AAAA {h}: {e}")),
                    }
                }
                Ok(hit)
            }
            "include" => {
                *lookups += 1;
                if *lookups > MAX_LOOKUPS || depth >= MAX_LOOKUPS {
                    return Spf::PermError("more than 10 DNS-querying mechanisms".into());
                }
                let Some(target) = arg else {
                    return Spf::PermError("include without a domain".into());
                };
                match Box::pin(check_host(dns, ip, target, lookups, depth + 1)).await {
                    Spf::Pass => Ok(true),
                    Spf::Fail | Spf::SoftFail | Spf::Neutral => Ok(false),
                    Spf::None => {
                        return Spf::PermError(format!("include:{target} has no SPF record"));
                    }
                    e @ (Spf::PermError(_) | Spf::TempError(_)) => return e,
                }
            }
            "exists" => {
                *lookups += 1;
                match arg {
                    Some(target) => match dns.addrs(target).await {
                        Ok(list) => Ok(list.iter().any(IpAddr::is_ipv4)),
                        Err(e) => return Spf::TempError(format!("A {target}: {e}")),
                    },
                    None => return Spf::PermError("exists without a domain".into()),
                }
            }
            // Deprecated (RFC 7208 §5.5) and expensive: treated as not matching.
            "ptr" => Ok(false),
            _ => Err(format!("unknown mechanism `{term}`")),
        };
        match matched {
            Ok(true) => return qualifier,
            Ok(false) => {}
            Err(e) => return Spf::PermError(e),
        }
    }
    if let Some(target) = redirect {
        *lookups += 1;
        if *lookups > MAX_LOOKUPS || depth >= MAX_LOOKUPS {
            return Spf::PermError("more than 10 DNS-querying mechanisms".into());
        }
        return match Box::pin(check_host(dns, ip, &target, lookups, depth + 1)).await {
            Spf::None => Spf::PermError(format!("redirect={target} has no SPF record")),
            other => other,
        };
    }
    Spf::Neutral
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((addr, len))
}

/// `/24//64` → (24, 64); missing parts are full-length.
fn parse_dual_cidr(text: &str) -> (u8, u8) {
    let (v4, v6) = match text.split_once("//") {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let v4 = v4
        .strip_prefix('/')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= 32)
        .unwrap_or(32);
    let v6 = v6
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= 128)
        .unwrap_or(128);
    (v4, v6)
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A table of records: the unit tests' DNS.
    #[derive(Debug, Default)]
    struct Table {
        txt: HashMap<String, Vec<String>>,
        addrs: HashMap<String, Vec<IpAddr>>,
        mx: HashMap<String, Vec<(u16, String)>>,
    }

    impl Lookup for Table {
        async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
            Ok(self.txt.get(name).cloned().unwrap_or_default())
        }
        async fn addrs(&self, name: &str) -> Result<Vec<IpAddr>, String> {
            Ok(self.addrs.get(name).cloned().unwrap_or_default())
        }
        async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, String> {
            Ok(self.mx.get(name).cloned().unwrap_or_default())
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> Table {
        let mut t = Table::default();
        t.addrs.insert(
            "mail.example.test".into(),
            vec![ip("192.0.2.10"), ip("2001:db8::10")],
        );
        t.mx.insert(
            "example.test".into(),
            vec![(10, "mail.example.test".into())],
        );
        t
    }

    fn run(t: &Table, addr: &str, domain: &str) -> Spf {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(check_spf(t, ip(addr), domain))
    }

    #[test]
    fn spf_mechanisms() {
        let mut t = table();
        t.txt
            .insert("example.test".into(), vec!["v=spf1 mx -all".into()]);
        assert_eq!(run(&t, "192.0.2.10", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "2001:db8::10", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "192.0.2.11", "example.test"), Spf::Fail);

        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 ip4:198.51.100.0/24 a:mail.example.test/28 ~all".into()],
        );
        assert_eq!(run(&t, "198.51.100.7", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "192.0.2.1", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "192.0.2.200", "example.test"), Spf::SoftFail);

        // include: one level down, and its failure does not end the outer evaluation.
        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 include:_spf.provider.test ip6:2001:db8::/64 -all".into()],
        );
        t.txt.insert(
            "_spf.provider.test".into(),
            vec!["v=spf1 ip4:203.0.113.5 -all".into()],
        );
        assert_eq!(run(&t, "203.0.113.5", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "2001:db8::10", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "192.0.2.10", "example.test"), Spf::Fail);

        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 redirect=_spf.provider.test".into()],
        );
        assert_eq!(run(&t, "203.0.113.5", "example.test"), Spf::Pass);
        assert_eq!(run(&t, "192.0.2.10", "example.test"), Spf::Fail);
    }

    #[test]
    fn spf_errors() {
        let mut t = table();
        assert_eq!(run(&t, "192.0.2.10", "example.test"), Spf::None);
        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 mx -all".into(), "v=spf1 a -all".into()],
        );
        assert!(matches!(
            run(&t, "192.0.2.10", "example.test"),
            Spf::PermError(_)
        ));
        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 exists:%{i}.bl.test -all".into()],
        );
        assert!(
            matches!(run(&t, "192.0.2.10", "example.test"), Spf::PermError(e) if e.contains("macros"))
        );
        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 include:loop.test".into()],
        );
        t.txt
            .insert("loop.test".into(), vec!["v=spf1 include:loop.test".into()]);
        assert!(
            matches!(run(&t, "192.0.2.10", "example.test"), Spf::PermError(e) if e.contains("10"))
        );
        t.txt.insert(
            "example.test".into(),
            vec!["v=spf1 ip4:300.1.1.1 -all".into()],
        );
        assert!(matches!(
            run(&t, "192.0.2.10", "example.test"),
            Spf::PermError(_)
        ));
        // Other TXT records at the name do not count.
        t.txt.insert(
            "example.test".into(),
            vec!["google-site-verification=x".into(), "v=spf1 +all".into()],
        );
        assert_eq!(run(&t, "192.0.2.99", "example.test"), Spf::Pass);
    }

    #[test]
    fn dmarc_records() {
        let d = parse_dmarc("v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test").unwrap();
        assert_eq!(d.policy, "quarantine");
        assert_eq!(d.rua.as_deref(), Some("mailto:postmaster@example.test"));
        assert_eq!(parse_dmarc("v=DMARC1;p=reject").unwrap().policy, "reject");
        assert!(parse_dmarc("p=reject; v=DMARC1").is_err());
        assert!(
            parse_dmarc("v=DMARC1; rua=mailto:x@y")
                .unwrap_err()
                .contains("no p=")
        );
        assert!(
            parse_dmarc("v=DMARC1; p=block")
                .unwrap_err()
                .contains("p=block")
        );
        assert!(parse_dmarc("v=DMARC1; p=none; pct=200").is_err());
    }

    #[test]
    fn dkim_and_sts_records() {
        let (k, p) = dkim_public_key("v=DKIM1; k=ed25519; p=AbC d\t=").unwrap();
        assert_eq!((k.as_str(), p.as_str()), ("ed25519", "AbCd="));
        assert_eq!(dkim_public_key("p=xyz").unwrap().0, "rsa");
        assert!(
            dkim_public_key("v=DKIM1; k=rsa; p=")
                .unwrap_err()
                .contains("revoked")
        );
        assert!(dkim_public_key("v=DKIM2; p=x").is_err());

        let id = mta_sts_id(&["v=STSv1; id=20261129abc;".to_string()]).unwrap();
        assert_eq!(id, "20261129abc");
        assert!(mta_sts_id(&[]).is_err());
        assert!(mta_sts_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]).is_err());
        assert!(mta_sts_id(&["v=STSv1; id=not valid!".into()]).is_err());

        assert!(tls_rpt_ok(&["v=TLSRPTv1; rua=mailto:tls@example.test".into()]).is_ok());
        assert!(tls_rpt_ok(&["v=TLSRPTv1".into()]).is_err());
        assert!(tls_rpt_ok(&["v=spf1 -all".into()]).is_err());
    }
}
