//! The web admin and self-service pages (`/web`) through the real `wharf` binary over HTTPS:
//! headless Chromium driven by selenium (tests/web_admin_browser.py) signs in as an admin, sees
//! the dashboard, adds an account (which then logs in over IMAP, python3 imaplib), and as that
//! user creates an app password that works for IMAP LOGIN until revoked on the page; curl checks
//! the cookies' attributes, the CSRF refusals (403) and the sign-in throttle (429).
//!
//! Needs Debian's `chromium` and `chromium-driver` and `pip install selenium` (.ci/run).
//! `WHARF_WEB_SCREENSHOTS=<dir>` saves the dashboard and accounts screenshots there (docs/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

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
        // A failed sign-in is the form again with the error (no 401: this is no HTTP auth).
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.contains("Wrong email address or password"),
            "{}",
            r.body
        );
        assert!(!r.headers.to_ascii_lowercase().contains("www-authenticate"));
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

impl Web {
    fn new(env: &Env, port: u16) -> Web {
        Web {
            port,
            cacert: env.data().join("tls/cert.pem").display().to_string(),
            jar: tempfile::tempdir().unwrap(),
        }
    }

    /// Signs in; panics unless it worked.
    fn sign_in(&self, user: &str, password: &str) {
        let t = csrf(&self.get("/web/login").body);
        let r = self.post(
            "/web/login",
            &[("csrf", &t), ("username", user), ("password", password)],
        );
        assert_eq!(r.status, 303, "sign-in of {user}: {}", r.body);
    }

    /// The CSRF token of a signed-in page (panics when the session has ended).
    fn token(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        csrf(&r.body)
    }

    /// A GET of /web/me, true when the session still lets it through.
    fn signed_in(&self) -> bool {
        let r = self.get("/web/me");
        match r.status {
            200 => true,
            303 => {
                assert!(r.headers.contains("/web/login"), "{}", r.headers);
                false
            }
            s => panic!("/web/me: {s}"),
        }
    }

    /// Creates an app password on /web/me: (its id, the secret shown once).
    fn create_app_password(&self, label: &str) -> (String, String) {
        let before = app_password_ids(&self.get("/web/me").body);
        let t = self.token("/web/me");
        let r = self.post("/web/me/app-passwords", &[("csrf", &t), ("label", label)]);
        assert_eq!(r.status, 303);
        let page = self.get("/web/me").body;
        let at = page.find("id=\"app-password\">").expect("the new secret") + 18;
        let secret = page[at..].split('<').next().unwrap().to_string();
        let id = app_password_ids(&page)
            .into_iter()
            .find(|i| !before.contains(i))
            .expect("a new app password id");
        (id, secret)
    }
}

fn app_password_ids(html: &str) -> Vec<String> {
    html.split("/web/me/app-passwords/")
        .skip(1)
        .filter_map(|rest| rest.split_once("/revoke").map(|(id, _)| id.to_string()))
        .collect()
}

