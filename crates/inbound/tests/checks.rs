//! The checks of arriving mail against an authoritative DNS server on loopback: SPF (both
//! identities), DKIM signed by Wharf's own signer (RSA and Ed25519) and tampered, DMARC
//! alignment and policies (table-driven), iprev, the Authentication-Results header and forged
//! ones, trusted forwarders, per-domain policy, and hostile records and a silent DNS server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::ResolverOpts;
use wharf_inbound::{Action, Arrival, Disposition, InboundConfig, SpfResult, Verifier};
use wharf_outbound::dkim::{self, Algorithm, DkimKey, DkimSigners};
use wharf_testkit::{Zone, start_dns};

const HOST: &str = "mx.example.test";
const LOOPBACK: &str = "127.0.0.1";

fn resolver(dns: SocketAddr, timeout: Duration) -> hickory_resolver::TokioResolver {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    wharf_outbound::route::resolver(&[dns], opts).unwrap()
}

async fn verifier(zone: Zone, cfg: InboundConfig) -> Verifier {
    let dns = start_dns(zone).await;
    Verifier::new(resolver(dns, Duration::from_secs(2)), cfg, HOST).unwrap()
}

fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <{from}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@{}>\r\n\r\nHello.\r\n",
        from.rsplit_once('@').unwrap().1
    )
    .into_bytes()
}

fn arrival<'a>(mail_from: &'a str, helo: &'a str, rcpts: &'a [String]) -> Arrival<'a> {
    Arrival {
        ip: LOOPBACK.parse().unwrap(),
        helo,
        mail_from,
        recipients: rcpts,
        forwarding: false,
    }
}

fn rcpt() -> Vec<String> {
    vec!["alice@example.test".to_string()]
}

