//! Every endpoint over real loopback sockets (HTTP and HTTPS), fetched with curl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;

use quick_xml::Reader;
use quick_xml::events::Event;
use wharf_http::{HttpConfig, HttpState, mta_sts_id, mta_sts_policy, router, serve};
use wharf_testkit::{TestCert, TestDirectory};

struct Server {
    http: SocketAddr,
    https: SocketAddr,
    _files: TestDirectory,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Server {
    let files = TestDirectory::with_accounts(&["alice@example.org"], "correct horse battery").await;
    let directory = files.directory.clone();
    let cfg: HttpConfig = toml::from_str(
        "hostname = \"mx.example.org\"\ntrusted_proxies = [\"127.0.0.1\"]\n[ports]\npop3 = 0\n[mta_sts]\nmode = \"enforce\"\nmax_age = 86400\n",
    )
    .unwrap();
    let app = router(
        HttpState::new(directory, cfg)
            .unwrap()
            .with_metrics(wharf_http::install_metrics()),
    );
    let tls = TestCert::new("mx.example.org", &[]).provider();
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http, https) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(l1, None, app.clone(), async move {
        let _ = rx.await;
        let _ = tx2.send(());
    }));
    tokio::spawn(serve(l2, Some(tls), app, async move {
        let _ = rx2.await;
    }));
    Server {
        http,
        https,
        _files: files,
        _stop: tx,
    }
}

/// (status, body) from curl; `extra` are more curl arguments.
async fn curl(url: String, extra: Vec<String>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-sS", "-k", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(&extra)
            .arg(&url)
            .output()
            .expect("curl runs");
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    })
    .await
    .unwrap()
}

/// Parses the XML and returns (path of element names, text) for every text node,
/// plus each element's attributes keyed by path.
/// (element path, attribute name, value)
type Attr = (String, String, String);

