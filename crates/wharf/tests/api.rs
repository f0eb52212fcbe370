//! The admin REST API (`/api/v1`) through the real `wharf` binary over HTTPS (curl, trusting the
//! server's generated self-signed certificate): every endpoint, Basic auth of an admin account
//! and of a plain account (403), API tokens and their scopes (a `read` token cannot POST),
//! 401/403/404/409/422 with the JSON error body, an account created through the API logging in
//! over IMAP (python3 imaplib), the OpenAPI document naming every route, and failed logins
//! throttled by the directory (429).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::{Env, PASSWORD};
use serde_json::{Value, json};

pub(crate) const HOST: &str = "mail.example.test";
pub(crate) const ADMIN: &str = "boss@example.test";
pub(crate) const USER: &str = "plain@example.test";

pub(crate) struct Api {
    pub(crate) port: u16,
    pub(crate) cacert: String,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Lower-cased, for matching.
    pub(crate) headers: String,
    /// As sent (cursors in `Link` are case-sensitive).
    pub(crate) raw_headers: String,
    pub(crate) json: Value,
    /// The body when it is not JSON (`text/plain`).
    pub(crate) text: String,
}

pub(crate) enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

impl Api {
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        auth: &Auth,
        body: Option<&Value>,
    ) -> Reply {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.call_raw(method, path, auth, body.as_ref().map(|(t, b)| (*t, &b[..])))
    }

    /// `body`: its content type and octets (sent from a file, so it may be large).
    pub(crate) fn call_raw(
        &self,
        method: &str,
        path: &str,
        auth: &Auth,
        body: Option<(&str, &[u8])>,
    ) -> Reply {
        let dir = tempfile::tempdir().unwrap();
        let head = dir.path().join("h");
        let url = format!("https://{HOST}:{}{path}", self.port);
        let resolve = format!("{HOST}:{}:127.0.0.1", self.port);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert", &self.cacert])
            .args(["--resolve", &resolve, "-X", method, "-D"])
            .arg(&head)
            .args(["-o", "-", "-w", "\n%{http_code}"]);
        match auth {
            Auth::None => {}
            Auth::Basic(u, p) => {
                cmd.args(["-u", &format!("{u}:{p}")]);
            }
            Auth::Bearer(t) => {
                cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
            }
        }
        if let Some((content_type, b)) = body {
            let file = dir.path().join("body");
            std::fs::write(&file, b).unwrap();
            cmd.args([
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()));
        }
        let out = cmd.arg(&url).output().expect("curl runs");
        assert!(
            out.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let raw_headers = std::fs::read_to_string(&head).unwrap();
        let plain = raw_headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain");
        let json = if body.is_empty() || plain {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
        };
        Reply {
            status: status.parse().unwrap(),
            headers: raw_headers.to_ascii_lowercase(),
            raw_headers,
            json,
            text: body.to_string(),
        }
    }

    pub(crate) fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, &Auth::Basic(ADMIN, PASSWORD), body.as_ref())
    }
}

/// The reply is `status` with the JSON error of `code`.
pub(crate) fn error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.json["error"]["code"], code, "{}", r.json);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.json
    );
}

