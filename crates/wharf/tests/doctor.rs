//! `wharf dns` and `wharf doctor` against a real `wharf serve` on loopback and an in-process DNS
//! server: the zone `wharf dns` prints, served back, makes every check pass (a round trip); a
//! broken zone makes each check fail with its fix; a listener nobody answers on fails too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::TcpListener;
use std::time::Duration;

use common::{Env, Server, random_offset};
use wharf_testkit::dns::DnsType as RecordType;
use wharf_testkit::{Zone, start_dns};

pub(crate) const HOST: &str = "mail.example.test";
pub(crate) const DOMAIN: &str = "example.test";

/// A private CA and a certificate from it for the host and the domain's service names; the CA
/// goes into `outbound.ca_file`, which `wharf doctor` trusts like the system's CAs.
pub(crate) fn write_certificates(env: &Env) {
    let mut ca = rcgen::CertificateParams::default();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Wharf doctor test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let names: Vec<String> = [HOST, "mta-sts", "autoconfig", "autodiscover"]
        .iter()
        .map(|n| {
            if *n == HOST {
                n.to_string()
            } else {
                format!("{n}.{DOMAIN}")
            }
        })
        .collect();
    let mut leaf = rcgen::CertificateParams::new(names).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(env.path().join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(env.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(env.path().join("key.pem"), key.serialize_pem()).unwrap();
}

pub(crate) const BASE_CONFIG: &str = "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n[outbound]\nca_file = \"ca.pem\"\n";

/// The seven standard listeners written out, so a test can add one.
const STANDARD_LISTENERS: &str = r#"
[[listener]]
protocol = "smtp"
[[listener]]
protocol = "submission"
[[listener]]
protocol = "submission"
tls = "implicit"
[[listener]]
protocol = "imap"
[[listener]]
protocol = "imap"
tls = "implicit"
[[listener]]
protocol = "pop3"
[[listener]]
protocol = "pop3"
tls = "implicit"
"#;

/// A configured server with a domain and a DKIM key, running on loopback at a random offset.
fn start() -> (Env, u16, Server) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let env = Env::empty();
        env.write_config(BASE_CONFIG);
        write_certificates(&env);
        env.ok(&["domain", "add", DOMAIN]);
        env.ok(&["dkim", "generate", DOMAIN, "--selector", "s1"]);
        let offset = random_offset();
        let mut server = Server::start(
            env.path(),
            &[
                "serve",
                "--config",
                env.config().to_str().unwrap(),
                "--listen",
                "127.0.0.1",
                "--port-offset",
                &offset.to_string(),
            ],
        );
        match server.wait_for(" ready", Duration::from_secs(60)) {
            Some(_) => return (env, offset, server),
            None => {
                let err = server.rest_of_stderr(Duration::from_secs(2));
                assert!(
                    attempt < 3 && err.contains("in use"),
                    "no ready line:\n{err}"
                );
            }
        }
    }
}

/// `wharf dns` output as a zone, plus what an operator adds by hand: the host's address and
/// its reverse record. The address is a documentation one (RFC 5737) that nothing connects to:
/// doctor reaches the listeners through the config's addresses; DNS only has to agree. (A
/// loopback address would not do: resolvers answer 127.0.0.1's reverse lookup themselves.)
pub(crate) fn zone_from_wharf_dns(env: &Env) -> (String, Zone) {
    let text = env.ok(&["dns", DOMAIN]);
    let mut zone = Zone::from_lines(&text);
    zone.add_line("mail.example.test. 3600 IN A 192.0.2.10");
    zone.add_line("10.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.test.");
    (text, zone)
}

fn doctor(env: &Env, resolver: std::net::SocketAddr, offset: u16) -> (bool, String, String) {
    let out = env.run(&[
        "doctor",
        "--resolver",
        &resolver.to_string(),
        "--port-offset",
        &offset.to_string(),
    ]);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The line of `text` starting with `prefix` (a zone line of `wharf dns`).
fn zone_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix} in:\n{text}"))
}

