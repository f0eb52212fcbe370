//! The admin REST API's mail-side routes and its pagination, through the real `wharf` binary
//! over HTTPS (curl, with `api.rs`'s helpers): every paginated list walked to its end over
//! several pages by following `Link: rel="next"`; Sieve scripts put, read, activated and deleted
//! through the API and listed by a ManageSieve client (python3 socket); mailboxes created,
//! renamed and deleted while an IMAP client (python3 imaplib) stays logged in and sees each
//! change; an mbox and a single message imported and then read over IMAP, with the body cap,
//! the per-message cap and the quota; and 401, 403, 404, 409, 413, 415, 422 with JSON errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::api::{ADMIN, Api, Auth, HOST, Reply, USER, error};
use crate::common::{Env, PASSWORD};
use serde_json::{Value, json};

const FULL: &str = "full@example.test";

/// The `rel="next"` target of a reply's `Link` header, if any.
fn next_link(r: &Reply) -> Option<String> {
    r.raw_headers.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if !name.eq_ignore_ascii_case("link") {
            return None;
        }
        let value = value.trim();
        assert!(value.ends_with("; rel=\"next\""), "{value}");
        Some(value.strip_prefix('<')?.split_once('>')?.0.to_string())
    })
}

/// Every item of a paginated list, following the links; also how many pages it took.
fn walk(api: &Api, first: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut url = Some(first.to_string());
    let mut pages = 0;
    while let Some(u) = url {
        let r = api.admin("GET", &u, None);
        assert_eq!(r.status, 200, "{u}: {}", r.json);
        let page = r.json.as_array().unwrap();
        pages += 1;
        assert!(pages < 100, "{u}: no end");
        url = next_link(&r);
        if url.is_some() {
            assert!(!page.is_empty(), "{u}: an empty page with a next link");
        }
        items.extend(page.iter().cloned());
    }
    (items, pages)
}

fn strings(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

/// A python3 imaplib session that stays logged in: one command per line on stdin, one JSON
/// line back (`list`: the mailbox names; `count NAME`: EXISTS after SELECT, and the flags).
struct Imap {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Imap {
    fn login(port: u16, cacert: &str, user: &str) -> Imap {
        let script = r#"
import imaplib, ssl, sys, json
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(' ')
    if cmd == 'list':
        typ, data = m.list()
        names = []
        for d in data:
            d = d.decode()
            names.append(d.rsplit(' "/" ', 1)[1].strip('"'))
        print(json.dumps(sorted(names)), flush=True)
    elif cmd == 'count':
        typ, data = m.select('"%s"' % arg, readonly=True)
        if typ != 'OK':
            print(json.dumps(None), flush=True)
            continue
        n = int(data[0])
        flags = []
        if n:
            typ, fd = m.fetch('1:*', '(FLAGS)')
            flags = [f.decode() for f in fd]
        typ, subj = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])') if n else ('OK', [])
        subjects = [s[1].decode().strip() for s in subj if isinstance(s, tuple)]
        m.close()
        print(json.dumps({"exists": n, "flags": flags, "subjects": sorted(subjects)}), flush=True)
    elif cmd == 'quit':
        m.logout()
        break
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, &port.to_string(), cacert, user, PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut imap = Imap {
            child,
            stdin,
            stdout,
        };
        assert_eq!(imap.read(), json!("ready"));
        imap
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("imap helper: {e}: {line:?}"))
    }

    fn ask(&mut self, cmd: &str) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.read()
    }

    fn list(&mut self) -> Vec<String> {
        serde_json::from_value(self.ask("list")).unwrap()
    }

    fn quit(mut self) {
        writeln!(self.stdin, "quit").unwrap();
        self.child.wait().unwrap();
    }
}

/// LISTSCRIPTS over ManageSieve (plain AUTHENTICATE on loopback): (name, active) pairs.
fn managesieve_scripts(port: u16, user: &str) -> Vec<(String, bool)> {
    let script = r#"
import socket, sys, base64, json
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
f = s.makefile('rb')
def until_ok():
    lines = []
    while True:
        l = f.readline().decode().rstrip('\r\n')
        if l.startswith('OK') or l.startswith('NO') or l.startswith('BYE'):
            return lines, l
        lines.append(l)
until_ok()
cred = base64.b64encode(('\0%s\0%s' % (sys.argv[2], sys.argv[3])).encode()).decode()
s.sendall(('AUTHENTICATE "PLAIN" "%s"\r\n' % cred).encode())
_, st = until_ok()
assert st.startswith('OK'), st
s.sendall(b'LISTSCRIPTS\r\n')
lines, st = until_ok()
assert st.startswith('OK'), st
out = []
for l in lines:
    name = l.split('"')[1]
    out.append([name, l.endswith(' ACTIVE')])
print(json.dumps(sorted(out)))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), user, PASSWORD])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "managesieve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn token(env: &Env, name: &str, scopes: &str) -> String {
    let out = env.ok(&["token", "create", name, "--scope", scopes]);
    out.split("shown only this once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
}