/// Sender domains with SPF for 127.0.0.1 (`good`, `strict`, `none`, `quar`, `test`) or for
/// another address only (`paypal`, `nodmarc`), and their DMARC records.
fn zone() -> Zone {
    Zone::default()
        .txt("good.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("_dmarc.good.test", "v=DMARC1; p=reject; sp=quarantine")
        .txt("mail.good.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("strict.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("mail.strict.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("_dmarc.strict.test", "v=DMARC1; p=reject; aspf=s")
        .txt("paypal.test", "v=spf1 ip4:192.0.2.1 -all")
        .txt("_dmarc.paypal.test", "v=DMARC1; p=reject")
        .txt("quar.test", "v=spf1 ip4:192.0.2.1 -all")
        .txt("_dmarc.quar.test", "v=DMARC1; p=quarantine")
        .txt("none.test", "v=spf1 ip4:192.0.2.1 -all")
        .txt("_dmarc.none.test", "v=DMARC1; p=none")
        .txt("testing.test", "v=spf1 ip4:192.0.2.1 -all")
        .txt("_dmarc.testing.test", "v=DMARC1; p=reject; t=y")
        .txt("nodmarc.test", "v=spf1 ip4:192.0.2.1 -all")
        .txt("soft.test", "v=spf1 ip4:192.0.2.1 ~all")
        .txt("helo.good.test", "v=spf1 ip4:127.0.0.1 -all")
}

#[tokio::test]
async fn an_aligned_sender_passes_and_the_header_says_so() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let verdict = v
        .check(
            &arrival("alice@good.test", "helo.good.test", &rcpts),
            &message("alice@good.test", "hi"),
        )
        .await;
    assert_eq!(verdict.action, Action::Deliver);
    assert_eq!(verdict.dmarc, "pass");
    let h = &verdict.header;
    assert!(
        h.starts_with("Authentication-Results: mx.example.test;"),
        "{h}"
    );
    assert!(h.ends_with("\r\n"), "{h}");
    assert!(
        h.contains("spf=pass") && h.contains("smtp.mailfrom=alice@good.test"),
        "{h}"
    );
    assert!(h.contains("dmarc=pass header.from=good.test"), "{h}");
    assert!(h.contains("dkim=none"), "{h}");
    assert!(h.contains("iprev="), "{h}");
}

/// DMARC through SPF: (MAIL FROM, From:, expected DMARC result, expected action).
#[tokio::test]
async fn dmarc_alignment_and_policies_table() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let cases: &[(&str, &str, &str, Action)] = &[
        // Relaxed: the MAIL FROM domain is a subdomain of the author's organisational domain.
        (
            "bounce@mail.good.test",
            "a@good.test",
            "pass",
            Action::Deliver,
        ),
        // Strict SPF alignment refuses the subdomain.
        (
            "bounce@mail.strict.test",
            "a@strict.test",
            "fail",
            Action::Reject(String::new()),
        ),
        ("a@strict.test", "a@strict.test", "pass", Action::Deliver),
        // The forgery: SPF fails, no DKIM, p=reject.
        (
            "service@paypal.test",
            "service@paypal.test",
            "fail",
            Action::Reject(String::new()),
        ),
        // Aligned with nothing: MAIL FROM of one domain, From: another with p=reject.
        (
            "alice@good.test",
            "service@paypal.test",
            "fail",
            Action::Reject(String::new()),
        ),
        ("x@quar.test", "x@quar.test", "fail", Action::Junk),
        ("x@none.test", "x@none.test", "fail", Action::Deliver),
        // t=y (testing): the policy applies one level lower, reject as quarantine.
        ("x@testing.test", "x@testing.test", "fail", Action::Junk),
        // A subdomain without its own record takes sp= of the organisational domain.
        (
            "x@nosuch.good.test",
            "x@nosuch.good.test",
            "fail",
            Action::Junk,
        ),
    ];
    for (mail_from, from, dmarc, action) in cases {
        let verdict = v
            .check(
                &arrival(mail_from, "client.example.org", &rcpts),
                &message(from, "table"),
            )
            .await;
        assert_eq!(
            verdict.dmarc, *dmarc,
            "{mail_from} / {from}: {}",
            verdict.header
        );
        let same = match (&verdict.action, action) {
            (Action::Reject(_), Action::Reject(_)) => true,
            (a, b) => a == b,
        };
        assert!(
            same,
            "{mail_from} / {from}: {:?} {}",
            verdict.action, verdict.header
        );
    }
}

#[tokio::test]
async fn the_forgery_is_refused_with_a_reason_naming_the_domain() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let verdict = v
        .check(
            &arrival("service@paypal.test", "client.example.org", &rcpts),
            &message("service@paypal.test", "Your account"),
        )
        .await;
    match verdict.action {
        Action::Reject(why) => assert!(why.contains("paypal.test"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(verdict.header.contains("spf=fail"), "{}", verdict.header);
    assert!(
        verdict.header.contains("policy.dmarc=reject"),
        "{}",
        verdict.header
    );
}

#[tokio::test]
async fn without_dmarc_an_spf_fail_follows_the_spf_fail_key() {
    let rcpts = rcpt();
    for (disposition, expected) in [
        (Disposition::Junk, Action::Junk),
        (Disposition::Accept, Action::Deliver),
    ] {
        let cfg = InboundConfig {
            spf_fail: disposition,
            ..InboundConfig::default()
        };
        let v = verifier(zone(), cfg).await;
        let verdict = v
            .check(
                &arrival("x@nodmarc.test", "client.example.org", &rcpts),
                &message("x@nodmarc.test", "s"),
            )
            .await;
        assert_eq!(verdict.action, expected);
        assert_eq!(verdict.dmarc, "none");
        // softfail is never acted on.
        let verdict = v
            .check(
                &arrival("x@soft.test", "client.example.org", &rcpts),
                &message("x@soft.test", "s"),
            )
            .await;
        assert_eq!(verdict.action, Action::Deliver, "{}", verdict.header);
        assert!(
            verdict.header.contains("spf=softfail"),
            "{}",
            verdict.header
        );
    }
    let cfg = InboundConfig {
        spf_fail: Disposition::Reject,
        ..InboundConfig::default()
    };
    let v = verifier(zone(), cfg).await;
    let verdict = v
        .check(
            &arrival("x@nodmarc.test", "client.example.org", &rcpts),
            &message("x@nodmarc.test", "s"),
        )
        .await;
    assert!(
        matches!(verdict.action, Action::Reject(_)),
        "{:?}",
        verdict.action
    );
}

#[tokio::test]
async fn the_null_sender_is_checked_by_its_helo_identity() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let verdict = v
        .check(
            &arrival("", "helo.good.test", &rcpts),
            &message("mailer-daemon@good.test", "bounce"),
        )
        .await;
    assert!(
        verdict.header.contains("smtp.mailfrom=<>"),
        "{}",
        verdict.header
    );
    assert!(
        verdict.header.contains("smtp.helo=helo.good.test"),
        "{}",
        verdict.header
    );
    assert_eq!(
        verdict.spf,
        mail_auth::SpfResult::Pass,
        "{}",
        verdict.header
    );
}

fn signed(key: &dkim::GeneratedKey, domain: &str, raw: &[u8]) -> Vec<u8> {
    let mut signers = DkimSigners::new();
    signers.add(DkimKey::from_pem(domain, "sel", key.private_key_pem.as_bytes()).unwrap());
    signers.sign(raw).unwrap()
}

#[tokio::test]
async fn dkim_signatures_of_our_signer_verify_and_tampering_fails() {
    let rsa = dkim::generate("dk.test", "sel", Algorithm::Rsa).unwrap();
    let ed = dkim::generate("ed.test", "sel", Algorithm::Ed25519).unwrap();
    let zone = zone()
        .txt(&rsa.dns_name, &rsa.txt_value)
        .txt(&ed.dns_name, &ed.txt_value)
        .txt("_dmarc.dk.test", "v=DMARC1; p=reject")
        .txt("_dmarc.ed.test", "v=DMARC1; p=reject");
    let v = verifier(zone, InboundConfig::default()).await;
    let rcpts = rcpt();
    for (key, domain) in [(&rsa, "dk.test"), (&ed, "ed.test")] {
        let from = format!("news@{domain}");
        let raw = signed(key, domain, &message(&from, "signed"));
        // SPF fails (the MAIL FROM domain does not authorise us): DKIM alone carries DMARC.
        let verdict = v
            .check(
                &arrival("x@paypal.test", "client.example.org", &rcpts),
                &raw,
            )
            .await;
        assert!(
            verdict
                .header
                .contains(&format!("dkim=pass header.d={domain}")),
            "{}",
            verdict.header
        );
        assert_eq!(verdict.dmarc, "pass", "{}", verdict.header);
        assert_eq!(verdict.action, Action::Deliver);

        // A changed body breaks the signature.
        let mut body = raw.clone();
        let at = body.len() - 4;
        body[at] = b'X';
        let verdict = v
            .check(
                &arrival("x@paypal.test", "client.example.org", &rcpts),
                &body,
            )
            .await;
        // mail-auth reports a body hash mismatch as neutral (RFC 6376 §6.1.3 leaves the label open).
        assert!(
            verdict.header.contains("dkim=fail") || verdict.header.contains("dkim=neutral"),
            "{}",
            verdict.header
        );
        assert!(
            matches!(verdict.action, Action::Reject(_)),
            "{:?}",
            verdict.action
        );

        // So does a changed signed header.
        let text = String::from_utf8(raw.clone()).unwrap();
        let forged = text.replace("Subject: signed", "Subject: signed and changed");
        let verdict = v
            .check(
                &arrival("x@paypal.test", "client.example.org", &rcpts),
                forged.as_bytes(),
            )
            .await;
        assert!(
            verdict.header.contains("dkim=fail") || verdict.header.contains("dkim=neutral"),
            "{}",
            verdict.header
        );
        assert!(!verdict.header.contains("dkim=pass"), "{}", verdict.header);
    }
}

#[tokio::test]
async fn a_malformed_dkim_signature_is_a_verdict_not_a_failure() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let mut raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=good.test; s=; b=!!!; bh=;;;\r\n".to_vec();
    raw.extend_from_slice(&message("a@good.test", "odd"));
    let verdict = v
        .check(&arrival("a@good.test", "client.example.org", &rcpts), &raw)
        .await;
    assert!(
        verdict.header.contains("dkim=permerror") || verdict.header.contains("dkim=neutral"),
        "{}",
        verdict.header
    );
    // SPF still aligns: DMARC passes.
    assert_eq!(verdict.action, Action::Deliver);
}

#[tokio::test]
async fn iprev_passes_when_the_name_points_back() {
    let mut zone = zone().a("host.example.org", "127.0.0.1");
    zone.add_line("1.0.0.127.in-addr.arpa. 300 IN PTR host.example.org.");
    let v = verifier(zone, InboundConfig::default()).await;
    let rcpts = rcpt();
    let verdict = v
        .check(
            &arrival("a@good.test", "client.example.org", &rcpts),
            &message("a@good.test", "x"),
        )
        .await;
    assert!(verdict.header.contains("iprev=pass"), "{}", verdict.header);
}

#[tokio::test]
async fn our_forged_verdicts_are_found_and_others_kept() {
    let v = verifier(zone(), InboundConfig::default()).await;
    let rcpts = rcpt();
    let mut raw = b"Authentication-Results: MX.example.test; dmarc=pass header.from=paypal.test\r\nAuthentication-Results: relay.example.org; spf=pass\r\n".to_vec();
    raw.extend_from_slice(&message("service@paypal.test", "forged"));
    let verdict = v
        .check(
            &arrival("service@paypal.test", "client.example.org", &rcpts),
            &raw,
        )
        .await;
    assert_eq!(verdict.forged.len(), 1);
    let kept = wharf_inbound::header::without(&raw, &verdict.forged);
    let kept = String::from_utf8(kept).unwrap();
    assert!(!kept.contains("MX.example.test"), "{kept}");
    assert!(
        kept.starts_with("Authentication-Results: relay.example.org"),
        "{kept}"
    );
}

#[tokio::test]
async fn trusted_forwarders_and_lenient_domains_are_not_refused() {
    let rcpts = rcpt();
    let cfg = InboundConfig {
        trusted_forwarders: vec!["127.0.0.0/8".into()],
        ..InboundConfig::default()
    };
    let v = verifier(zone(), cfg).await;
    let verdict = v
        .check(
            &arrival("service@paypal.test", "list.example.org", &rcpts),
            &message("service@paypal.test", "via a list"),
        )
        .await;
    assert_eq!(verdict.action, Action::Deliver);
    assert!(
        verdict.header.contains("dmarc=fail"),
        "the header still tells"
    );

    // A recipient domain that does not enforce reject gets the message in Junk; with a strict
    // recipient in the same transaction the lenient one wins (one reply covers both).
    let cfg: InboundConfig =
        toml::from_str("[domain.\"lists.example.test\"]\ndmarc_reject = false\n").unwrap();
    let v = verifier(zone(), cfg).await;
    let both = vec![
        "alice@example.test".to_string(),
        "bob@lists.example.test".to_string(),
    ];
    let verdict = v
        .check(
            &arrival("service@paypal.test", "client.example.org", &both),
            &message("service@paypal.test", "x"),
        )
        .await;
    assert_eq!(verdict.action, Action::Junk);
    let strict_only = rcpt();
    let verdict = v
        .check(
            &arrival("service@paypal.test", "client.example.org", &strict_only),
            &message("service@paypal.test", "x"),
        )
        .await;
    assert!(matches!(verdict.action, Action::Reject(_)));
}

#[tokio::test]
async fn hostile_records_get_verdicts() {
    let long = format!("v=spf1 {}-all", "ip4:192.0.2.1 ".repeat(800));
    assert!(long.len() > 10_000);
    let zone = zone()
        .txt("long.test", &long)
        .txt("loop-a.test", "v=spf1 include:loop-b.test -all")
        .txt("loop-b.test", "v=spf1 include:loop-a.test -all")
        .txt(
            "many.test",
            &format!(
                "v=spf1 {}-all",
                (0..20)
                    .map(|i| format!("include:n{i}.many.test "))
                    .collect::<String>()
            ),
        );
    let v = verifier(zone, InboundConfig::default()).await;
    let rcpts = rcpt();
    for sender in ["x@long.test", "x@loop-a.test", "x@many.test"] {
        let verdict = v
            .check(
                &arrival(sender, "client.example.org", &rcpts),
                &message(sender, "hostile"),
            )
            .await;
        assert!(
            // An 11 KB answer may not even travel (temperror); a loop or too many lookups is a
            // permerror; either way a verdict, and the message is still delivered.
            verdict.header.contains("spf=permerror")
                || verdict.header.contains("spf=temperror")
                || verdict.header.contains("spf=fail"),
            "{sender}: {}",
            verdict.header
        );
        assert_eq!(verdict.action, Action::Deliver, "{sender}");
    }
}

/// SPF alone, for hostile records: a 10,000-character record is refused unread, lookups past the
/// limits end the evaluation, all quickly.
#[tokio::test]
async fn hostile_spf_records_cost_little() {
    let long = format!("v=spf1 {}-all", "ip4:192.0.2.1 ".repeat(800));
    // Over TCP: the answer is too long for a datagram.
    let zone = zone()
        .txt("long.test", &long)
        .truncate_udp("long.test")
        .txt("loop-a.test", "v=spf1 include:loop-b.test -all")
        .txt("loop-b.test", "v=spf1 include:loop-a.test -all")
        .txt(
            "voids.test",
            "v=spf1 a:n1.voids.test a:n2.voids.test a:n3.voids.test -all",
        )
        .txt("mxs.test", "v=spf1 mx -all");
    let zone = (0..11).fold(zone, |z, i| z.mx("mxs.test", i, &format!("mx{i}.mxs.test")));
    let v = verifier(zone, InboundConfig::default()).await;
    let ip: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    for sender in ["x@long.test", "x@loop-a.test", "x@voids.test", "x@mxs.test"] {
        let start = Instant::now();
        let out = v.spf_mail_from(ip, "client.example.org", sender).await;
        assert_eq!(out.result(), SpfResult::PermError, "{sender}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{sender}: {:?}",
            start.elapsed()
        );
    }
}

/// An internationalised sender domain (SMTPUTF8) is checked in its A-label form, the form DNS
/// and DMARC use (RFC 8616): the record published under `xn--…` decides.
#[tokio::test]
async fn an_internationalised_sender_domain_is_looked_up_as_a_labels() {
    let zone = zone().txt("xn--hxajbheg2az3al.test", "v=spf1 ip4:192.0.2.9 -all");
    let v = verifier(zone, InboundConfig::default()).await;
    let out = v
        .spf_mail_from(
            "192.0.2.9".parse().unwrap(),
            "client.example.org",
            "δοκιμή@παράδειγμα.test",
        )
        .await;
    assert_eq!(out.result(), SpfResult::Pass);
    assert_eq!(out.domain(), "xn--hxajbheg2az3al.test");
    let out = v
        .spf_mail_from(
            "192.0.2.10".parse().unwrap(),
            "client.example.org",
            "δοκιμή@παράδειγμα.test",
        )
        .await;
    assert_eq!(out.result(), SpfResult::Fail);
}

/// A DNS server slower than `spf_deadline_secs`: SPF gives temperror at the deadline, however
/// long each query would be allowed.
#[tokio::test]
async fn spf_ends_at_its_deadline() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let cfg = InboundConfig {
        spf_deadline_secs: 1,
        ..InboundConfig::default()
    };
    let v = Verifier::new(resolver(addr, Duration::from_secs(30)), cfg, HOST).unwrap();
    let start = Instant::now();
    let out = v
        .spf_mail_from(
            "192.0.2.9".parse().unwrap(),
            "client.example.org",
            "x@good.test",
        )
        .await;
    assert_eq!(out.result(), SpfResult::TempError);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop(silent);
}

