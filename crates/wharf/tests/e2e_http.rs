//! HTTP through the real `wharf` binary: Thunderbird autoconfig (both URL forms, validated
//! against crates/http/tests/autoconfig.xsd), Outlook Autodiscover v1 (the POX body Outlook
//! sends) and v2, MTA-STS and the Apple profile over HTTPS (curl), `/metrics` after real SMTP and
//! IMAP traffic (parsed by prometheus_client), and ACME against the in-test RFC 8555 CA of
//! crates/acme/tests/support: HTTP-01 on the binary's http listener, TLS-ALPN-01 on its IMAPS
//! listener, renewal hot-swapped under an open IMAPS session.
//!
//! Needs curl and python3 with lxml and prometheus_client (.ci/run installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
#[path = "../../acme/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Server};
use rustls_pki_types::ServerName;
use serde_json::Value;
use support::TestCa;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use wharf_acme::CertInfo;

const PASSWORD: &str = "correct horse battery http";
const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const HOST: &str = "mail.example.test";

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/http_check.py");
const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../http/tests/autoconfig.xsd");

/// What Outlook 2016+ POSTs to /autodiscover/autodiscover.xml for a POP/IMAP account.
const OUTLOOK_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"#;

fn mail_listeners() -> String {
    let mut t = String::new();
    for (protocol, tls) in [
        ("smtp", "starttls"),
        ("submission", "starttls"),
        ("submission", "implicit"),
        ("imap", "starttls"),
        ("imap", "implicit"),
        ("pop3", "starttls"),
        ("pop3", "implicit"),
    ] {
        t.push_str(&format!(
            "[[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"{protocol}\"\ntls = \"{tls}\"\n"
        ));
    }
    t
}

/// A data folder with the domain and alice/bob, and `wharf serve` running on it.
struct Wharf {
    env: Env,
    server: Server,
    ports: Vec<(String, u16)>,
}

impl Wharf {
    fn start(config: &str) -> Wharf {
        Wharf::try_start(config).unwrap_or_else(|e| panic!("no ready line:\n{e}"))
    }

    /// Err(stderr) when the server did not become ready (e.g. a fixed port was taken).
    fn try_start(config: &str) -> Result<Wharf, String> {
        let env = Env::new();
        env.write_config(config);
        env.ok(&["domain", "add", "example.test"]);
        for user in [ALICE, BOB] {
            let out = env.run_with_stdin(
                &["user", "add", user, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut server = Server::start(
            env.path(),
            &["--config", env.config().to_str().unwrap(), "serve"],
        );
        match server.wait_for(" ready", Duration::from_secs(60)) {
            Some(line) => Ok(Wharf {
                env,
                server,
                ports: common::parse_ready(&line),
            }),
            None => Err(server.rest_of_stderr(Duration::from_secs(2))),
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.ports))
            .1
    }

    fn stop(mut self) {
        self.server.sigterm();
        let status = self.server.wait_exit(Duration::from_secs(30));
        let stderr = self.server.rest_of_stderr(Duration::from_millis(200));
        assert!(status.is_some_and(|s| s.success()), "{status:?}\n{stderr}");
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// curl with `args`; the status and content type come from `--write-out`.
fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
        ])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, meta) = text.rsplit_once('\n').unwrap();
    let (status, content_type) = meta.split_once(' ').unwrap_or((meta, ""));
    Reply {
        status: status.parse().unwrap(),
        content_type: content_type.to_string(),
        body: body.to_string(),
    }
}

