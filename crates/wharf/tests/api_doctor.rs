//! `GET /api/v1/doctor` against a real `wharf serve` whose `[outbound] dns_server` is an
//! in-process DNS server: the server probes its own bound listeners and checks the zone, and
//! the reply is the doctor's table as JSON (a missing MX is a `fail` row with its fix). Who may
//! ask: an admin account, nobody anonymous, no plain account; an unknown `?domain=` is a 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::api::{ADMIN, Api, Auth, USER, error};
use crate::common::{Env, PASSWORD, Server, parse_ready, random_offset};
use crate::doctor::{BASE_CONFIG, DOMAIN, HOST, write_certificates, zone_from_wharf_dns};

use std::time::Duration;

use serde_json::Value;
use wharf_testkit::dns::DnsType as RecordType;
use wharf_testkit::start_dns;

/// The rows of the section whose title starts with `prefix`.
fn rows<'a>(report: &'a Value, prefix: &str) -> &'a Vec<Value> {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no section {prefix} in {report:#}"))["rows"]
        .as_array()
        .unwrap()
}

/// `wharf serve` on loopback at a random port offset (another one if a port is taken): the
/// server and its bound listeners.
fn serve(env: &Env) -> (Server, Vec<(String, u16)>) {
    let mut attempt = 0;
    loop {
        attempt += 1;
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
            Some(line) => return (server, parse_ready(&line)),
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

fn ready_port(ready: &[(String, u16)], name: &str) -> u16 {
    ready
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no listener {name} in {ready:?}"))
        .1
}

/// A configured server with a domain, an admin and a plain account.
fn configure() -> Env {
    let env = Env::empty();
    env.write_config(BASE_CONFIG);
    write_certificates(&env);
    env.ok(&["domain", "add", DOMAIN]);
    env.ok(&["dkim", "generate", DOMAIN, "--selector", "s1"]);
    env.add_user(ADMIN);
    env.add_user(USER);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    env
}

/// Points the server's DNS (`[outbound] dns_server`; BASE_CONFIG ends in `[outbound]`) at `dns`.
fn use_dns(env: &Env, dns: std::net::SocketAddr) {
    env.write_config(&format!("{BASE_CONFIG}dns_server = \"{dns}\"\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_over_the_api_reports_listeners_and_dns_with_fixes() {
    let env = configure();
    let (_, mut zone) = zone_from_wharf_dns(&env);
    zone.remove(DOMAIN, RecordType::MX);
    use_dns(&env, start_dns(zone).await);

    let (_server, ready) = serve(&env);
    let port = |name: &str| ready_port(&ready, name);
    let api = Api {
        port: port("https"),
        cacert: env.path().join("ca.pem").display().to_string(),
    };

    error(
        &api.call("GET", "/api/v1/doctor", &Auth::None, None),
        401,
        "unauthorized",
    );
    error(
        &api.call("GET", "/api/v1/doctor", &Auth::Basic(USER, PASSWORD), None),
        403,
        "forbidden",
    );
    error(
        &api.admin("GET", "/api/v1/doctor?domain=unknown.test", None),
        404,
        "not_found",
    );

    let r = api.admin("GET", "/api/v1/doctor", None);
    assert_eq!(r.status, 200, "{:#}", r.json);
    let report = &r.json;
    // The listeners are probed at the ports the server bound, not the configured ones.
    let listeners = rows(report, "Listeners");
    for name in ["smtp", "submissions", "imaps", "pop3", "https"] {
        let row = listeners
            .iter()
            .find(|row| row["topic"] == name)
            .unwrap_or_else(|| panic!("no {name} row in {report:#}"));
        assert_eq!(row["mark"], "ok", "{row}");
        assert_eq!(row["fix"], Value::Null, "{row}");
        assert!(
            row["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("127.0.0.1:{} ", port(name))),
            "{row}"
        );
    }
    let domain = rows(report, &format!("DNS of the domain {DOMAIN}"));
    let mx = domain
        .iter()
        .find(|row| row["topic"] == "MX")
        .unwrap_or_else(|| panic!("no MX row in {report:#}"));
    assert_eq!(mx["mark"], "fail", "{mx}");
    assert_eq!(
        mx["text"],
        "example.test has no MX record: nobody can send mail to it"
    );
    assert_eq!(mx["fix"], "example.test. 3600 IN MX 10 mail.example.test.");
    let dkim = domain.iter().find(|row| row["topic"] == "DKIM").unwrap();
    assert_eq!(dkim["mark"], "ok", "{dkim}");
    // The counts are the rows'.
    let all: Vec<&Value> = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["rows"].as_array().unwrap())
        .collect();
    for (key, mark) in [("ok", "ok"), ("warnings", "warn"), ("failures", "fail")] {
        let n = all.iter().filter(|row| row["mark"] == mark).count();
        assert_eq!(report[key], n, "{key} in {report:#}");
    }
    assert!(report["failures"].as_u64().unwrap() >= 1, "{report:#}");

    // `?domain=` limits the domain sections to that one.
    let r = api.admin("GET", &format!("/api/v1/doctor?domain={DOMAIN}"), None);
    assert_eq!(r.status, 200, "{:#}", r.json);
    let titles: Vec<&str> = r.json["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .filter(|t| t.starts_with("DNS of the domain"))
        .collect();
    assert_eq!(titles, [format!("DNS of the domain {DOMAIN}")]);
}

/// One run at a time: while a run waits on a resolver that never answers, a second request is a
/// 429 `busy`; the first still gets its table, the DNS row saying the resolver did not answer.
#[test]
fn a_second_doctor_run_while_one_is_under_way_is_busy() {
    // Bound and never read: every query to it times out.
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let env = configure();
    use_dns(&env, black_hole.local_addr().unwrap());
    let (_server, ready) = serve(&env);
    let port = ready_port(&ready, "https");
    let cacert = env.path().join("ca.pem").display().to_string();
    // Its own curl: Api::call gives up after 20 s, and this run waits for DNS timeouts.
    let slow = {
        let cacert = cacert.clone();
        std::thread::spawn(move || {
            std::process::Command::new("curl")
                .args(["-sS", "--max-time", "120", "--cacert", &cacert])
                .args(["--resolve", &format!("{HOST}:{port}:127.0.0.1")])
                .args(["-u", &format!("{ADMIN}:{PASSWORD}")])
                .arg(format!("https://{HOST}:{port}/api/v1/doctor"))
                .output()
                .unwrap()
        })
    };
    let api = Api { port, cacert };
    // The first run holds the permit from its start until the resolver has timed out (> 5 s).
    std::thread::sleep(Duration::from_secs(3));
    error(&api.admin("GET", "/api/v1/doctor", None), 429, "busy");
    let out = slow.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dns = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["rows"].as_array().unwrap())
        .find(|row| row["topic"] == "DNS")
        .unwrap_or_else(|| panic!("no DNS row in {report:#}"));
    assert_eq!(dns["mark"], "fail", "{dns}");
    assert!(
        dns["text"]
            .as_str()
            .unwrap()
            .contains("the domain checks were skipped"),
        "{dns}"
    );
    drop(black_hole);
}
