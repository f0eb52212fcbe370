//! The RFC 7208 test suite of the SPF council (rfc7208-tests.yml, as shipped with pyspf; BSD
//! licence in tests/data/rfc7208-tests.LICENSE) run against Wharf's SPF evaluation
//! (`Verifier::spf_mail_from`), each scenario's zone served by a DNS server on loopback.
//!
//! tests/data/rfc7208-tests.json is the YAML converted once, by
//! `python3 -c 'import yaml,json,sys; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))),
//! open(sys.argv[2],"w"), indent=1, default=str)' rfc7208-tests.yml rfc7208-tests.json`.
//!
//! The zone is published as pyspf's own harness does: an `SPF` record is also a TXT record unless
//! the name has TXT records of its own, `NONE` publishes nothing, and `TIMEOUT` makes queries
//! for the name's missing types fail (SERVFAIL, a temporary error, as a timeout is).
//!
//! Every case must pass, the `exp=` explanations the suite expects included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::ResolverOpts;
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, TXT};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::SpfResult;
use serde_json::Value;
use wharf_inbound::{InboundConfig, Verifier};
use wharf_testkit::{Zone, start_dns};

const SUITE: &str = include_str!("data/rfc7208-tests.json");

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Label by label as written: the suite has names such as `foo:bar/baz.example.com`, which
/// hickory's text parser refuses but DNS carries; an empty name is the root (a null MX).
fn host(name: &str) -> Option<Name> {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return Some(Name::root());
    }
    let mut n = Name::from_labels(name.split('.').map(str::as_bytes)).ok()?;
    n.set_fqdn(true);
    Some(n)
}

fn zone(data: &BTreeMap<String, Value>) -> Zone {
    let mut z = Zone::default();
    for (owner, records) in data {
        let records = records.as_array().cloned().unwrap_or_default();
        let has_txt = records
            .iter()
            .any(|r| r.as_object().is_some_and(|o| o.contains_key("TXT")));
        let mut present: HashSet<RecordType> = HashSet::new();
        let mut timeout = false;
        for r in &records {
            let Some(obj) = r.as_object() else {
                if r.as_str() == Some("TIMEOUT") {
                    timeout = true;
                }
                continue;
            };
            for (t, v) in obj {
                // `NONE` publishes nothing (so a TIMEOUT name times out for it).
                let txt_like = |z: &mut Zone, rt: RecordType| {
                    let mut parts = strings(v);
                    if parts == ["NONE"] {
                        return None;
                    }
                    // A TXT record of no character-strings (`SPF: []`) cannot exist: RFC 1035
                    // §3.3.14 makes TXT-DATA one or more of them, and hickory refuses such an
                    // answer whole. Published as what a zone file's `TXT ""` gives instead.
                    if parts.is_empty() {
                        parts.push(String::new());
                    }
                    z.add(owner, RData::TXT(TXT::new(parts)));
                    Some(rt)
                };
                let rt = match t.as_str() {
                    "TXT" => txt_like(&mut z, RecordType::TXT),
                    // The SPF RR type is obsolete (RFC 7208 §3.1) and not queried; its records
                    // are the TXT records of a name without TXT records of its own.
                    "SPF" if !has_txt => txt_like(&mut z, RecordType::TXT),
                    "SPF" => continue,
                    "A" | "AAAA" => Some({
                        let Some(ip) = v.as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                            continue;
                        };
                        match ip {
                            IpAddr::V4(v4) => {
                                z.add(owner, RData::A(A(v4)));
                                RecordType::A
                            }
                            IpAddr::V6(v6) => {
                                z.add(owner, RData::AAAA(AAAA(v6)));
                                RecordType::AAAA
                            }
                        }
                    }),
                    "MX" => {
                        let a = v.as_array().cloned().unwrap_or_default();
                        let pref = a.first().and_then(Value::as_u64).unwrap_or(0) as u16;
                        let Some(target) = a.get(1).and_then(Value::as_str).and_then(host) else {
                            continue;
                        };
                        z.add(owner, RData::MX(MX::new(pref, target)));
                        Some(RecordType::MX)
                    }
                    "PTR" => {
                        let Some(target) = v.as_str().and_then(host) else {
                            continue;
                        };
                        z.add(owner, RData::PTR(PTR(target)));
                        Some(RecordType::PTR)
                    }
                    "CNAME" => {
                        let Some(target) = v.as_str().and_then(host) else {
                            continue;
                        };
                        z.add(owner, RData::CNAME(CNAME(target)));
                        Some(RecordType::CNAME)
                    }
                    _ => continue,
                };
                if let Some(rt) = rt {
                    present.insert(rt);
                }
            }
        }
        if timeout {
            for rt in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
                RecordType::TXT,
                RecordType::PTR,
            ] {
                if !present.contains(&rt) {
                    z = z.servfail(owner, rt);
                }
            }
        }
    }
    z
}

fn label(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rfc7208_suite_passes() {
    let scenarios: Vec<Value> = serde_json::from_str(SUITE).unwrap();
    let mut total = 0;
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let data: BTreeMap<String, Value> = scenario
            .get("zonedata")
            .and_then(|z| serde_json::from_value(z.clone()).ok())
            .unwrap_or_default();
        let dns = start_dns(zone(&data)).await;
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_millis(500);
        opts.attempts = 1;
        // No cache between tests of one scenario that expect different answers for one name.
        opts.cache_size = 0;
        let resolver = wharf_outbound::route::resolver(&[dns], opts).unwrap();
        let v = Verifier::new(resolver, InboundConfig::default(), "receiver.test").unwrap();
        let tests = scenario.get("tests").and_then(Value::as_object).unwrap();
        for (name, t) in tests {
            total += 1;
            let ip: IpAddr = t["host"].as_str().unwrap().parse().unwrap();
            let helo = t["helo"].as_str().unwrap_or("");
            let mail_from = t["mailfrom"].as_str().unwrap_or("");
            let expected = strings(&t["result"]);
            let out = v.spf_mail_from(ip, helo, mail_from).await;
            let got = label(out.result());
            if !expected.iter().any(|e| e == got) {
                failures.push(format!(
                    "{name} ({}): expected {expected:?}, got {got}",
                    t["spec"].as_str().unwrap_or("")
                ));
                continue;
            }
            // `DEFAULT` is the receiver's own text: no `exp=` explanation. Compared without
            // case: the suite spells the ip6.arpa nibbles of `%{ir}` in upper case.
            if let Some(want) = t.get("explanation").and_then(Value::as_str) {
                let ok = match out.explanation() {
                    None => want == "DEFAULT",
                    Some(e) => e.eq_ignore_ascii_case(want),
                };
                if !ok {
                    failures.push(format!(
                        "{name}: explanation {:?}, expected {want:?}",
                        out.explanation()
                    ));
                }
            }
        }
    }
    let passed = total - failures.len();
    eprintln!("RFC 7208 test suite: {passed}/{total} pass");
    for f in &failures {
        eprintln!("  {f}");
    }
    assert_eq!(total, 203, "the whole suite ran");
    assert!(
        failures.is_empty(),
        "{passed}/{total} pass; every case of the suite must"
    );
}