fn flatten(xml: &str) -> (Vec<(String, String)>, Vec<Attr>) {
    let mut r = Reader::from_str(xml);
    r.config_mut().trim_text(true);
    let (mut path, mut texts, mut attrs) = (Vec::<String>::new(), Vec::new(), Vec::new());
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) => {
                path.push(String::from_utf8(e.local_name().as_ref().to_vec()).unwrap());
                for a in e.attributes() {
                    let a = a.unwrap();
                    attrs.push((
                        path.join("/"),
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().to_string(),
                    ));
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => texts.push((path.join("/"), t.decode().unwrap().to_string())),
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(path.is_empty(), "unbalanced XML");
    (texts, attrs)
}

fn check_autoconfig(body: &str) {
    let (texts, attrs) = flatten(body);
    assert!(attrs.contains(&("clientConfig".into(), "version".into(), "1.1".into())));
    assert!(attrs.contains(&(
        "clientConfig/emailProvider".into(),
        "id".into(),
        "example.org".into()
    )));
    let get = |p: &str| {
        texts
            .iter()
            .filter(|(k, _)| k == p)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("clientConfig/emailProvider/domain"), ["example.org"]);
    let inc = "clientConfig/emailProvider/incomingServer";
    let out = "clientConfig/emailProvider/outgoingServer";
    // pop3 (STARTTLS, 110) is disabled in this config.
    assert_eq!(get(&format!("{inc}/port")), ["993", "143", "995"]);
    assert_eq!(
        get(&format!("{inc}/socketType")),
        ["SSL", "STARTTLS", "SSL"]
    );
    assert_eq!(get(&format!("{out}/port")), ["465", "587"]);
    assert_eq!(get(&format!("{out}/socketType")), ["SSL", "STARTTLS"]);
    for p in [inc, out] {
        assert!(
            get(&format!("{p}/hostname"))
                .iter()
                .all(|h| h == "mx.example.org")
        );
        assert!(
            get(&format!("{p}/authentication"))
                .iter()
                .all(|h| h == "password-cleartext")
        );
        assert!(
            get(&format!("{p}/username"))
                .iter()
                .all(|h| h == "%EMAILADDRESS%")
        );
    }
    let types: Vec<_> = attrs
        .iter()
        .filter(|(p, k, _)| p == inc && k == "type")
        .map(|a| a.2.as_str())
        .collect();
    assert_eq!(types, ["imap", "imap", "pop3"]);
}

#[tokio::test]
async fn autoconfig_over_http_and_https() {
    let s = start().await;
    for base in [format!("http://{}", s.http), format!("https://{}", s.https)] {
        let (code, body) = curl(
            format!("{base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org"),
            vec![],
        )
        .await;
        assert_eq!(code, 200, "{body}");
        check_autoconfig(&body);
        // URL form on autoconfig.<domain>, domain taken from Host.
        let (code, body) = curl(
            format!("{base}/mail/config-v1.1.xml"),
            vec!["-H".into(), "Host: autoconfig.example.org".into()],
        )
        .await;
        assert_eq!(code, 200, "{body}");
        check_autoconfig(&body);
        let (code, _) = curl(
            format!("{base}/mail/config-v1.1.xml?emailaddress=bob%40elsewhere.net"),
            vec![],
        )
        .await;
        assert_eq!(code, 404);
    }
}

const OUTLOOK_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.org</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;

#[tokio::test]
async fn autodiscover_v1_answers_outlook() {
    let s = start().await;
    for path in [
        "autodiscover/autodiscover.xml",
        "Autodiscover/Autodiscover.xml",
    ] {
        let (code, body) = curl(
            format!("https://{}/{path}", s.https),
            vec![
                "-H".into(),
                "Content-Type: text/xml".into(),
                "--data-binary".into(),
                OUTLOOK_REQUEST.into(),
            ],
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let (texts, attrs) = flatten(&body);
        assert!(
            attrs.contains(&(
                "Autodiscover/Response".into(),
                "xmlns".into(),
                "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
                    .into()
            ))
        );
        let p = "Autodiscover/Response/Account/Protocol";
        let get = |f: &str| {
            texts
                .iter()
                .filter(|(k, _)| *k == format!("{p}/{f}"))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("Type"), ["IMAP", "POP3", "SMTP"]);
        assert_eq!(get("Port"), ["993", "995", "465"]);
        assert_eq!(get("SSL"), ["on", "on", "on"]);
        assert_eq!(get("SPA"), ["off", "off", "off"]);
        assert_eq!(get("AuthRequired"), ["on", "on", "on"]);
        assert_eq!(get("LoginName"), ["alice@example.org"; 3]);
        assert_eq!(get("Server"), ["mx.example.org"; 3]);
    }
    let other = OUTLOOK_REQUEST.replace("alice@example.org", "x@elsewhere.net");
    let (code, _) = curl(
        format!("http://{}/autodiscover/autodiscover.xml", s.http),
        vec!["--data-binary".into(), other],
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = curl(
        format!("http://{}/autodiscover/autodiscover.xml", s.http),
        vec![
            "--data-binary".into(),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x/>".into(),
        ],
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn mta_sts_policy_for_local_domain_only() {
    let s = start().await;
    let (code, body) = curl(
        format!("https://{}/.well-known/mta-sts.txt", s.https),
        vec!["-H".into(), "Host: mta-sts.example.org".into()],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n"
    );
    let cfg: HttpConfig = toml::from_str(
        "hostname = \"mx.example.org\"\n[mta_sts]\nmode = \"enforce\"\nmax_age = 86400\n",
    )
    .unwrap();
    assert_eq!(mta_sts_policy(&cfg.mta_sts, &cfg.hostname), body);
    assert_eq!(mta_sts_id(&body).len(), 32);
    // Behind a trusted proxy (127.0.0.1 here), X-Forwarded-Host names the site.
    let (code, _) = curl(
        format!("https://{}/.well-known/mta-sts.txt", s.https),
        vec![
            "-H".into(),
            "Host: internal".into(),
            "-H".into(),
            "X-Forwarded-Host: mta-sts.example.org".into(),
        ],
    )
    .await;
    assert_eq!(code, 200);
    for host in ["mta-sts.elsewhere.net", "example.org"] {
        let (code, _) = curl(
            format!("https://{}/.well-known/mta-sts.txt", s.https),
            vec!["-H".into(), format!("Host: {host}")],
        )
        .await;
        assert_eq!(code, 404, "{host}");
    }
}

#[test]
fn config_rejects_unknown_keys() {
    assert!(toml::from_str::<HttpConfig>("bogus = 1").is_err());
    let cfg: HttpConfig = toml::from_str("trusted_proxies = [\"nonsense\"]").unwrap();
    assert!(cfg.parsed_proxies().is_err());
}

/// Prometheus text format: comments start with `# HELP`/`# TYPE`; samples are
/// `name{labels} value`.
fn check_prometheus_line(line: &str) {
    if let Some(rest) = line.strip_prefix("# ") {
        assert!(
            rest.starts_with("HELP ") || rest.starts_with("TYPE "),
            "{line}"
        );
        return;
    }
    let (series, value) = line.rsplit_once(' ').expect(line);
    value.parse::<f64>().expect(line);
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "{line}"
    );
    if name_end < series.len() {
        assert!(series.ends_with('}'), "{line}");
        for pair in series[name_end + 1..series.len() - 1].split("\",") {
            let (k, v) = pair.split_once("=\"").expect(line);
            assert!(
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert!(!v.contains('"') || v.ends_with('"'), "{line}");
        }
    }
}

#[tokio::test]
async fn metrics_render_counters() {
    let s = start().await;
    metrics::counter!("wharf_auth_total", "protocol" => "imap", "result" => "success").increment(3);
    let (code, body) = curl(format!("http://{}/metrics", s.http), vec![]).await;
    assert_eq!(code, 200);
    for line in body.lines().filter(|l| !l.is_empty()) {
        check_prometheus_line(line);
    }
    assert!(
        body.lines().any(|l| l.starts_with("wharf_auth_total{")
            && l.contains("protocol=\"imap\"")
            && l.ends_with(" 3")),
        "{body}"
    );
}

#[tokio::test]
async fn autodiscover_v2_json() {
    let s = start().await;
    let (code, body) = curl(
        format!("https://{}/autodiscover/autodiscover.json?Email=alice%40example.org&Protocol=AutodiscoverV1", s.https),
        vec![],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["Url"],
        "https://mx.example.org/Autodiscover/Autodiscover.xml"
    );
    let (code, body) = curl(
        format!(
            "https://{}/autodiscover/autodiscover.json/v1.0/alice@example.org?Protocol=ActiveSync",
            s.https
        ),
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ErrorCode"],
        "ProtocolNotSupported"
    );
    let (code, _) = curl(
        format!("https://{}/autodiscover/autodiscover.json?Email=a%40elsewhere.net&Protocol=AutodiscoverV1", s.https),
        vec![],
    )
    .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn apple_profile_requires_auth() {
    let s = start().await;
    let url = format!(
        "https://{}/apple/profile?email=alice%40example.org",
        s.https
    );
    let (code, _) = curl(url.clone(), vec![]).await;
    assert_eq!(code, 401);
    let (code, _) = curl(
        url.clone(),
        vec!["-u".into(), "alice@example.org:wrong password!".into()],
    )
    .await;
    assert_eq!(code, 401);
    let (code, body) = curl(
        url.clone(),
        vec![
            "-u".into(),
            "alice@example.org:correct horse battery".into(),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (texts, _) = flatten(&body);
    let get = |k: &str| {
        let i = texts
            .iter()
            .position(|(p, v)| p == "plist/dict/array/dict/key" && v == k)
            .unwrap();
        texts[i + 1].1.clone()
    };
    assert_eq!(get("EmailAddress"), "alice@example.org");
    assert_eq!(get("IncomingMailServerHostName"), "mx.example.org");
    assert_eq!(get("IncomingMailServerPortNumber"), "993");
    assert_eq!(get("OutgoingMailServerPortNumber"), "465");
    let (code, _) = curl(
        format!("https://{}/apple/profile?email=bob%40example.org", s.https),
        vec![
            "-u".into(),
            "alice@example.org:correct horse battery".into(),
        ],
    )
    .await;
    assert_eq!(code, 403);
}
