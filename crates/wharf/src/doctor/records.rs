//! Reading the TXT records `wharf doctor` checks (SPF, DMARC, DKIM, MTA-STS, TLS-RPT). SPF is
//! evaluated by `wharf-inbound` (mail-auth), as for arriving mail.

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

#[cfg(test)]
mod tests {
    use super::*;

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
