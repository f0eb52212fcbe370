//! The web admin and self-service pages (`/web`) through the real `wharf` binary over HTTPS:
//! headless Chromium driven by selenium (tests/web_admin_browser.py) signs in as an admin, sees
//! the dashboard, adds an account (which then logs in over IMAP, python3 imaplib), and as that
//! user creates an app password that works for IMAP LOGIN until revoked on the page; curl checks
//! the cookies' attributes, the CSRF refusals (403) and the sign-in throttle (429).
//!
//! Needs Debian's `chromium` and `chromium-driver` and `pip install selenium` (.ci/run).
//! `WHARF_WEB_SCREENSHOTS=<dir>` saves the dashboard and accounts screenshots there (docs/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{Env, PASSWORD};

const HOST: &str = "mail.example.test";
const ADMIN: &str = "boss@example.test";

fn config(env: &Env) {
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [directory]\nauth_fail_delay_base = 0\nauth_fail_max_delay = 0\nauth_ip_lockout_after = 6\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.ok(&["user", "admin", ADMIN, "--on"]);
}

fn imap_login(port: u16, user: &str, password: &str) -> bool {
    let script = "import imaplib,ssl,sys\n\
        ctx=ssl.create_default_context()\n\
        ctx.check_hostname=False\nctx.verify_mode=ssl.CERT_NONE\n\
        m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\n\
        try:\n  m.login(sys.argv[2],sys.argv[3])\nexcept imaplib.IMAP4.error:\n  sys.exit(3)\n\
        typ,_=m.select('INBOX')\nassert typ=='OK'\nm.logout()\n";
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), user, password])
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("imaplib: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn browser_admin_and_self_service() {
    let env = Env::new();
    config(&env);
    let (mut server, ready) = env.serve();
    let https = ready.port("https");
    let imaps = ready.port("imaps");
    let new_user = "newbie@example.test";
    let new_password = "a fine new password";
    assert!(!imap_login(imaps, new_user, new_password));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web_admin_browser.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).args([
        &format!("https://127.0.0.1:{https}"),
        &imaps.to_string(),
        ADMIN,
        PASSWORD,
        new_user,
        new_password,
    ]);
    if let Ok(dir) = std::env::var("WHARF_WEB_SCREENSHOTS") {
        cmd.arg(dir);
    }
    let out = cmd.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "browser script failed:\n{stdout}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        server.rest_of_stderr(std::time::Duration::from_millis(500))
    );
    // The account the admin added in the browser logs in over IMAP.
    assert!(imap_login(imaps, new_user, new_password));
    // The CLI sees what the web pages did (one store, one set of operations).
    let list = env.ok(&["user", "list"]);
    assert!(list.contains(new_user), "{list}");
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}

struct Web {
    port: u16,
    cacert: String,
    jar: tempfile::TempDir,
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Web {
    /// curl with this client's cookie jar; `form` is sent urlencoded as a POST.
    fn req(&self, path: &str, form: Option<&[(&str, &str)]>, jar: bool) -> Reply {
        let head = self.jar.path().join("h");
        let cookies = self.jar.path().join("cookies");
        let url = format!("https://{HOST}:{}{path}", self.port);
        let resolve = format!("{HOST}:{}:127.0.0.1", self.port);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert", &self.cacert])
            .args(["--resolve", &resolve, "-D"])
            .arg(&head)
            .args(["-o", "-", "-w", "\n%{http_code}"]);
        if jar {
            cmd.arg("-b").arg(&cookies).arg("-c").arg(&cookies);
        }
        if let Some(fields) = form {
            if fields.is_empty() {
                cmd.args(["-X", "POST", "-d", ""]);
            }
            for (k, v) in fields {
                cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
            }
        }
        let out = cmd.arg(&url).output().expect("curl runs");
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        Reply {
            status: status.parse().unwrap(),
            headers: std::fs::read_to_string(&head).unwrap(),
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.req(path, None, true)
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.req(path, Some(form), true)
    }
}

/// The value of the form's hidden `csrf` field.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

fn set_cookie<'a>(headers: &'a str, name: &str) -> &'a str {
    headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase().starts_with("set-cookie:") && l.contains(&format!("{name}="))
        })
        .unwrap_or_else(|| panic!("no Set-Cookie {name} in {headers}"))
}

fn assert_strict_cookie(line: &str) {
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attr), "{attr} missing: {line}");
    }
}