#[test]
fn dns_lists_every_record_and_refuses_unknown_domains() {
    let env = Env::empty();
    env.write_config(BASE_CONFIG);
    env.ok(&["domain", "add", DOMAIN]);
    let text = env.ok(&["dns", DOMAIN]);
    assert!(
        text.contains(
            "; no DKIM key for example.test: create one with `wharf dkim generate example.test`"
        ),
        "{text}"
    );
    for expected in [
        "example.test. 3600 IN MX 10 mail.example.test.",
        "example.test. 3600 IN TXT \"v=spf1 mx -all\"",
        "_dmarc.example.test. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test\"",
        "_smtp._tls.example.test. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.test\"",
        "mta-sts.example.test. 3600 IN CNAME mail.example.test.",
        "autoconfig.example.test. 3600 IN CNAME mail.example.test.",
        "autodiscover.example.test. 3600 IN CNAME mail.example.test.",
        "_autodiscover._tcp.example.test. 3600 IN SRV 0 1 443 mail.example.test.",
        "_submissions._tcp.example.test. 3600 IN SRV 0 1 465 mail.example.test.",
        "_submission._tcp.example.test. 3600 IN SRV 1 1 587 mail.example.test.",
        "_imaps._tcp.example.test. 3600 IN SRV 0 1 993 mail.example.test.",
        "_imap._tcp.example.test. 3600 IN SRV 1 1 143 mail.example.test.",
        "_pop3s._tcp.example.test. 3600 IN SRV 10 1 995 mail.example.test.",
        "_pop3._tcp.example.test. 3600 IN SRV 20 1 110 mail.example.test.",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "missing {expected} in:\n{text}"
        );
    }
    assert!(zone_line(&text, "_mta-sts.example.test. 3600 IN TXT \"v=STSv1; id=").len() > 50);

    // A key appears with its public half; a listener that is not configured is "not offered".
    let generated = env.ok(&["dkim", "generate", DOMAIN, "--selector", "s1"]);
    let value = generated
        .lines()
        .find_map(|l| l.strip_prefix("value: "))
        .unwrap()
        .to_string();
    env.write_config(&format!(
        "{BASE_CONFIG}\n[[listener]]\nprotocol = \"imap\"\ntls = \"implicit\"\nport = 10993\n"
    ));
    let text = env.ok(&["dns", DOMAIN]);
    assert!(!text.contains("no DKIM key"), "{text}");
    assert!(
        text.contains(&format!(
            "s1._domainkey.example.test. 3600 IN TXT \"{value}\""
        )),
        "{text}"
    );
    assert!(
        text.contains("_imaps._tcp.example.test. 3600 IN SRV 0 1 10993 mail.example.test."),
        "{text}"
    );
    assert!(
        text.contains("_pop3._tcp.example.test. 3600 IN SRV 0 0 0 ."),
        "{text}"
    );

    // Ports behind NAT come from [http.advertise]; the MTA-STS id follows [http.mta_sts].
    let before = zone_line(&text, "_mta-sts.example.test.").to_string();
    env.write_config(&format!(
        "{BASE_CONFIG}\n[http.advertise]\nimaps = 993\nsubmission = 0\n\n[http.mta_sts]\nmode = \"enforce\"\n\n[[listener]]\nprotocol = \"imap\"\ntls = \"implicit\"\nport = 10993\n"
    ));
    let text = env.ok(&["dns", DOMAIN]);
    assert!(
        text.contains("_imaps._tcp.example.test. 3600 IN SRV 0 1 993 mail.example.test."),
        "{text}"
    );
    assert!(
        text.contains("_submission._tcp.example.test. 3600 IN SRV 0 0 0 ."),
        "{text}"
    );
    assert_ne!(zone_line(&text, "_mta-sts.example.test."), before);

    let err = env.fails(&["dns", "unknown.test"]);
    assert!(
        err.contains("unknown domain unknown.test (add it first: wharf domain add unknown.test)"),
        "{err}"
    );
    let err = env.fails(&["doctor", "--domain", "unknown.test"]);
    assert!(err.contains("wharf domain add unknown.test"), "{err}");
}