/// Runs http_check.py with `input` on stdin; its JSON output.
fn helper(args: &[&str], input: &str) -> Value {
    let mut child = Command::new("python3")
        .arg(HELPER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "http_check.py {args:?} failed:\n{}\ninput:\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (kind, type, port, socketType) of every server in a validated autoconfig document.
fn autoconfig_servers(xml: &str) -> Vec<(String, String, u16, String)> {
    let v = helper(&["autoconfig", XSD], xml);
    assert_eq!(v["domains"], serde_json::json!(["example.test"]));
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["hostname"], HOST);
            assert_eq!(s["username"], "%EMAILADDRESS%");
            assert_eq!(
                s["authentication"],
                serde_json::json!(["password-cleartext"])
            );
            (
                s["kind"].as_str().unwrap().to_string(),
                s["type"].as_str().unwrap().to_string(),
                s["port"].as_u64().unwrap() as u16,
                s["socketType"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn client_configuration_endpoints_through_the_binary() {
    // A certificate for every name clients fetch over HTTPS, so curl verifies it for real.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = wharf_net::generate_self_signed(
        HOST,
        &[
            "mta-sts.example.test".into(),
            "autoconfig.example.test".into(),
        ],
    )
    .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let config = format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [http]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [http.mta_sts]\nmode = \"enforce\"\nmax_age = 86400\n\
         {}\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n",
        cert_path.display(),
        key_path.display(),
        mail_listeners()
    );
    let w = Wharf::start(&config);
    let (http, https) = (w.port("http"), w.port("https"));
    let p = |name: &str| w.port(name);
    let expected = vec![
        (
            "incomingServer".to_string(),
            "imap".to_string(),
            p("imaps"),
            "SSL".to_string(),
        ),
        (
            "incomingServer".into(),
            "imap".into(),
            p("imap"),
            "STARTTLS".into(),
        ),
        (
            "incomingServer".into(),
            "pop3".into(),
            p("pop3s"),
            "SSL".into(),
        ),
        (
            "incomingServer".into(),
            "pop3".into(),
            p("pop3"),
            "STARTTLS".into(),
        ),
        (
            "outgoingServer".into(),
            "smtp".into(),
            p("submissions"),
            "SSL".into(),
        ),
        (
            "outgoingServer".into(),
            "smtp".into(),
            p("submission"),
            "STARTTLS".into(),
        ),
    ];

    // Autoconfig, first form: the well-known path on the mail domain, with the address.
    let r = curl(&[&format!(
        "http://127.0.0.1:{http}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.test"
    )]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.content_type.starts_with("application/xml"),
        "{}",
        r.content_type
    );
    assert_eq!(autoconfig_servers(&r.body), expected);

    // Second form: autoconfig.<domain>/mail/config-v1.1.xml, with and without the address,
    // over HTTP and HTTPS (name resolved to the loopback listener by curl).
    for url in [
        format!(
            "http://autoconfig.example.test:{http}/mail/config-v1.1.xml?emailaddress=alice%40example.test"
        ),
        format!("http://autoconfig.example.test:{http}/mail/config-v1.1.xml"),
        format!("https://autoconfig.example.test:{https}/mail/config-v1.1.xml"),
    ] {
        let r = curl(&[
            "--resolve",
            &format!("autoconfig.example.test:{http}:127.0.0.1"),
            "--resolve",
            &format!("autoconfig.example.test:{https}:127.0.0.1"),
            "--cacert",
            cert_path.to_str().unwrap(),
            &url,
        ]);
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        assert_eq!(autoconfig_servers(&r.body), expected, "{url}");
    }
    // Only local domains are answered.
    let r = curl(&[&format!(
        "http://127.0.0.1:{http}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=eve%40elsewhere.test"
    )]);
    assert_eq!(r.status, 404);

    // Autodiscover v1: the exact POX body Outlook sends, at both spellings of the path.
    for path in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
    ] {
        let r = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            OUTLOOK_REQUEST,
            &format!("http://127.0.0.1:{http}{path}"),
        ]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = helper(&["autodiscover"], &r.body);
        assert_eq!(v["AccountType"], "email");
        assert_eq!(v["Action"], "settings");
        let protocols: Vec<(String, String, String, String, String, String)> = v["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["LoginName"], ALICE);
                assert_eq!(p["AuthRequired"], "on");
                assert_eq!(p["SPA"], "off");
                let s = |k: &str| p[k].as_str().unwrap().to_string();
                (
                    s("Type"),
                    s("Server"),
                    s("Port"),
                    s("SSL"),
                    s("Encryption"),
                    s("DomainRequired"),
                )
            })
            .collect();
        let row = |t: &str, port: u16| {
            (
                t.to_string(),
                HOST.to_string(),
                port.to_string(),
                "on".to_string(),
                "SSL".to_string(),
                "off".to_string(),
            )
        };
        assert_eq!(
            protocols,
            [
                row("IMAP", p("imaps")),
                row("POP3", p("pop3s")),
                row("SMTP", p("submissions"))
            ]
        );
    }
    // A mobile (ActiveSync) request is not for us; a foreign domain neither.
    let mobile = OUTLOOK_REQUEST.replace(
        "outlook/responseschema/2006a",
        "mobilesync/responseschema/2006",
    );
    let r = curl(&[
        "--data-binary",
        &mobile,
        &format!("http://127.0.0.1:{http}/autodiscover/autodiscover.xml"),
    ]);
    assert_eq!(r.status, 404);
    let foreign = OUTLOOK_REQUEST.replace("alice@example.test", "eve@elsewhere.test");
    let r = curl(&[
        "--data-binary",
        &foreign,
        &format!("http://127.0.0.1:{http}/autodiscover/autodiscover.xml"),
    ]);
    assert_eq!(r.status, 404);

    // Autodiscover v2 (JSON): points IMAP/SMTP clients at the v1 endpoint.
    for url in [
        format!(
            "http://127.0.0.1:{http}/autodiscover/autodiscover.json?Email=alice%40example.test&Protocol=AutodiscoverV1"
        ),
        format!(
            "http://127.0.0.1:{http}/autodiscover/autodiscover.json/v1.0/alice@example.test?Protocol=AutodiscoverV1"
        ),
    ] {
        let r = curl(&[&url]);
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        assert!(r.content_type.starts_with("application/json"));
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["Protocol"], "AutodiscoverV1");
        assert_eq!(
            v["Url"],
            format!("https://{HOST}/Autodiscover/Autodiscover.xml")
        );
    }
    let r = curl(&[&format!(
        "http://127.0.0.1:{http}/autodiscover/autodiscover.json?Email=alice%40example.test&Protocol=ActiveSync"
    )]);
    assert_eq!(r.status, 404);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ErrorCode"], "ProtocolNotSupported");

    // MTA-STS over HTTPS with a verified certificate for mta-sts.<domain>.
    let resolve = format!("mta-sts.example.test:{https}:127.0.0.1");
    let r = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        cert_path.to_str().unwrap(),
        &format!("https://mta-sts.example.test:{https}/.well-known/mta-sts.txt"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("text/plain"));
    assert_eq!(
        r.body,
        format!("version: STSv1\r\nmode: enforce\r\nmx: {HOST}\r\nmax_age: 86400\r\n")
    );

    // Behind a reverse proxy (trusted: 127.0.0.0/8) on plain HTTP, X-Forwarded-Host names the site.
    let r = curl(&[
        "-H",
        "X-Forwarded-Host: mta-sts.example.test",
        &format!("http://127.0.0.1:{http}/.well-known/mta-sts.txt"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with("version: STSv1\r\nmode: enforce\r\n"));
    let r = curl(&[
        "-H",
        "X-Forwarded-Host: mta-sts.elsewhere.test",
        &format!("http://127.0.0.1:{http}/.well-known/mta-sts.txt"),
    ]);
    assert_eq!(r.status, 404);

    // Apple profile: only after HTTP Basic authentication, only for one's own address.
    let profile = format!("https://{HOST}:{https}/apple/profile?email=alice%40example.test");
    let resolve = format!("{HOST}:{https}:127.0.0.1");
    let ca = cert_path.to_str().unwrap();
    let r = curl(&["--resolve", &resolve, "--cacert", ca, &profile]);
    assert_eq!(r.status, 401);
    let r = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        ca,
        "-u",
        &format!("{ALICE}:wrong password"),
        &profile,
    ]);
    assert_eq!(r.status, 401);
    let r = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        ca,
        "-u",
        &format!("{BOB}:{PASSWORD}"),
        &profile,
    ]);
    assert_eq!(r.status, 403);
    let r = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        ca,
        "-u",
        &format!("{ALICE}:{PASSWORD}"),
        &profile,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "application/x-apple-aspen-config");
    assert!(r.body.contains("<string>com.apple.mail.managed</string>"));
    assert!(r.body.contains(&format!(
        "<key>IncomingMailServerPortNumber</key><integer>{}</integer>",
        p("imaps")
    )));
    assert!(r.body.contains(&format!(
        "<key>OutgoingMailServerPortNumber</key><integer>{}</integer>",
        p("submissions")
    )));

    // /metrics: loopback may read it; a client behind the (trusted) proxy may not.
    let r = curl(&[&format!("http://127.0.0.1:{http}/metrics")]);
    assert_eq!(r.status, 200);
    let r = curl(&[
        "-H",
        "X-Forwarded-For: 203.0.113.5",
        &format!("http://127.0.0.1:{http}/metrics"),
    ]);
    assert_eq!(r.status, 403);
    w.stop();
}