#[test]
fn csrf_cookies_and_login_throttle() {
    let env = Env::new();
    config(&env);
    let (mut server, ready) = env.serve();
    let web = Web {
        port: ready.port("https"),
        cacert: env.data().join("tls/cert.pem").display().to_string(),
        jar: tempfile::tempdir().unwrap(),
    };

    // Not signed in: the pages send to the sign-in form.
    let r = web.get("/web/accounts");
    assert_eq!(r.status, 303);
    assert!(r.headers.contains("/web/login"), "{}", r.headers);

    // The sign-in form: its token is double-submitted in a strict cookie; security headers.
    let r = web.get("/web/login");
    assert_eq!(r.status, 200);
    assert_strict_cookie(set_cookie(&r.headers, "__Host-wharf_login"));
    let lower = r.headers.to_ascii_lowercase();
    assert!(
        lower.contains("content-security-policy: default-src 'none'"),
        "{lower}"
    );
    assert!(lower.contains("x-frame-options: deny"), "{lower}");
    let login_token = csrf(&r.body);

    // A sign-in post without the form's token, or with another one, is refused.
    let r = web.post("/web/login", &[("username", ADMIN), ("password", PASSWORD)]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = web.post(
        "/web/login",
        &[
            ("csrf", "0000"),
            ("username", ADMIN),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // Signed in: the session cookie is Secure, HttpOnly, SameSite=Strict.
    let r = web.post(
        "/web/login",
        &[
            ("csrf", &login_token),
            ("username", ADMIN),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_strict_cookie(set_cookie(&r.headers, "__Host-wharf_session"));
    let page = web.get("/web/accounts");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(ADMIN));
    let token = csrf(&page.body);

    // A state-changing post without the session's CSRF token is refused and changes nothing.
    let add = [
        ("address", "sneaky@example.test"),
        ("password", "a fine new password"),
    ];
    let r = web.post("/web/accounts", &add);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = web.post(
        "/web/accounts",
        &[
            ("csrf", "deadbeef"),
            ("address", "sneaky@example.test"),
            ("password", "a fine new password"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = web.post("/web/accounts", &[]);
    assert_eq!(r.status, 403);
    // Not even with the cookie alone from another site: no cookie jar, no session.
    let r = web.req("/web/accounts", Some(&add), false);
    assert_eq!(r.status, 403);
    assert!(!env.ok(&["user", "list"]).contains("sneaky@"));
    // With it, the same post works.
    let r = web.post(
        "/web/accounts",
        &[
            ("csrf", &token),
            ("address", "sneaky@example.test"),
            ("password", "a fine new password"),
        ],
    );
    assert_eq!(r.status, 303);
    assert!(env.ok(&["user", "list"]).contains("sneaky@example.test"));

    // Sign out ends the session.
    let r = web.post("/web/logout", &[("csrf", &token)]);
    assert_eq!(r.status, 303);
    assert_eq!(web.get("/web/accounts").status, 303);

    // Repeated wrong passwords: refused with 429 before long, and then even the right one is.
    let mut throttled_after = None;
    for i in 0..15 {
        let t = csrf(&web.get("/web/login").body);
        let r = web.post(
            "/web/login",
            &[
                ("csrf", &t),
                ("username", ADMIN),
                ("password", "wrong guess"),
            ],
        );
        if r.status == 429 {
            assert!(r.headers.to_ascii_lowercase().contains("retry-after:"));
            throttled_after = Some(i);
            break;
        }
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let n = throttled_after.expect("sign-in never throttled");
    assert!(n >= 3, "throttled too early ({n})");
    let t = csrf(&web.get("/web/login").body);
    let r = web.post(
        "/web/login",
        &[("csrf", &t), ("username", ADMIN), ("password", PASSWORD)],
    );
    assert_eq!(r.status, 429);
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}

/// Plain HTTP from a proxy that does not say the client used https: the pages (sign-in
/// included) are refused, so no password is typed into a page that travels in the clear.
#[test]
fn plain_http_is_refused() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [http]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"none\"\n"
    ));
    let (mut server, ready) = env.serve();
    let port = ready.port("http");
    let get = |path: &str, proto: Option<&str>| -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"]);
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
    let (code, body) = get("/web/login", None);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("https"), "{body}");
    assert_eq!(get("/web/login", Some("http")).0, 403);
    let (code, body) = get("/web/login", Some("https"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("name=\"password\""), "{body}");
    // The style sheet too is behind the check; unknown pages under /web are plain 404s.
    assert_eq!(get("/web/style.css", Some("https")).0, 200);
    assert_eq!(get("/web/nope", Some("https")).0, 404);
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(30));
}