#[test]
fn doctor_stops_early_when_the_resolver_is_dead() {
    let env = Env::empty();
    let free = |udp: bool| {
        if udp {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    };
    env.write_config(&format!(
        "{BASE_CONFIG}\n[[listener]]\naddress = \"127.0.0.1\"\nprotocol = \"imap\"\nport = {}\n",
        free(false)
    ));
    write_certificates(&env);
    env.ok(&["domain", "add", DOMAIN]);
    let started = std::time::Instant::now();
    let out = env.run(&["doctor", "--resolver", &format!("127.0.0.1:{}", free(true))]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("✘ imap"), "{stdout}");
    assert!(
        stdout.contains("the domain checks were skipped"),
        "{stdout}"
    );
    assert!(!stdout.contains("DNS of the domain"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_with_the_zone_wharf_dns_prints() {
    let (env, offset, _server) = start();
    let (_, zone) = zone_from_wharf_dns(&env);
    let resolver = start_dns(zone).await;
    let (ok, out, err) = doctor(&env, resolver, offset);
    assert!(ok, "doctor failed: {err}\n{out}");
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with('✘')),
        "{out}"
    );
    assert!(out.contains(" 0 ✘"), "{out}");
    for row in [
        "✔ smtp",
        "✔ submissions",
        "✔ pop3 ",
        "✔ imaps",
        "✔ trust",
        "✔ expiry",
        "✔ A/AAAA",
        "✔ PTR",
        "✔ MX",
        "✔ SPF",
        "✔ DKIM",
        "✔ DMARC",
        "✔ MTA-STS",
        "✔ TLS-RPT",
        "✔ CNAME",
        "✔ SRV",
    ] {
        assert!(out.contains(row), "no `{row}` row in:\n{out}");
    }
    assert!(out.contains("STARTTLS, TLS 1.3"), "{out}");
    assert!(out.contains("✔ http "), "{out}");
    assert!(out.contains("✔ https"), "{out}");
    // The policy wharf serves over HTTPS is the one whose id `wharf dns` published.
    assert!(
        out.contains("https://mta-sts.example.test/.well-known/mta-sts.txt (via 127.0.0.1:")
            && out.contains("serves the configured policy"),
        "{out}"
    );
    assert!(
        out.contains("_imaps._tcp.example.test → mail.example.test:993"),
        "{out}"
    );
    assert!(out.contains("s1._domainkey.example.test matches"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_broken_record_with_its_fix() {
    let (env, offset, _server) = start();
    let (text, mut zone) = zone_from_wharf_dns(&env);
    // MX elsewhere, SPF without this host, another DKIM key, no DMARC, a wrong SRV port,
    // a wrong PTR and a stale MTA-STS id.
    zone.remove("example.test", RecordType::MX);
    zone.add_line("example.test. 3600 IN MX 10 mx.elsewhere.test.");
    zone.add_line("mx.elsewhere.test. 3600 IN A 192.0.2.25");
    zone.replace_txt("example.test", "v=spf1", "v=spf1 ip4:192.0.2.25 -all");
    zone.replace_txt(
        "s1._domainkey.example.test",
        "v=DKIM1",
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    );
    zone.remove("_dmarc.example.test", RecordType::TXT);
    zone.remove("_imaps._tcp.example.test", RecordType::SRV);
    zone.add_line("_imaps._tcp.example.test. 3600 IN SRV 0 1 9993 mail.example.test.");
    zone.remove("10.2.0.192.in-addr.arpa", RecordType::PTR);
    zone.add_line("10.2.0.192.in-addr.arpa. 3600 IN PTR host-10.provider.test.");
    zone.replace_txt("_mta-sts.example.test", "v=STSv1", "v=STSv1; id=stale2025");
    let resolver = start_dns(zone).await;

    // One more listener in the config, on a port nothing listens on (after the offset).
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap().port();
    drop(free);
    env.write_config(&format!(
        "{BASE_CONFIG}{STANDARD_LISTENERS}\n[[listener]]\nname = \"imap-extra\"\nprotocol = \"imap\"\nport = {}\n",
        dead - offset
    ));

    let (ok, out, err) = doctor(&env, resolver, offset);
    assert!(!ok, "doctor should fail:\n{out}");
    assert!(err.contains("8 checks failed"), "{err}\n{out}");
    let fixes = [
        ("✘ imap-extra", format!("nothing answers on 127.0.0.1:{dead}"), "start `wharf serve`".to_string()),
        ("✘ MX", "mx.elsewhere.test".into(), "fix: replace the MX records with: example.test. 3600 IN MX 10 mail.example.test.".into()),
        ("✘ SPF", "gives fail for 192.0.2.10".into(), "fix: example.test. 3600 IN TXT \"v=spf1 a:mail.example.test ip4:192.0.2.25 -all\"".into()),
        ("✘ DKIM", "holds a different key".into(), format!("fix: {}", zone_line(&text, "s1._domainkey.example.test."))),
        ("✘ DMARC", "no DMARC record".into(), "fix: _dmarc.example.test. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test\"".into()),
        ("✘ SRV", "_imaps._tcp.example.test → 0 1 9993 mail.example.test".into(), "fix: _imaps._tcp.example.test. 3600 IN SRV 0 1 993 mail.example.test.".into()),
        ("✘ PTR", "points back to host-10.provider.test".into(), "fix: ask the owner of 192.0.2.10 (your hosting provider) to set its reverse DNS: 10.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.test.".into()),
        ("✘ MTA-STS", "id=stale2025".into(), format!("fix: {}", zone_line(&text, "_mta-sts.example.test."))),
    ];
    let lines: Vec<&str> = out.lines().collect();
    for (row, detail, fix) in &fixes {
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with(row) && l.contains(detail.as_str()))
            .unwrap_or_else(|| panic!("no `{row}` row mentioning `{detail}` in:\n{out}"));
        let next = lines.get(i + 1).copied().unwrap_or("");
        assert!(
            next.contains(fix.as_str()),
            "row `{row}` should be followed by `{fix}`, got `{next}`\n{out}"
        );
    }
    assert_eq!(out.matches('✘').count(), fixes.len() + 1, "{out}"); // + the summary line
    // What is right stays right.
    assert!(out.contains("✔ submissions"), "{out}");
    assert!(out.contains("✔ TLS-RPT"), "{out}");
}

/// `serve --port-offset N` records the ports it bound in the data folder: doctor, given no
/// `--port-offset`, probes those instead of declaring the listeners down. A clean stop removes
/// the record.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_probes_the_ports_a_running_server_recorded() {
    let (env, offset, mut server) = start();
    let (_, zone) = zone_from_wharf_dns(&env);
    let resolver = start_dns(zone).await;
    let out = env.run(&["doctor", "--resolver", &resolver.to_string()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("listeners.json (wharf serve, pid"),
        "{stdout}"
    );
    for row in ["✔ smtp", "✔ submissions", "✔ pop3 ", "✔ imaps", "✔ https"] {
        assert!(stdout.contains(row), "no `{row}` row in:\n{stdout}");
    }
    assert!(
        stdout.contains(&format!("127.0.0.1:{}", 25 + offset)),
        "{stdout}"
    );
    let record = env.data().join("listeners.json");
    assert!(record.exists());
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(60)).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(!record.exists(), "a clean stop removes listeners.json");
}