/// Value of the sample `name` whose labels include `labels`; 0 when absent.
fn sample(samples: &Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[test]
fn metrics_match_the_smtp_and_imap_traffic() {
    let config = format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[directory]\nauth_fail_delay_base = 1\n{}\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\n",
        mail_listeners()
    );
    let w = Wharf::start(&config);
    let kv = |k: &str, v: String| format!("{k}={v}");
    helper(
        &[
            "traffic",
            &kv("smtp", w.port("smtp").to_string()),
            &kv("submission", w.port("submission").to_string()),
            &kv("imaps", w.port("imaps").to_string()),
            &kv("reader", BOB.to_string()),
            &kv("sender", ALICE.to_string()),
            &kv("password", PASSWORD.to_string()),
        ],
        "",
    );

    // Sessions end asynchronously after the clients' last command; wait for the gauges to settle.
    let url = format!("http://127.0.0.1:{}/metrics", w.port("http"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let samples = loop {
        let r = curl(&[&url]);
        assert_eq!(r.status, 200);
        assert!(
            r.content_type.starts_with("text/plain"),
            "{}",
            r.content_type
        );
        let samples = helper(&["metrics"], &r.body);
        let active = sample(&samples, "wharf_sessions_active", &[("protocol", "imap")])
            + sample(&samples, "wharf_sessions_active", &[("protocol", "smtp")]);
        if active == 0.0 || Instant::now() > deadline {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let get = |name: &str, labels: &[(&str, &str)]| sample(&samples, name, labels);
    // Connections per listener: exactly the clients' connections.
    assert_eq!(get("wharf_connections_total", &[("listener", "smtp")]), 2.0);
    assert_eq!(
        get("wharf_connections_total", &[("listener", "submission")]),
        1.0
    );
    assert_eq!(
        get("wharf_connections_total", &[("listener", "imaps")]),
        2.0
    );
    assert_eq!(get("wharf_connections_total", &[("listener", "pop3")]), 0.0);
    // The scrapes themselves came in over the http listener.
    assert!(get("wharf_connections_total", &[("listener", "http")]) >= 1.0);
    // Authentication outcomes.
    assert_eq!(
        get(
            "wharf_auth_total",
            &[("protocol", "smtp"), ("result", "success")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "wharf_auth_total",
            &[("protocol", "imap"), ("result", "success")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "wharf_auth_total",
            &[("protocol", "imap"), ("result", "failure")]
        ),
        1.0
    );
    assert_eq!(get("wharf_auth_total", &[("protocol", "pop3")]), 0.0);
    // Messages: 2 over MX, 1 over submission, 3 copies stored.
    assert_eq!(get("wharf_messages_received_total", &[("role", "mx")]), 2.0);
    assert_eq!(
        get("wharf_messages_received_total", &[("role", "submission")]),
        1.0
    );
    assert_eq!(
        get("wharf_messages_delivered_total", &[("kind", "local")]),
        3.0
    );
    // IMAP commands as the client sent them.
    assert_eq!(
        get("wharf_imap_commands_total", &[("command", "LOGIN")]),
        2.0
    );
    assert_eq!(
        get("wharf_imap_commands_total", &[("command", "SELECT")]),
        1.0
    );
    assert_eq!(
        get("wharf_imap_commands_total", &[("command", "FETCH")]),
        1.0
    );
    // No session is left open, and the store's latency histogram has observations.
    assert_eq!(get("wharf_sessions_active", &[("protocol", "imap")]), 0.0);
    assert!(get("wharf_store_seconds_count", &[("op", "group_commit")]) >= 3.0);
    let types: BTreeMap<String, String> = samples
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["family"].as_str().unwrap().to_string(),
                s["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(types["wharf_connections"], "counter");
    assert_eq!(types["wharf_store_seconds"], "histogram");
    assert_eq!(types["wharf_sessions_active"], "gauge");
    w.stop();
}

// ---- ACME through the binary ------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct AcmePorts {
    http: u16,
    https: u16,
    imaps: u16,
}

/// Starts the binary on fresh fixed ports, told to the CA first (`tls_on_imaps`: the CA's
/// "port 443" is the IMAPS listener). A port taken meanwhile by a parallel test means a retry.
fn start_with_ca(
    ca: &TestCa,
    challenge: &str,
    renew_before: u64,
    tls_on_imaps: bool,
) -> (Wharf, AcmePorts) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ports = AcmePorts {
            http: free_port(),
            https: free_port(),
            imaps: free_port(),
        };
        let tls_target = if tls_on_imaps {
            ports.imaps
        } else {
            ports.https
        };
        ca.validate_against(
            SocketAddr::from(([127, 0, 0, 1], ports.http)),
            SocketAddr::from(([127, 0, 0, 1], tls_target)),
        );
        match Wharf::try_start(&acme_config(ca, &ports, challenge, renew_before)) {
            Ok(w) => return (w, ports),
            Err(e) => assert!(attempt < 3 && e.contains("in use"), "no ready line:\n{e}"),
        }
    }
}

/// A config with fixed loopback ports (the CA must know them before the binary starts
/// ordering) and short ACME timings.
fn acme_config(ca: &TestCa, ports: &AcmePorts, challenge: &str, renew_before: u64) -> String {
    format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = {}\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = {}\nprotocol = \"http\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = {}\nprotocol = \"http\"\ntls = \"implicit\"\n\
         [acme]\nenabled = true\ndirectory_url = \"{}\"\ncontact = \"postmaster@example.test\"\n\
         challenge = \"{challenge}\"\nca_file = \"{}\"\nrenew_before = {renew_before}\n\
         check_interval = 1\nretry_min = 1\nretry_max = 2\norder_timeout = 15\n",
        ports.imaps,
        ports.http,
        ports.https,
        ca.directory_url,
        ca.root_path.display(),
    )
}

type Session = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS session that verifies the chain against the test CA for `name`.
async fn tls_connect(ca: &TestCa, port: u16, name: &str) -> Result<Session, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())
}

fn serial(tls: &Session) -> String {
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    CertInfo::from_der(leaf).unwrap().serial
}

/// Retries `probe` for up to 60 s.
async fn wait_for<T>(what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
    wharf_testkit::wait_for(what, Duration::from_secs(60), probe).await
}

/// An IMAPS session on a CA-verified certificate: (serial, session after the greeting).
async fn imaps_session(ca: &TestCa, port: u16) -> Option<(String, BufReader<Session>)> {
    let tls = tls_connect(ca, port, HOST).await.ok()?;
    let serial = serial(&tls);
    let mut session = BufReader::new(tls);
    let mut greeting = String::new();
    session.read_line(&mut greeting).await.ok()?;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    Some((serial, session))
}

async fn imap_noop(session: &mut BufReader<Session>, tag: &str) -> String {
    session
        .get_mut()
        .write_all(format!("{tag} NOOP\r\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        session.read_line(&mut line).await.unwrap();
        if line.starts_with(tag) || line.is_empty() {
            return line;
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names() -> Vec<String> {
    vec![
        HOST.to_string(),
        "autoconfig.example.test".to_string(),
        "mta-sts.example.test".to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_http01_on_the_http_listener_and_renewal_swapped_under_an_open_session() {
    // 40 s certificates renewed 30 s before expiry: a renewal every ~10 s.
    let ca = TestCa::start(Duration::from_secs(40)).await;
    let (w, ports) = start_with_ca(&ca, "http-01", 30, false);

    // The IMAPS listener soon shows a certificate the CA's roots accept.
    let (first, mut session) = wait_for("an ACME certificate on IMAPS", async || {
        imaps_session(&ca, ports.imaps).await
    })
    .await;
    let leaf = &session.get_ref().get_ref().1.peer_certificates().unwrap()[0];
    let served = CertInfo::from_der(leaf).unwrap();
    let mut want = names();
    want.sort();
    let mut got = served.names.clone();
    got.sort();
    assert_eq!(got, want);
    // The account and the certificate's key are in the store, sealed, not in files.
    assert!(!w.env.data().join("acme/key.pem").exists());
    for file in ["wharf.db", "wharf.db-wal"] {
        let bytes = std::fs::read(w.env.data().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(11).any(|win| win == b"PRIVATE KEY"),
            "{file}"
        );
    }
    assert_eq!(mode(&w.env.data().join("state.key")), 0o600);

    // The renewal is swapped in without a restart: new connections see the new certificate...
    let second = wait_for("the renewed certificate", async || {
        let (s, _) = imaps_session(&ca, ports.imaps).await?;
        (s != first).then_some(s)
    })
    .await;
    // ...and the session opened on the old one goes on.
    assert!(imap_noop(&mut session, "a1").await.starts_with("a1 OK"));

    // The https listener serves the same certificate for every name, and the MTA-STS policy.
    for name in names() {
        let tls = wait_for("https on the new certificate", async || {
            let tls = tls_connect(&ca, ports.https, &name).await.ok()?;
            (serial(&tls) != first).then_some(tls)
        })
        .await;
        if name.starts_with("mta-sts.") {
            let mut tls = tls;
            tls.write_all(
                b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.test\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            let mut reply = String::new();
            tls.read_to_string(&mut reply).await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            assert!(reply.contains("version: STSv1\r\n"), "{reply}");
        }
    }

    let stats = ca.stats();
    assert!(stats.issued >= 2, "{stats:?}");
    assert!(
        stats.validations_failed.is_empty(),
        "{:?}",
        stats.validations_failed
    );
    assert!(
        stats.validations_ok.len() >= 6,
        "{:?}",
        stats.validations_ok
    );
    assert!(
        stats
            .validations_ok
            .iter()
            .all(|(_, kind)| kind == "http-01")
    );
    assert_eq!(stats.accounts, 1, "the account is created once and reused");
    eprintln!("first {first}, renewed {second}; CA stats {stats:?}");
    drop(session);
    w.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_tls_alpn01_answered_by_the_imaps_listener_and_kept_across_restart() {
    let ca = TestCa::start(Duration::from_secs(3600)).await;
    // "Port 443" of every name is the IMAPS listener: a mail listener answers TLS-ALPN-01.
    let (w, ports) = start_with_ca(&ca, "tls-alpn-01", 600, true);
    let (first, _session) = wait_for("an ACME certificate on IMAPS", async || {
        imaps_session(&ca, ports.imaps).await
    })
    .await;
    let stats = ca.stats();
    assert_eq!(stats.issued, 1);
    let mut validated: Vec<(String, String)> = stats.validations_ok.clone();
    validated.sort();
    let mut want: Vec<(String, String)> = names()
        .into_iter()
        .map(|n| (n, "tls-alpn-01".to_string()))
        .collect();
    want.sort();
    assert_eq!(validated, want);
    // Ordinary clients on the https listener get the same certificate meanwhile.
    let https = tls_connect(&ca, ports.https, "autoconfig.example.test")
        .await
        .unwrap();
    assert_eq!(serial(&https), first);
    drop(https);

    // SIGHUP re-installs the stored ACME certificate, never the self-signed files.
    let hup = Command::new("kill")
        .args(["-HUP", &w.server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut w = w;
    assert!(
        w.server
            .wait_for("SIGHUP: ACME certificate reloaded", Duration::from_secs(10))
            .is_some()
    );
    let (after_hup, _) = imaps_session(&ca, ports.imaps)
        .await
        .expect("still the ACME certificate");
    assert_eq!(after_hup, first);

    // A restart puts the stored certificate in service at once, without a new order.
    let Wharf {
        env, mut server, ..
    } = w;
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
    let mut again = Server::start(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
    );
    again.wait_ready();
    let (serial_again, _) = imaps_session(&ca, ports.imaps)
        .await
        .expect("stored certificate");
    assert_eq!(serial_again, first);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ca.stats().issued,
        1,
        "no new order while the stored one is fresh"
    );
    again.sigterm();
    assert!(again.wait_exit(Duration::from_secs(30)).unwrap().success());
    let _keep: PathBuf = env.path().to_path_buf();
}

// ---- the http listener inside the server's limits and drain -----------------------------

/// Reads one response with a Content-Length body from a kept-alive connection.
fn read_response(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap();
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[test]
fn http_listener_obeys_connection_limits_and_drains_on_sigterm() {
    use std::io::Read;
    let config = format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 20\nmax_per_ip = 2\n[http]\nmetrics = false\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\n"
    );
    let mut w = Wharf::start(&config);
    let port = w.port("http");
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let autoconfig = "GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.test HTTP/1.1\r\nHost: example.test\r\n";

    // A client that shuts down its sending side after the request still gets the answer.
    let mut half = connect();
    half.write_all(format!("{autoconfig}\r\n").as_bytes())
        .unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    half.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(half);
    std::thread::sleep(Duration::from_millis(300));

    // A: one request answered, the connection kept alive and idle.
    let mut idle = connect();
    idle.write_all(format!("{autoconfig}\r\n").as_bytes())
        .unwrap();
    let first = read_response(&mut idle);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // With `metrics = false` there is no /metrics (same kept-alive connection).
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .unwrap();
    let metrics = read_response(&mut idle);
    assert!(metrics.starts_with("HTTP/1.1 404"), "{metrics}");
    // B: a request whose head is not complete yet.
    let mut inflight = connect();
    inflight.write_all(autoconfig.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // C: a third connection from 127.0.0.1 is over limits.max_per_ip and is told so in HTTP.
    let mut refused = connect();
    let mut text = String::new();
    refused.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");

    let stopping = Instant::now();
    w.server.sigterm();
    assert!(
        w.server
            .wait_for("draining", Duration::from_secs(10))
            .is_some()
    );
    // No new connections; the idle keep-alive connection is closed at once...
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // ...while the request in flight is answered, and its connection closed after it.
    inflight.write_all(b"\r\n").unwrap();
    let mut text = String::new();
    inflight.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains("<clientConfig"), "{text}");
    let status = w.server.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the drain waited for the idle connection: {:?}",
        stopping.elapsed()
    );
}