fn imap_login(port: u16, cacert: &str, user: &str, password: &str) -> bool {
    let script = "import imaplib,ssl,sys\n\
        ctx=ssl.create_default_context(cafile=sys.argv[2])\n\
        ctx.check_hostname=False\n\
        m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\n\
        try:\n  m.login(sys.argv[3],sys.argv[4])\nexcept imaplib.IMAP4.error:\n  sys.exit(3)\n\
        typ,_=m.select('INBOX')\nassert typ=='OK'\nm.logout()\n";
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), cacert, user, password])
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("imaplib: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn admin_api_end_to_end() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [directory]\nauth_fail_delay_base = 0\nauth_fail_max_delay = 0\nauth_ip_lockout_after = 6\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.add_user(USER);
    // The CLI verb gives the role.
    let out = env.ok(&["user", "admin", ADMIN, "--on"]);
    assert!(out.contains("is an admin"), "{out}");
    assert!(env.ok(&["user", "admin", USER]).contains("not an admin"));
    let (mut server, ready) = env.serve();
    let api = Api {
        port: ready.port("https"),
        cacert: env.data().join("tls/cert.pem").display().to_string(),
    };
    let imaps = ready.port("imaps");

    // The OpenAPI document: valid JSON, and every documented route is routed (401, not 404/405).
    let doc = api.call("GET", "/api/v1/openapi.json", &Auth::None, None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.0.3");
    let paths = doc.json["paths"].as_object().unwrap();
    assert!(paths.len() >= 19);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            if path.ends_with("openapi.json") {
                continue;
            }
            let concrete = path
                .replace("{name}", "example.test")
                .replace("{address}", USER)
                .replace("{id}", "1");
            let r = api.call(&method.to_uppercase(), &concrete, &Auth::None, None);
            error(&r, 401, "unauthorized");
        }
    }

    // 401 without or with bad credentials, WWW-Authenticate offering both schemes.
    let r = api.call("GET", "/api/v1/domains", &Auth::None, None);
    error(&r, 401, "unauthorized");
    assert!(
        r.headers
            .contains("www-authenticate: basic realm=\"wharf\""),
        "{}",
        r.headers
    );
    assert!(
        r.headers
            .contains("www-authenticate: bearer realm=\"wharf\""),
        "{}",
        r.headers
    );
    let r = api.call(
        "GET",
        "/api/v1/domains",
        &Auth::Basic(ADMIN, "wrong password!"),
        None,
    );
    error(&r, 401, "unauthorized");
    let r = api.call("GET", "/api/v1/domains", &Auth::Bearer("wharf_0000"), None);
    error(&r, 401, "unauthorized");
    // 403 for an account without the admin role.
    let r = api.call("GET", "/api/v1/domains", &Auth::Basic(USER, PASSWORD), None);
    error(&r, 403, "forbidden");
    // Unknown endpoint: JSON 404.
    error(&api.admin("GET", "/api/v1/nothing", None), 404, "not_found");

    // Domains.
    let r = api.admin(
        "POST",
        "/api/v1/domains",
        Some(json!({"name": "Other.TEST"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json, json!({"name": "other.test"}));
    error(
        &api.admin(
            "POST",
            "/api/v1/domains",
            Some(json!({"name": "other.test"})),
        ),
        409,
        "conflict",
    );
    error(
        &api.admin(
            "POST",
            "/api/v1/domains",
            Some(json!({"name": "bad domain"})),
        ),
        422,
        "invalid",
    );
    error(
        &api.admin("POST", "/api/v1/domains", Some(json!({"nom": "x.test"}))),
        422,
        "invalid",
    );
    error(&api.admin("POST", "/api/v1/domains", None), 422, "invalid");
    let r = api.admin("GET", "/api/v1/domains", None);
    assert_eq!(
        r.json,
        json!([{"name": "example.test"}, {"name": "other.test"}])
    );

    // Accounts: create through the API, then log in over IMAP with it.
    let new_pw = "a long and fine api password";
    let r = api.admin(
        "POST",
        "/api/v1/accounts",
        Some(json!({"address": "carol@other.test", "password": new_pw, "quota": "1G"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["address"], "carol@other.test");
    assert_eq!(r.json["quota"], json!({"bytes": 1u64 << 30, "human": "1G"}));
    assert_eq!(r.json["admin"], false);
    assert!(imap_login(imaps, &api.cacert, "carol@other.test", new_pw));
    let dup = json!({"address": "carol@other.test", "password": new_pw});
    error(
        &api.admin("POST", "/api/v1/accounts", Some(dup)),
        409,
        "conflict",
    );
    let weak = json!({"address": "dave@other.test", "password": "x"});
    error(
        &api.admin("POST", "/api/v1/accounts", Some(weak)),
        422,
        "invalid",
    );
    let nodomain = json!({"address": "dave@nowhere.test", "password": new_pw});
    error(
        &api.admin("POST", "/api/v1/accounts", Some(nodomain)),
        422,
        "invalid",
    );
    let r = api.admin("GET", "/api/v1/accounts?domain=other.test", None);
    assert_eq!(r.json.as_array().unwrap().len(), 1, "{}", r.json);
    let r = api.admin("GET", &format!("/api/v1/accounts/{ADMIN}"), None);
    assert_eq!(r.json["admin"], true);
    error(
        &api.admin("GET", "/api/v1/accounts/nobody@example.test", None),
        404,
        "not_found",
    );
    // Password.
    let pw2 = "another long api password";
    let r = api.admin(
        "PUT",
        "/api/v1/accounts/carol@other.test/password",
        Some(json!({"password": pw2})),
    );
    assert_eq!(r.status, 204);
    assert!(imap_login(imaps, &api.cacert, "carol@other.test", pw2));
    // Quota: bytes and a human form.
    let r = api.admin(
        "PUT",
        "/api/v1/accounts/carol@other.test/quota",
        Some(json!({"quota": 1536})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["quota"], json!({"bytes": 1536, "human": "1.5K"}));
    let r = api.admin("GET", "/api/v1/accounts/carol@other.test/quota", None);
    assert_eq!(r.json["used"]["bytes"], 0);
    let r = api.admin(
        "PUT",
        "/api/v1/accounts/carol@other.test/quota",
        Some(json!({"quota": "lots"})),
    );
    error(&r, 422, "invalid");
    // Disable / enable.
    let r = api.admin("POST", "/api/v1/accounts/carol@other.test/disable", None);
    assert_eq!(r.json["disabled"], true);
    assert!(!imap_login(imaps, &api.cacert, "carol@other.test", pw2));
    let r = api.admin("POST", "/api/v1/accounts/carol@other.test/enable", None);
    assert_eq!(r.json["disabled"], false);

    // Aliases: a local target must reach an account.
    let r = api.admin(
        "POST",
        "/api/v1/aliases",
        Some(json!({"address": "sales@other.test", "target": "carol@other.test"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = api.admin(
        "POST",
        "/api/v1/aliases",
        Some(json!({"address": "info@other.test", "target": "ghost@other.test"})),
    );
    error(&r, 422, "invalid");
    let r = api.admin(
        "POST",
        "/api/v1/aliases",
        Some(json!({"address": "sales@other.test", "target": "carol@other.test"})),
    );
    error(&r, 409, "conflict");
    let r = api.admin("GET", "/api/v1/aliases", None);
    assert!(
        r.json
            .as_array()
            .unwrap()
            .contains(&json!({"address": "sales@other.test", "target": "carol@other.test"})),
        "{}",
        r.json
    );
    // Domain still in use: 409.
    error(
        &api.admin("DELETE", "/api/v1/domains/other.test", None),
        409,
        "conflict",
    );

    // DKIM and DNS.
    let r = api.admin(
        "POST",
        "/api/v1/domains/other.test/dkim",
        Some(json!({"selector": "s1"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["dns_name"], "s1._domainkey.other.test");
    assert_eq!(r.json["algorithm"], "ed25519");
    let r = api.admin(
        "POST",
        "/api/v1/domains/other.test/dkim",
        Some(json!({"selector": "s1"})),
    );
    error(&r, 409, "conflict");
    let r = api.admin(
        "POST",
        "/api/v1/domains/other.test/dkim",
        Some(json!({"selector": "a.b"})),
    );
    error(&r, 422, "invalid");
    let r = api.admin(
        "POST",
        "/api/v1/domains/other.test/dkim",
        Some(json!({"algorithm": "dsa"})),
    );
    error(&r, 422, "invalid");
    error(
        &api.admin("GET", "/api/v1/domains/none.test/dkim", None),
        404,
        "not_found",
    );
    let r = api.admin("GET", "/api/v1/domains/other.test/dkim", None);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert_eq!(r.json[0]["selector"], "s1");
    let r = api.admin("GET", "/api/v1/domains/other.test/dns", None);
    assert_eq!(r.status, 200);
    let records = r.json["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("other.test. ")
                && l.as_str().unwrap().contains(" MX ")),
        "{}",
        r.json
    );
    assert!(
        records
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("s1._domainkey.other.test.")),
        "{}",
        r.json
    );

    // Queue: empty; unknown entries are 404, bad ids 422.
    let r = api.admin("GET", "/api/v1/queue", None);
    assert_eq!(r.json, json!([]));
    error(
        &api.admin("GET", "/api/v1/queue/99", None),
        404,
        "not_found",
    );
    error(&api.admin("GET", "/api/v1/queue/x", None), 422, "invalid");
    error(
        &api.admin("POST", "/api/v1/queue/99/retry", None),
        404,
        "not_found",
    );
    error(
        &api.admin("DELETE", "/api/v1/queue/99", None),
        404,
        "not_found",
    );
    let r = api.admin("POST", "/api/v1/queue/retry", None);
    assert_eq!(r.json, json!({"due_now": 0}));

    // Reports: none yet in the postmaster's INBOX; an unknown id is 404.
    let r = api.admin("GET", &format!("/api/v1/reports?account={ADMIN}"), None);
    assert_eq!((r.status, r.json.clone()), (200, json!([])));
    error(
        &api.admin("GET", &format!("/api/v1/reports/r1?account={ADMIN}"), None),
        404,
        "not_found",
    );

    // Tokens: a read token reads but cannot write; a write token can.
    let out = env.ok(&["token", "create", "ro", "--scope", "read"]);
    let ro = out
        .split("shown only this once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let out = env.ok(&["token", "create", "rw", "--scope", "read,write"]);
    let rw = out
        .split("shown only this once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let r = api.call("GET", "/api/v1/accounts", &Auth::Bearer(&ro), None);
    assert_eq!(r.status, 200);
    let body = json!({"name": "ro.test"});
    let r = api.call("POST", "/api/v1/domains", &Auth::Bearer(&ro), Some(&body));
    error(&r, 403, "insufficient_scope");
    let r = api.call("POST", "/api/v1/domains", &Auth::Bearer(&rw), Some(&body));
    assert_eq!(r.status, 201);
    let list = env.ok(&["token", "list"]);
    assert!(
        list.contains("ro") && list.contains("read,write") && !list.contains(&rw),
        "{list}"
    );
    env.ok(&["token", "revoke", "1"]);
    let r = api.call("GET", "/api/v1/accounts", &Auth::Bearer(&ro), None);
    error(&r, 401, "unauthorized");
    let e = env.fails(&["token", "create", "x", "--scope", "root"]);
    assert!(e.contains("unknown scope"), "{e}");

    // Deletions.
    assert_eq!(
        api.admin("DELETE", "/api/v1/aliases/sales@other.test", None)
            .status,
        204
    );
    error(
        &api.admin("DELETE", "/api/v1/aliases/sales@other.test", None),
        404,
        "not_found",
    );
    assert_eq!(
        api.admin("DELETE", "/api/v1/accounts/carol@other.test", None)
            .status,
        204
    );
    assert!(!imap_login(imaps, &api.cacert, "carol@other.test", pw2));
    assert_eq!(
        api.admin("DELETE", "/api/v1/domains/other.test", None)
            .status,
        204
    );
    error(
        &api.admin("DELETE", "/api/v1/domains/other.test", None),
        404,
        "not_found",
    );
    // The CLI sees the same refusal the API gives: a local alias target must exist.
    let e = env.fails(&["alias", "add", "x@example.test", "ghost@example.test"]);
    assert!(e.contains("reaches no account"), "{e}");

    // Failed logins are throttled by the directory: after a few, 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..8 {
        let r = api.call(
            "GET",
            "/api/v1/domains",
            &Auth::Basic(ADMIN, "guess guess guess"),
            None,
        );
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
        error(&r, 401, "unauthorized");
    }
    let r = throttled.expect("throttled within 8 failures");
    error(&r, 429, "throttled");
    assert!(r.headers.contains("retry-after:"), "{}", r.headers);

    server.sigterm();
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(20))
            .is_some()
    );
}

/// Credentials never travel in the clear: on a plain HTTP listener, a request from a trusted
/// proxy must say the client used https (`X-Forwarded-Proto`), or the API and the Apple profile
/// answer 403 before looking at any credential. (Loopback clients not behind a proxy, and TLS
/// listeners, are accepted.)
#[test]
fn plain_http_behind_a_proxy_needs_https_from_the_client() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [http]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"none\"\n"
    ));
    env.add_user(ADMIN);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    let (mut server, ready) = env.serve();
    let port = ready.port("http");
    let get = |path: &str, proto: Option<&str>| -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "20",
            "-u",
            &format!("{ADMIN}:{PASSWORD}"),
        ])
        .args(["-o", "-", "-w", "\n%{http_code}"]);
        if let Some(p) = proto {
            cmd.args(["-H", &format!("X-Forwarded-Proto: {p}")]);
        }
        let out = cmd
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    };
    let (code, body) = get("/api/v1/domains", None);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("https_required"), "{body}");
    assert_eq!(get("/api/v1/domains", Some("http")).0, 403);
    let (code, body) = get("/api/v1/domains", Some("https"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("example.test"), "{body}");
    let (code, body) = get("/apple/profile", None);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("https"), "{body}");
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(30));
}

/// The simple forms of Sieve through the API (`/accounts/{address}/rules`): the same operation
/// as `wharf vacation`/`wharf forward`, so the CLI shows what the API set, and the script the
/// server runs is the one they both write.
#[test]
fn vacation_and_forwarding_through_the_api_are_the_cli_s() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.add_user(USER);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    let (mut server, ready) = env.serve();
    let api = Api {
        port: ready.port("https"),
        cacert: env.data().join("tls/cert.pem").display().to_string(),
    };
    let path = format!("/api/v1/accounts/{USER}/rules");
    let r = api.admin("GET", &path, None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["vacation"].is_null() && r.json["active_script"].is_null());

    let r = api.admin(
        "PUT",
        &format!("{path}/vacation"),
        Some(json!({"subject": "Away", "body": "Back on Monday.", "until": "2099-12-31"})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["vacation"]["days"], 7);
    assert_eq!(r.json["active_script"], "wharf-rules");
    let shown = env.ok(&["vacation", "show", USER]);
    assert!(
        shown.contains("Away") && shown.contains("2099-12-31") && shown.contains("Back on Monday."),
        "{shown}"
    );
    let script = env.ok(&["sieve", "get", USER, "wharf-rules"]);
    assert!(script.contains("vacation :days 7"), "{script}");

    // Bad input: 422 with the rule's complaint; unknown fields too.
    let r = api.admin(
        "PUT",
        &format!("{path}/forward"),
        Some(json!({"target": "not an address"})),
    );
    error(&r, 422, "invalid");
    let r = api.admin(
        "PUT",
        &format!("{path}/vacation"),
        Some(json!({"body": "x", "until": "31/12/2099"})),
    );
    error(&r, 422, "invalid");
    let r = api.admin(
        "PUT",
        &format!("{path}/vacation"),
        Some(json!({"text": "x"})),
    );
    error(&r, 422, "invalid");
    error(
        &api.admin("GET", "/api/v1/accounts/nobody@example.test/rules", None),
        404,
        "not_found",
    );

    // Forwarding beside the vacation; clearing both removes the script.
    let r = api.admin(
        "PUT",
        &format!("{path}/forward"),
        Some(json!({"target": "elsewhere@example.org", "keep": true})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["forward"]["keep"], true);
    assert!(!r.json["vacation"].is_null(), "setting one keeps the other");
    assert_eq!(
        api.admin("DELETE", &format!("{path}/vacation"), None)
            .status,
        200
    );
    let r = api.admin("DELETE", &format!("{path}/forward"), None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["active_script"].is_null(), "{}", r.json);
    assert!(env.ok(&["sieve", "list", USER]).contains("no Sieve script"));
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(30));
}

/// App passwords through the API and the CLI (the same operations as the web page): created
/// with the secret in the reply only, listed without it, accepted by IMAP, refused by the
/// admin API's Basic auth, revoked; an admin's password reset revokes them all; a plain account
/// cannot manage anyone's.
#[test]
fn app_passwords_through_the_api_and_the_cli() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.add_user(USER);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    let (mut server, ready) = env.serve();
    let cacert = env.data().join("tls/cert.pem").display().to_string();
    let api = Api {
        port: ready.port("https"),
        cacert: cacert.clone(),
    };
    let imaps = ready.port("imaps");
    let path = format!("/api/v1/accounts/{USER}/app-passwords");

    let r = api.admin("POST", &path, Some(json!({"label": "phone"})));
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["label"], "phone");
    let secret = r.json["secret"].as_str().unwrap().to_string();
    let id = r.json["id"].as_i64().unwrap();
    assert!(imap_login(imaps, &cacert, USER, &secret));
    let r = api.admin("GET", &path, None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert!(r.json[0].get("secret").is_none(), "{}", r.json);
    assert_eq!(
        api.admin("GET", &format!("/api/v1/accounts/{USER}"), None)
            .json["app_passwords"],
        1
    );
    // Bad input and unknown ids.
    error(
        &api.admin("POST", &path, Some(json!({"label": ""}))),
        422,
        "invalid",
    );
    error(
        &api.admin("POST", &path, Some(json!({"label": "x", "extra": 1}))),
        422,
        "invalid",
    );
    error(
        &api.admin("DELETE", &format!("{path}/abc"), None),
        422,
        "invalid",
    );
    error(
        &api.admin("DELETE", &format!("{path}/999999"), None),
        404,
        "not_found",
    );
    // A plain account may not; nor may an app password open the admin API.
    let plain = Auth::Basic(USER, PASSWORD);
    error(&api.call("GET", &path, &plain, None), 403, "forbidden");
    // The admin's own app password, made with the CLI, is refused by the API.
    let out = env.ok(&["user", "app-password", "add", ADMIN, "cli laptop"]);
    let admin_secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown only this once): "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(imap_login(imaps, &cacert, ADMIN, &admin_secret));
    let r = api.call(
        "GET",
        "/api/v1/accounts",
        &Auth::Basic(ADMIN, &admin_secret),
        None,
    );
    error(&r, 401, "unauthorized");
    // Listed with its last use (the IMAP login above).
    let listed = env.ok(&["user", "app-password", "list", ADMIN]);
    assert!(
        listed.contains("cli laptop") && !listed.contains("never"),
        "{listed}"
    );

    // Revoked through the API: refused at once; the CLI sees it gone.
    assert_eq!(
        api.admin("DELETE", &format!("{path}/{id}"), None).status,
        204
    );
    assert!(!imap_login(imaps, &cacert, USER, &secret));
    assert!(
        !env.ok(&["user", "app-password", "list", USER])
            .contains("phone")
    );

    // An admin's password reset revokes them all.
    let r = api.admin("POST", &path, Some(json!({"label": "tablet"})));
    let tablet = r.json["secret"].as_str().unwrap().to_string();
    assert!(imap_login(imaps, &cacert, USER, &tablet));
    let r = api.admin(
        "PUT",
        &format!("/api/v1/accounts/{USER}/password"),
        Some(json!({"password": "reset by the admin"})),
    );
    assert_eq!(r.status, 204, "{}", r.json);
    assert!(!imap_login(imaps, &cacert, USER, &tablet));
    assert_eq!(
        api.admin("GET", &path, None).json.as_array().unwrap().len(),
        0
    );

    // The CLI's revoke.
    let out = env.ok(&["user", "app-password", "add", USER, "watch"]);
    let id: i64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    env.ok(&["user", "app-password", "revoke", USER, &id.to_string()]);
    assert!(
        env.run(&["user", "app-password", "revoke", USER, &id.to_string()])
            .status
            .code()
            != Some(0)
    );
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}