/// A DNS server that never answers: the check ends within its deadline with a temporary
/// verdict, delivering unless `tempfail_on_dns_error` asks for 451.
#[tokio::test]
async fn a_silent_dns_server_costs_bounded_time() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let rcpts = rcpt();
    for tempfail in [false, true] {
        let cfg = InboundConfig {
            dns_timeout_secs: 1,
            tempfail_on_dns_error: tempfail,
            ..InboundConfig::default()
        };
        let v = Verifier::new(resolver(addr, Duration::from_millis(300)), cfg, HOST).unwrap();
        let start = Instant::now();
        let verdict = v
            .check(
                &arrival("x@good.test", "client.example.org", &rcpts),
                &message("x@good.test", "slow dns"),
            )
            .await;
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{:?}",
            start.elapsed()
        );
        assert!(verdict.header.contains("temperror"), "{}", verdict.header);
        if tempfail {
            assert!(
                matches!(verdict.action, Action::TempFail(_)),
                "{:?}",
                verdict.action
            );
        } else {
            assert_eq!(verdict.action, Action::Deliver);
        }
    }
    drop(silent);
}

#[test]
fn bad_configuration_is_refused() {
    let cfg = InboundConfig {
        trusted_forwarders: vec!["lists.example.org".into()],
        ..InboundConfig::default()
    };
    let resolver = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { resolver("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1)) })
    };
    let err = Verifier::new(resolver, cfg, HOST).err().unwrap();
    assert!(err.contains("lists.example.org"), "{err}");
    let _unused: Option<IpAddr> = None;
}

/// Forwarding breaks SPF: Wharf A seals what it forwards with ARC, and Wharf B, which sees the
/// message arrive from A's address, trusts A's seal where DMARC alone would refuse.
#[tokio::test]
async fn arc_sealed_forwarding_round_trip() {
    let key = dkim::generate("fwd.test", "arc", Algorithm::Rsa).unwrap();
    let zone = zone().txt(&key.dns_name, &key.txt_value);
    let dns = start_dns(zone).await;
    let a = Verifier::new(
        resolver(dns, Duration::from_secs(2)),
        InboundConfig::default(),
        "mx.fwd.test",
    )
    .unwrap()
    .with_arc_sealer("fwd.test", "arc", key.private_key_pem.as_bytes())
    .unwrap();
    let rcpts = vec!["list@fwd.test".to_string()];
    let original = message("news@good.test", "forwarded");
    let at_a = a
        .check(
            &Arrival {
                forwarding: true,
                ..arrival("news@good.test", "mx.good.test", &rcpts)
            },
            &original,
        )
        .await;
    assert_eq!(at_a.dmarc, "pass");
    let seal = at_a
        .arc_seal
        .clone()
        .expect("a forwarded arrival is sealed");
    assert!(
        seal.contains("ARC-Seal: i=1;") && seal.contains("cv=none"),
        "{seal}"
    );
    assert!(seal.contains("ARC-Message-Signature: i=1;"), "{seal}");
    assert!(
        seal.contains("ARC-Authentication-Results: i=1; mx.fwd.test;"),
        "{seal}"
    );
    // Not forwarded: no seal.
    let plain = a
        .check(
            &arrival("news@good.test", "mx.good.test", &rcpts),
            &original,
        )
        .await;
    assert!(plain.arc_seal.is_none());

    // What B receives from A (127.0.0.2, which good.test's SPF does not list).
    let mut forwarded = seal.into_bytes();
    forwarded.extend_from_slice(at_a.header.as_bytes());
    forwarded.extend_from_slice(&original);
    let from_a = |rcpts| Arrival {
        ip: "127.0.0.2".parse().unwrap(),
        ..arrival("news@good.test", "mx.fwd.test", rcpts)
    };
    let b_rcpts = rcpt();
    let strict_b = verifier(zone_with_key(&key), InboundConfig::default()).await;
    let v = strict_b.check(&from_a(&b_rcpts), &forwarded).await;
    assert!(v.header.contains("arc=pass"), "{}", v.header);
    assert_eq!(v.dmarc, "fail", "{}", v.header);
    assert!(
        matches!(v.action, Action::Reject(_)),
        "without trust in the sealer"
    );
    let trusting_b = verifier(
        zone_with_key(&key),
        InboundConfig {
            trusted_arc_sealers: vec!["fwd.test".into()],
            ..InboundConfig::default()
        },
    )
    .await;
    let v = trusting_b.check(&from_a(&b_rcpts), &forwarded).await;
    assert_eq!(v.action, Action::Deliver, "{}", v.header);

    // A tampered forwarded body breaks the chain: the seal no longer vouches.
    let mut tampered = forwarded.clone();
    let at = tampered.len() - 4;
    tampered[at] = b'X';
    let v = trusting_b.check(&from_a(&b_rcpts), &tampered).await;
    assert!(!v.header.contains("arc=pass"), "{}", v.header);
    assert!(matches!(v.action, Action::Reject(_)), "{:?}", v.action);
}

fn zone_with_key(key: &dkim::GeneratedKey) -> Zone {
    zone().txt(&key.dns_name, &key.txt_value)
}