fn mbox_message(n: usize, subject: &str, body_lines: usize) -> String {
    let mut m = format!(
        "From sender{n}@example.net Sat Jan  3 01:05:{:02} 2026\nFrom: sender{n}@example.net\nSubject: {subject}\nStatus: RO\n\n",
        n % 60
    );
    for i in 0..body_lines {
        m.push_str(&format!("line {i} of message {n}\n"));
    }
    m.push('\n');
    m
}

#[test]
fn admin_api_mail_routes_and_pagination() {
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"{HOST}\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\nmax_message_size = 20000\n[inbound]\nenabled = false\n\
         [http]\napi_import_max_bytes = 200000\n\
         [managesieve]\nallow_plaintext_auth_on_loopback = true\nmax_scripts = 4\n\
         [directory]\nauth_fail_delay_base = 0\nauth_fail_max_delay = 0\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"managesieve\"\ntls = \"none\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"http\"\ntls = \"implicit\"\n"
    ));
    env.add_user(ADMIN);
    env.add_user(USER);
    env.add_user(FULL);
    env.ok(&["user", "admin", ADMIN, "--on"]);
    let ro = token(&env, "ro", "read");
    let (mut server, ready) = env.serve();
    let cacert = env.data().join("tls/cert.pem").display().to_string();
    let api = Api {
        port: ready.port("https"),
        cacert: cacert.clone(),
    };
    let imaps = ready.port("imaps");
    let sieve_port = ready.port("managesieve");

    // ---- Pagination: every growing list, walked to its end over several pages ----
    for i in 0..6 {
        let r = api.admin(
            "POST",
            "/api/v1/domains",
            Some(json!({"name": format!("d{i}.test")})),
        );
        assert_eq!(r.status, 201, "{}", r.json);
    }
    let (domains, pages) = walk(&api, "/api/v1/domains?limit=3");
    let names = strings(&domains, "name");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(pages, 3);
    // The default page holds them all, with no Link.
    let r = api.admin("GET", "/api/v1/domains", None);
    assert_eq!(r.json.as_array().unwrap().len(), 7);
    assert!(next_link(&r).is_none(), "{}", r.raw_headers);
    // A full last page has no Link either.
    let (_, pages) = walk(&api, "/api/v1/domains?limit=7");
    assert_eq!(pages, 1);

    for i in 0..5 {
        let r = api.admin(
            "POST",
            "/api/v1/accounts",
            Some(json!({"address": format!("User{i}@d1.test"), "password": "a long passphrase"})),
        );
        assert_eq!(r.status, 201, "{}", r.json);
    }
    let (accounts, pages) = walk(&api, "/api/v1/accounts?limit=2");
    assert_eq!(pages, 4, "8 accounts by 2");
    let addresses = strings(&accounts, "address");
    assert_eq!(addresses.len(), 8, "{addresses:?}");
    assert_eq!(
        addresses.iter().filter(|a| a.ends_with("@d1.test")).count(),
        5
    );
    // The domain filter stays in the links.
    let (d1, pages) = walk(&api, "/api/v1/accounts?domain=d1.test&limit=2");
    assert_eq!((d1.len(), pages), (5, 3));
    assert_eq!(strings(&d1, "address")[0], "user0@d1.test");

    for i in 0..5 {
        let r = api.admin(
            "POST",
            "/api/v1/aliases",
            Some(json!({"address": format!("alias{i}@example.test"), "target": USER})),
        );
        assert_eq!(r.status, 201, "{}", r.json);
    }
    let (aliases, pages) = walk(&api, "/api/v1/aliases?limit=2");
    assert_eq!((aliases.len(), pages), (5, 3));

    for i in 0..5 {
        let r = api.admin(
            "PUT",
            &format!("/api/v1/spam/lists/example.test/spammer{i}.example"),
            Some(json!({"list": "block"})),
        );
        assert_eq!(r.status, 200, "{}", r.json);
    }
    let (entries, pages) = walk(&api, "/api/v1/spam/lists?limit=2");
    assert_eq!((entries.len(), pages), (5, 3));
    let (entries, _) = walk(&api, "/api/v1/spam/lists?scope=example.test&limit=4");
    assert_eq!(entries.len(), 5);

    let (queue, pages) = walk(&api, "/api/v1/queue?limit=1");
    assert_eq!((queue.len(), pages), (0, 1));
    let (reports, _) = walk(&api, &format!("/api/v1/reports?account={ADMIN}&limit=1"));
    assert!(reports.is_empty());
    let (mailboxes, pages) = walk(&api, &format!("/api/v1/accounts/{USER}/mailboxes?limit=2"));
    assert!(mailboxes.len() >= 4 && pages >= 2, "{mailboxes:?}");
    assert!(strings(&mailboxes, "name").contains(&"INBOX".to_string()));

    // Bad limits and cursors are 422; a read token pages too.
    for bad in ["limit=0", "limit=1001", "limit=x", "after=!!", "after=e30"] {
        error(
            &api.admin("GET", &format!("/api/v1/accounts?{bad}"), None),
            422,
            "invalid",
        );
    }
    // A cursor of another list (one key part where accounts have two).
    let r = api.admin("GET", "/api/v1/domains?limit=1", None);
    let cursor = next_link(&r).unwrap();
    let cursor = cursor.split("after=").nth(1).unwrap();
    error(
        &api.admin("GET", &format!("/api/v1/accounts?after={cursor}"), None),
        422,
        "invalid",
    );
    let r = api.call("GET", "/api/v1/accounts?limit=1", &Auth::Bearer(&ro), None);
    assert_eq!(r.status, 200);
    assert!(next_link(&r).is_some());

    // ---- Sieve scripts ----
    let sieve = format!("/api/v1/accounts/{USER}/sieve");
    let good = "require \"fileinto\";\nif header :contains \"subject\" \"offer\" {\n  fileinto \"Junk\";\n}\n";
    let put = |name: &str, text: &str, auth: &Auth| {
        api.call_raw(
            "PUT",
            &format!("{sieve}/{name}"),
            auth,
            Some(("text/plain", text.as_bytes())),
        )
    };
    let admin = Auth::Basic(ADMIN, PASSWORD);
    let r = put("main", good, &admin);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"name": "main", "size": good.len(), "active": false})
    );
    // Not compiling: 422 with the compiler's line and column.
    let r = put(
        "broken",
        "require \"fileinto\";\nfileinot \"Junk\";\n",
        &admin,
    );
    error(&r, 422, "invalid_script");
    assert_eq!(r.json["error"]["line"], 2, "{}", r.json);
    assert!(r.json["error"]["column"].is_u64(), "{}", r.json);
    let r = api.call_raw(
        "PUT",
        &format!("{sieve}/bad-utf8"),
        &admin,
        Some(("text/plain", b"# \xff\n")),
    );
    error(&r, 422, "invalid");
    assert_eq!(r.json["error"]["line"], 1);
    // Over ManageSieve's size (64 KiB), and over the body cap (1 MiB).
    let big = format!("# {}\nkeep;\n", "x".repeat(70_000));
    error(&put("big", &big, &admin), 422, "invalid");
    let huge = "#".repeat((1 << 20) + 10);
    error(&put("huge", &huge, &admin), 413, "too_large");
    // A script named like the static route is still a script.
    assert_eq!(put("deactivate", "keep;\n", &admin).status, 200);
    let r = api.admin("GET", &format!("{sieve}/deactivate"), None);
    assert_eq!((r.status, r.text.as_str()), (200, "keep;\n"));
    // Bad name: 422.
    error(&put("%01ctl", "keep;\n", &admin), 422, "invalid");
    let r = api.admin("GET", &format!("{sieve}/main"), None);
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("content-type: text/plain"),
        "{}",
        r.headers
    );
    assert_eq!(r.text, good);
    error(
        &api.admin("GET", &format!("{sieve}/nope"), None),
        404,
        "not_found",
    );
    error(
        &api.admin("POST", &format!("{sieve}/nope/activate"), None),
        404,
        "not_found",
    );
    let r = api.admin("POST", &format!("{sieve}/main/activate"), None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json,
        json!([{"name": "deactivate", "size": 6, "active": false},
               {"name": "main", "size": good.len(), "active": true}])
    );
    // ManageSieve sees the same scripts, the same one active.
    assert_eq!(
        managesieve_scripts(sieve_port, USER),
        vec![
            ("deactivate".to_string(), false),
            ("main".to_string(), true)
        ]
    );
    // The active script cannot be deleted (ManageSieve's rule).
    error(
        &api.admin("DELETE", &format!("{sieve}/main"), None),
        409,
        "conflict",
    );
    // The count bound ([managesieve] max_scripts = 4).
    assert_eq!(put("s3", "keep;\n", &admin).status, 200);
    assert_eq!(put("s4", "keep;\n", &admin).status, 200);
    error(&put("s5", "keep;\n", &admin), 422, "invalid");
    // Replacing the active script keeps it active.
    let r = put("main", "keep;\n", &admin);
    assert_eq!(r.json["active"], true, "{}", r.json);
    let r = api.admin("POST", &format!("{sieve}/deactivate"), None);
    assert_eq!(r.status, 200);
    assert!(
        r.json
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["active"] == false)
    );
    assert_eq!(
        api.admin("DELETE", &format!("{sieve}/main"), None).status,
        204
    );
    error(
        &api.admin("DELETE", &format!("{sieve}/main"), None),
        404,
        "not_found",
    );
    assert_eq!(
        managesieve_scripts(sieve_port, USER),
        vec![
            ("deactivate".to_string(), false),
            ("s3".to_string(), false),
            ("s4".to_string(), false)
        ]
    );
    let r = api.admin("GET", &sieve, None);
    assert_eq!(r.json.as_array().unwrap().len(), 3);
    // Unknown account, no auth, a read token writing, a plain account.
    error(
        &api.admin("GET", "/api/v1/accounts/nobody@example.test/sieve", None),
        404,
        "not_found",
    );
    error(&put("x", "keep;\n", &Auth::None), 401, "unauthorized");
    error(
        &put("x", "keep;\n", &Auth::Bearer(&ro)),
        403,
        "insufficient_scope",
    );
    error(
        &put("x", "keep;\n", &Auth::Basic(USER, PASSWORD)),
        403,
        "forbidden",
    );
    assert_eq!(
        api.call("GET", &sieve, &Auth::Bearer(&ro), None).status,
        200
    );
    error(
        &api.call(
            "POST",
            &format!("{sieve}/deactivate"),
            &Auth::Bearer(&ro),
            None,
        ),
        403,
        "insufficient_scope",
    );
    error(
        &api.call("DELETE", &format!("{sieve}/s3"), &Auth::None, None),
        401,
        "unauthorized",
    );

    // ---- Mailboxes, watched by a logged-in IMAP client ----
    let mut imap = Imap::login(imaps, &cacert, USER);
    let before = imap.list();
    assert!(before.contains(&"INBOX".to_string()), "{before:?}");
    let mb = format!("/api/v1/accounts/{USER}/mailboxes");
    let r = api.admin(
        "POST",
        &mb,
        Some(json!({"name": "Projekte/Entwürfe", "special_use": "\\Archive"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["name"], "Projekte/Entwürfe");
    assert_eq!(r.json["special_use"], "\\Archive");
    assert_eq!(r.json["subscribed"], true);
    assert_eq!(r.json["messages"], 0);
    let names = imap.list();
    assert!(
        names.contains(&"Projekte".to_string())
            && names.contains(&"Projekte/Entw&APw-rfe".to_string()),
        "{names:?}"
    );
    error(
        &api.admin("POST", &mb, Some(json!({"name": "Projekte/Entwürfe"}))),
        409,
        "conflict",
    );
    error(
        &api.admin("POST", &mb, Some(json!({"name": "a//b"}))),
        422,
        "invalid",
    );
    error(
        &api.admin(
            "POST",
            &mb,
            Some(json!({"name": "x", "special_use": "\\Bogus"})),
        ),
        422,
        "invalid",
    );
    error(
        &api.admin("POST", &mb, Some(json!({"nom": "x"}))),
        422,
        "invalid",
    );
    // Rename, with the name URL-encoded (a / and non-ASCII).
    let r = api.admin(
        "POST",
        &format!("{mb}/Projekte%2FEntw%C3%BCrfe/rename"),
        Some(json!({"to": "Archiv/2024"})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["name"], "Archiv/2024");
    assert_eq!(r.json["subscribed"], true);
    let names = imap.list();
    assert!(
        names.contains(&"Archiv/2024".to_string())
            && !names.contains(&"Projekte/Entw&APw-rfe".to_string()),
        "{names:?}"
    );
    error(
        &api.admin(
            "POST",
            &format!("{mb}/Nope/rename"),
            Some(json!({"to": "X"})),
        ),
        404,
        "not_found",
    );
    error(
        &api.admin(
            "POST",
            &format!("{mb}/Archiv/rename"),
            Some(json!({"to": "Archiv/2024"})),
        ),
        409,
        "conflict",
    );
    error(
        &api.admin("DELETE", &format!("{mb}/INBOX"), None),
        422,
        "invalid",
    );
    assert_eq!(
        api.admin("DELETE", &format!("{mb}/Archiv%2F2024"), None)
            .status,
        204
    );
    assert!(!imap.list().contains(&"Archiv/2024".to_string()));
    error(
        &api.admin("DELETE", &format!("{mb}/Archiv%2F2024"), None),
        404,
        "not_found",
    );
    error(
        &api.call("POST", &mb, &Auth::Bearer(&ro), Some(&json!({"name": "R"}))),
        403,
        "insufficient_scope",
    );
    error(
        &api.call("DELETE", &format!("{mb}/Archiv"), &Auth::None, None),
        401,
        "unauthorized",
    );
    error(
        &api.call("GET", &mb, &Auth::Basic(USER, PASSWORD), None),
        403,
        "forbidden",
    );
    error(
        &api.admin(
            "GET",
            "/api/v1/accounts/nobody@example.test/mailboxes",
            None,
        ),
        404,
        "not_found",
    );

    // ---- Import, then read over IMAP ----
    let import = format!("/api/v1/accounts/{USER}/import");
    let mut mbox = String::new();
    mbox.push_str(&mbox_message(1, "first", 3));
    mbox.push_str(&mbox_message(2, "too big", 2000)); // ~45 KB > max_message_size
    mbox.push_str(&mbox_message(3, "third", 3));
    let r = api.call_raw(
        "POST",
        &format!("{import}?mailbox=Alt%20Post/2025"),
        &admin,
        Some(("application/mbox", mbox.as_bytes())),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["mailbox"], "Alt Post/2025");
    assert_eq!(
        (&r.json["imported"], &r.json["skipped"], &r.json["errors"]),
        (&json!(2), &json!(1), &json!(0)),
        "{}",
        r.json
    );
    assert!(r.json["stopped"].is_null(), "{}", r.json);
    let seen = imap.ask("count Alt Post/2025");
    assert_eq!(seen["exists"], 2, "{seen}");
    assert_eq!(
        seen["subjects"],
        json!(["Subject: first", "Subject: third"])
    );
    assert!(
        seen["flags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.as_str().unwrap().contains("\\Seen")),
        "{seen}"
    );
    let one = "From: a@example.net\r\nSubject: single\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\nhello\r\n";
    let r = api.call_raw(
        "POST",
        &import,
        &admin,
        Some(("message/rfc822", one.as_bytes())),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["imported"], 1);
    let inbox = imap.ask("count INBOX");
    assert_eq!(inbox["subjects"], json!(["Subject: single"]), "{inbox}");
    // The API's mailbox list counts them too.
    let (boxes, _) = walk(&api, &format!("{mb}?limit=100"));
    let alt = boxes.iter().find(|b| b["name"] == "Alt Post/2025").unwrap();
    assert_eq!(
        (alt["messages"].clone(), alt["unseen"].clone()),
        (json!(2), json!(0))
    );
    // Not an mbox, a wrong media type, a body over [http] api_import_max_bytes.
    error(
        &api.call_raw(
            "POST",
            &import,
            &admin,
            Some(("application/mbox", b"hello\n")),
        ),
        422,
        "invalid",
    );
    error(
        &api.call_raw(
            "POST",
            &import,
            &admin,
            Some(("text/plain", one.as_bytes())),
        ),
        415,
        "unsupported_media_type",
    );
    let mut large = String::new();
    let mut n = 0;
    while large.len() < 300_000 {
        n += 1;
        large.push_str(&mbox_message(n, &format!("bulk {n}"), 40));
    }
    let r = api.call_raw(
        "POST",
        &format!("{import}?mailbox=Bulk"),
        &admin,
        Some(("application/mbox", large.as_bytes())),
    );
    error(&r, 413, "too_large");
    let bulk = imap.ask("count Bulk")["exists"].as_u64().unwrap();
    assert!(bulk > 0 && bulk < n as u64, "{bulk} of {n}");
    // The quota stops an import.
    let r = api.admin(
        "PUT",
        &format!("/api/v1/accounts/{FULL}/quota"),
        Some(json!({"quota": 1500})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    // Larger than what the server holds in its buffers: it stops reading at the quota, and the
    // client must still get the reply (the rest is drained, not reset).
    let mut some = String::new();
    for i in 0..400 {
        some.push_str(&mbox_message(i, "q", 10));
    }
    assert!(some.len() > 100_000 && some.len() < 200_000);
    let r = api.call_raw(
        "POST",
        &format!("/api/v1/accounts/{FULL}/import"),
        &admin,
        Some(("application/mbox", some.as_bytes())),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let imported = r.json["imported"].as_u64().unwrap();
    assert!(imported < 10, "{}", r.json);
    assert!(
        r.json["problems"].as_array().unwrap().is_empty(),
        "{}",
        r.json
    );
    assert!(
        r.json["stopped"].as_str().unwrap().contains("quota"),
        "{}",
        r.json
    );
    let r = api.admin(
        "PUT",
        &format!("/api/v1/accounts/{FULL}/quota"),
        Some(json!({"quota": 1})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    error(
        &api.call_raw(
            "POST",
            &format!("/api/v1/accounts/{FULL}/import"),
            &admin,
            Some(("message/rfc822", one.as_bytes())),
        ),
        422,
        "invalid",
    );
    error(
        &api.call_raw(
            "POST",
            &import,
            &Auth::Bearer(&ro),
            Some(("message/rfc822", one.as_bytes())),
        ),
        403,
        "insufficient_scope",
    );
    error(
        &api.call_raw(
            "POST",
            &import,
            &Auth::None,
            Some(("message/rfc822", one.as_bytes())),
        ),
        401,
        "unauthorized",
    );
    error(
        &api.call_raw(
            "POST",
            &import,
            &Auth::Basic(USER, PASSWORD),
            Some(("message/rfc822", one.as_bytes())),
        ),
        403,
        "forbidden",
    );
    error(
        &api.call_raw(
            "POST",
            "/api/v1/accounts/nobody@example.test/import",
            &admin,
            Some(("message/rfc822", one.as_bytes())),
        ),
        404,
        "not_found",
    );
    error(
        &api.call_raw(
            "POST",
            &format!("{import}?mailbox=a//b"),
            &admin,
            Some(("message/rfc822", one.as_bytes())),
        ),
        422,
        "invalid",
    );

    // Every new route: a read token cannot write, a plain account is no admin, an unknown
    // account is a 404 (after authentication).
    let routes: &[(&str, &str, bool)] = &[
        ("GET", "/sieve", false),
        ("GET", "/sieve/s3", false),
        ("PUT", "/sieve/s3", true),
        ("DELETE", "/sieve/s3", true),
        ("POST", "/sieve/s3/activate", true),
        ("POST", "/sieve/deactivate", true),
        ("GET", "/mailboxes", false),
        ("POST", "/mailboxes", true),
        ("DELETE", "/mailboxes/Bulk", true),
        ("POST", "/mailboxes/Bulk/rename", true),
        ("POST", "/import", true),
    ];
    for (method, tail, write) in routes {
        let body: Option<(&str, &[u8])> = match *tail {
            "/sieve/s3" if *method == "PUT" => Some(("text/plain", b"keep;\n")),
            "/mailboxes" => Some(("application/json", br#"{"name":"N"}"#)),
            "/mailboxes/Bulk/rename" => Some(("application/json", br#"{"to":"N"}"#)),
            "/import" => Some(("message/rfc822", one.as_bytes())),
            _ => None,
        };
        let path = format!("/api/v1/accounts/{USER}{tail}");
        let r = api.call_raw(method, &path, &Auth::Bearer(&ro), body);
        if *write {
            error(&r, 403, "insufficient_scope");
        } else {
            assert_eq!(r.status, 200, "{method} {path}: {}", r.json);
        }
        error(
            &api.call_raw(method, &path, &Auth::Basic(USER, PASSWORD), body),
            403,
            "forbidden",
        );
        error(
            &api.call_raw(method, &path, &Auth::None, body),
            401,
            "unauthorized",
        );
        let unknown = format!("/api/v1/accounts/nobody@example.test{tail}");
        error(
            &api.call_raw(method, &unknown, &admin, body),
            404,
            "not_found",
        );
    }

    imap.quit();
    server.sigterm();
    server.wait_exit(std::time::Duration::from_secs(20));
}