/// The spam filter's allow/block lists through the API: what `wharf spam lists` shows, the
/// same validation as `wharf spam allow`, moved between lists, removed; admins only.
#[test]
fn spam_lists_through_the_api_are_the_cli_s() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.add_user(USER);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    env.ok(&["spam", "allow", "example.test", "@partner.example"]);
    let (mut server, ready) = env.serve();
    let api = Api {
        port: ready.port("https"),
        cacert: env.data().join("tls/cert.pem").display().to_string(),
    };
    let r = api.admin("GET", "/api/v1/spam/lists", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json,
        json!([{"scope": "example.test", "entry": "@partner.example", "list": "allow"}])
    );
    let entry = format!("/api/v1/spam/lists/{USER}/Spammer@Bad.example");
    let r = api.admin("PUT", &entry, Some(json!({"list": "block"})));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"scope": USER, "entry": "spammer@bad.example", "list": "block"})
    );
    let cli = env.ok(&["spam", "lists", USER]);
    assert!(cli.contains("block\tspammer@bad.example"), "{cli}");
    // Moved to the allow list.
    let r = api.admin("PUT", &entry, Some(json!({"list": "allow"})));
    assert_eq!(r.json["list"], "allow");
    let r = api.admin("GET", &format!("/api/v1/spam/lists?scope={USER}"), None);
    assert_eq!(r.json.as_array().unwrap().len(), 1, "{}", r.json);
    assert_eq!(r.json[0]["list"], "allow");
    // Validation as `wharf spam allow`; bodies.
    for bad in ["localhost", "a%20b.example", "@"] {
        let r = api.admin(
            "PUT",
            &format!("/api/v1/spam/lists/{USER}/{bad}"),
            Some(json!({"list": "block"})),
        );
        error(&r, 422, "invalid");
    }
    error(
        &api.admin("PUT", &entry, Some(json!({"list": "maybe"}))),
        422,
        "invalid",
    );
    error(&api.admin("PUT", &entry, None), 422, "invalid");
    // A plain account may not.
    let plain = Auth::Basic(USER, PASSWORD);
    error(
        &api.call("GET", "/api/v1/spam/lists", &plain, None),
        403,
        "forbidden",
    );
    error(
        &api.call("PUT", &entry, &plain, Some(&json!({"list": "block"}))),
        403,
        "forbidden",
    );
    // Removed; a second time: 404.
    assert_eq!(api.admin("DELETE", &entry, None).status, 204);
    error(&api.admin("DELETE", &entry, None), 404, "not_found");
    assert!(!env.ok(&["spam", "lists", USER]).contains("spammer"));
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}