/// The admin REST API with HTTP Basic credentials: the status of GET /api/v1/accounts.
fn api_status(web: &Web, user: &str, password: &str) -> u16 {
    let url = format!("https://{HOST}:{}/api/v1/accounts", web.port);
    let resolve = format!("{HOST}:{}:127.0.0.1", web.port);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert", &web.cacert])
        .args([
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("-u")
        .arg(format!("{user}:{password}"))
        .arg(&url)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The app-password count /web/accounts shows for `address`.
fn app_password_count(admin: &Web, address: &str) -> String {
    let page = admin.get("/web/accounts").body;
    let row = page
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{address}</td>")))
        .unwrap_or_else(|| panic!("no row for {address}"));
    let cell = "class=\"app-passwords\">";
    let at = row.find(cell).expect("the count cell") + cell.len();
    row[at..].split('<').next().unwrap().to_string()
}

/// Who may do what with sessions and app passwords: an admin's app password does not open
/// the admin API; a user's session ends when an admin resets the password (which also revokes
/// the app passwords), disables or deletes the account, even through the CLI (a re-created
/// address does not inherit it); a user's own password change signs out their other browsers;
/// a user cannot post admin forms nor revoke someone else's app password.
#[test]
fn sessions_follow_the_account() {
    let env = Env::new();
    config(&env);
    let bob = "bob@example.test";
    env.add_user(bob);
    let (mut server, ready) = env.serve();
    let port = ready.port("https");
    let imaps = ready.port("imaps");

    let admin = Web::new(&env, port);
    admin.sign_in(ADMIN, PASSWORD);
    let (admin_app_id, admin_app) = admin.create_app_password("admin phone");
    assert!(imap_login(imaps, ADMIN, &admin_app));
    // The admin API takes the account password only.
    assert_eq!(api_status(&admin, ADMIN, PASSWORD), 200);
    assert_eq!(api_status(&admin, ADMIN, &admin_app), 401);

    let user = Web::new(&env, port);
    user.sign_in(bob, PASSWORD);
    let t = user.token("/web/me");
    // A user's post to an admin form, with a valid CSRF token, is refused.
    let r = user.post(
        "/web/accounts",
        &[
            ("csrf", &t),
            ("address", "intruder@example.test"),
            ("password", "a fine new password"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!env.ok(&["user", "list"]).contains("intruder@"));
    // Revoking the admin's app password by its id: refused, and it still works.
    let r = user.post(
        &format!("/web/me/app-passwords/{admin_app_id}/revoke"),
        &[("csrf", &t)],
    );
    assert_eq!(r.status, 303);
    let page = user.get("/web/me").body;
    assert!(page.contains("flash err"), "{page}");
    assert!(imap_login(imaps, ADMIN, &admin_app));

    // Bob's app password; the admin sees the count.
    let (_, bob_app) = user.create_app_password("bob laptop");
    assert!(imap_login(imaps, bob, &bob_app));
    assert_eq!(app_password_count(&admin, bob), "1");

    // The admin resets bob's password: bob's session ends, his app passwords are revoked.
    let t = admin.token("/web/accounts");
    let reset = "a password from the admin";
    let r = admin.post(
        &format!("/web/accounts/{bob}/password"),
        &[("csrf", &t), ("password", reset)],
    );
    assert_eq!(r.status, 303);
    assert!(!user.signed_in(), "bob's session survived the reset");
    assert!(!imap_login(imaps, bob, &bob_app));
    assert_eq!(app_password_count(&admin, bob), "0");
    assert!(imap_login(imaps, bob, reset));

    // Disabled by the admin on the page: the session ends, posts are refused.
    user.sign_in(bob, reset);
    let t = user.token("/web/me");
    let at = admin.token("/web/accounts");
    assert_eq!(
        admin
            .post(&format!("/web/accounts/{bob}/disable"), &[("csrf", &at)])
            .status,
        303
    );
    assert_eq!(
        user.post("/web/me/app-passwords", &[("csrf", &t), ("label", "x")])
            .status,
        403
    );
    assert!(!user.signed_in());
    assert_eq!(
        admin
            .post(&format!("/web/accounts/{bob}/enable"), &[("csrf", &at)])
            .status,
        303
    );

    // Disabled through the CLI (another process: only the per-request check sees it).
    user.sign_in(bob, reset);
    assert!(user.signed_in());
    env.ok(&["user", "disable", bob]);
    assert!(
        !user.signed_in(),
        "a disabled account's session still works"
    );
    env.ok(&["user", "enable", bob]);
    assert!(!user.signed_in(), "the ended session came back");

    // Deleted and created again through the CLI: the old session is not the new account's.
    user.sign_in(bob, reset);
    assert!(user.signed_in());
    env.ok(&["user", "del", bob]);
    env.add_user(bob);
    assert!(
        !user.signed_in(),
        "a re-created address inherited a session"
    );

    // Bob changes his own password: his other browser is signed out, this one stays.
    user.sign_in(bob, PASSWORD);
    let other = Web::new(&env, port);
    other.sign_in(bob, PASSWORD);
    let (_, kept_app) = user.create_app_password("bob tablet");
    let t = user.token("/web/me");
    let mine = "my own new password";
    let r = user.post(
        "/web/me/password",
        &[
            ("csrf", &t),
            ("current", PASSWORD),
            ("new", mine),
            ("confirm", mine),
        ],
    );
    assert_eq!(r.status, 303);
    assert!(user.get("/web/me").body.contains("Password changed"));
    assert!(user.signed_in());
    assert!(!other.signed_in());
    // The user's own change keeps the app passwords.
    assert!(imap_login(imaps, bob, &kept_app));
    assert!(imap_login(imaps, bob, mine));

    // The admin's session was untouched throughout; setting their own password on the
    // accounts page keeps this browser signed in.
    assert!(admin.signed_in());
    let t = admin.token("/web/accounts");
    let r = admin.post(
        &format!("/web/accounts/{ADMIN}/password"),
        &[("csrf", &t), ("password", "the admin's new password")],
    );
    assert_eq!(r.status, 303);
    assert!(admin.signed_in());
    assert_eq!(api_status(&admin, ADMIN, "the admin's new password"), 200);
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}

/// "Junk lists" on /web/me: a user allows and blocks senders for their own address only (what
/// `wharf spam lists` shows), with the CLI's validation, and removes them.
#[test]
fn junk_lists_on_the_self_service_page() {
    let env = Env::new();
    config(&env);
    let bob = "bob@example.test";
    env.add_user(bob);
    env.ok(&["spam", "block", ADMIN, "keep@me.example"]);
    let (mut server, ready) = env.serve();
    let user = Web::new(&env, ready.port("https"));
    user.sign_in(bob, PASSWORD);
    let t = user.token("/web/me");
    let r = user.post(
        "/web/me/junk-lists",
        &[("csrf", &t), ("entry", "@News.example"), ("list", "block")],
    );
    assert_eq!(r.status, 303);
    let page = user.get("/web/me").body;
    assert!(page.contains("goes to Junk"), "{page}");
    assert!(
        page.contains("<td>@news.example</td><td>block</td>"),
        "{page}"
    );
    // Another user's entries are not shown.
    assert!(!page.contains("keep@me.example"), "{page}");
    let r = user.post(
        "/web/me/junk-lists",
        &[
            ("csrf", &t),
            ("entry", "friend@pals.example"),
            ("list", "allow"),
        ],
    );
    assert_eq!(r.status, 303);
    let lists = env.ok(&["spam", "lists", bob]);
    assert!(
        lists.contains("block\t@news.example") && lists.contains("allow\tfriend@pals.example"),
        "{lists}"
    );
    // Refused as by `wharf spam allow`: no dot, whitespace; no list chosen; no CSRF token.
    for (entry, list) in [
        ("localhost", "allow"),
        ("a b.example", "block"),
        ("x@y.example", ""),
    ] {
        let r = user.post(
            "/web/me/junk-lists",
            &[("csrf", &t), ("entry", entry), ("list", list)],
        );
        assert_eq!(r.status, 303);
        assert!(user.get("/web/me").body.contains("flash err"), "{entry:?}");
    }
    let r = user.post(
        "/web/me/junk-lists",
        &[("entry", "evil@x.example"), ("list", "allow")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(env.ok(&["spam", "lists", bob]).lines().count(), 2);
    // Removing the admin's entry from bob's page touches only bob's scope: nothing to remove.
    let r = user.post(
        "/web/me/junk-lists/remove",
        &[("csrf", &t), ("entry", "keep@me.example")],
    );
    assert_eq!(r.status, 303);
    assert!(user.get("/web/me").body.contains("flash err"));
    assert!(
        env.ok(&["spam", "lists", ADMIN])
            .contains("keep@me.example")
    );
    let r = user.post(
        "/web/me/junk-lists/remove",
        &[("csrf", &t), ("entry", "@news.example")],
    );
    assert_eq!(r.status, 303);
    assert!(!env.ok(&["spam", "lists", bob]).contains("news.example"));
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}
