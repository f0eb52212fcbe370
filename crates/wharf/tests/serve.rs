//! `wharf serve` as operators and scripts see it: first run, the ready line, SIGTERM, config and
//! bind errors. Every listener is on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use common::{Env, Server, random_offset, smtp_reply};
use wharf_directory::{Directory, DirectoryConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The first line a fresh plaintext connection receives.
fn greeting(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_creates_everything_serves_and_stops_on_sigterm() {
    // A random offset may meet a port another program holds: then start afresh elsewhere.
    let (env, offset, mut server, ready) = {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let env = Env::empty();
            let offset = random_offset();
            let mut server = Server::start(
                env.path(),
                &[
                    "serve",
                    "--config",
                    env.config().to_str().unwrap(),
                    "--hostname",
                    "mail.example.test",
                    "--listen",
                    "127.0.0.1",
                    "--port-offset",
                    &offset.to_string(),
                ],
            );
            match server.wait_for(" ready", Duration::from_secs(60)) {
                Some(line) => break (env, offset, server, common::parse_ready(&line)),
                None => {
                    let err = server.rest_of_stderr(Duration::from_secs(2));
                    assert!(
                        attempt < 3 && err.contains("in use"),
                        "no ready line:\n{err}"
                    );
                }
            }
        }
    };
    let config = env.config();
    let names: Vec<&str> = ready.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "smtp",
            "submission",
            "submissions",
            "imap",
            "imaps",
            "pop3",
            "pop3s",
            "http",
            "https",
            "managesieve"
        ]
    );
    let ports: Vec<u16> = ready.iter().map(|(_, p)| *p).collect();
    let expected: Vec<u16> = [25u16, 587, 465, 143, 993, 110, 995, 80, 443, 4190]
        .iter()
        .map(|p| p + offset)
        .collect();
    assert_eq!(ports, expected);

    // Printed once: listener table and the admin credentials.
    let stdout = server.stdout_text(Duration::from_millis(500));
    assert!(stdout.contains("admin@example.test"), "{stdout}");
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .expect("password printed")
        .trim()
        .to_string();
    assert!(
        stdout.contains(&format!("127.0.0.1:{}", 993 + offset)),
        "{stdout}"
    );

    // Files: config, data, certificate; the config parses and names the host.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("hostname = \"mail.example.test\""), "{text}");
    assert!(text.contains("primary_domain = \"example.test\""), "{text}");
    assert!(env.data().join("wharf.db").exists());
    assert!(env.data().join("tls").join("cert.pem").exists());
    assert!(env.data().join("tls").join("key.pem").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.data()), 0o700, "data folder is private");
    assert_eq!(mode(&env.data().join("tls").join("key.pem")), 0o600);
    // The listener table is aligned: protocol column padded.
    assert!(
        stdout.contains("  imaps        imap       implicit  127.0.0.1:"),
        "{stdout}"
    );

    // Plaintext listeners greet with their protocol's banner.
    assert!(greeting(25 + offset).starts_with("220 "));
    assert!(greeting(587 + offset).starts_with("220 "));
    assert!(greeting(143 + offset).starts_with("* OK"));
    assert!(greeting(110 + offset).starts_with("+OK"));
    // The http listener answers autoconfig, advertising the shifted mail ports.
    let mut http = TcpStream::connect(("127.0.0.1", 80 + offset)).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(
        b"GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=admin@example.test HTTP/1.1\r\n\
          Host: autoconfig.example.test\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains(&format!("<port>{}</port>", 993 + offset)),
        "{reply}"
    );

    // The admin account works, and CLI verbs work on the store while the server runs.
    let store = wharf_store::open_embedded(&env.data()).await.unwrap();
    let dir = Directory::new(store, DirectoryConfig::default());
    assert!(
        dir.authenticate("admin@example.test", &password, LOCAL)
            .await
            .is_ok()
    );
    let out = env.ok(&["user", "list"]);
    assert!(out.contains("admin@example.test"), "{out}");

    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(40))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");

    // Second run: no new credentials, same config.
    let mut again = Server::start(env.path(), &["serve", "--port-offset", &offset.to_string()]);
    again.wait_ready();
    let stdout = again.stdout_text(Duration::from_millis(300));
    assert!(!stdout.contains("password"), "{stdout}");
    again.sigterm();
    assert!(again.wait_exit(Duration::from_secs(40)).unwrap().success());
}

fn port_zero_config(env: &Env) {
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 5\n[inbound]\nenabled = false\n\
         [[listener]]\nname = \"mx\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\n\
         [[listener]]\nname = \"sub\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\ntls = \"implicit\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"pop3\"\ntls = \"none\"\n",
    );
}

fn smtp_deliver(port: u16, rcpt: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert!(smtp_reply(&mut r).starts_with("220"));
    for (cmd, code) in [
        ("EHLO client.example.org\r\n".to_string(), "250"),
        ("MAIL FROM:<bob@example.org>\r\n".to_string(), "250"),
        (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
        (
            "From: bob@example.org\r\nTo: alice@example.test\r\nSubject: wired\r\n\r\nhello\r\n.\r\n".to_string(),
            "250",
        ),
        ("QUIT\r\n".to_string(), "221"),
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let reply = smtp_reply(&mut r);
        assert!(reply.starts_with(code), "{cmd:?} got {reply:?}");
    }
}

#[test]
fn port_zero_listeners_report_real_ports_and_sigterm_drains_open_sessions() {
    let env = Env::new();
    port_zero_config(&env);
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let names: Vec<&str> = ready.0.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mx", "sub", "submission", "imap", "pop3"]);
    assert!(ready.0.iter().all(|(_, p)| *p != 0), "{:?}", ready.0);
    let port = |name: &str| ready.port(name);
    assert!(greeting(port("mx")).starts_with("220 "));
    assert!(greeting(port("submission")).starts_with("220 "));
    assert!(greeting(port("pop3")).starts_with("+OK"));
    // The implicit-TLS listener accepts TCP (the handshake is wharf-net's tests' business).
    assert!(TcpStream::connect(("127.0.0.1", port("sub"))).is_ok());

    // Port 25 delivers into the store the admin verbs read, while the server runs.
    smtp_deliver(port("mx"), "alice@example.test");
    let list = env.ok(&["mailbox", "list", "alice@example.test"]);
    let inbox = list.lines().find(|l| l.starts_with("INBOX ")).unwrap();
    assert_eq!(inbox.split_whitespace().nth(2), Some("1"), "{list}");
    // An account added by the CLI while the server runs receives mail at once.
    let out = env.run_with_stdin(
        &["user", "add", "late@example.test", "--password-stdin"],
        "correct horse battery\n",
    );
    assert!(out.status.success());
    smtp_deliver(port("mx"), "late@example.test");

    // The running server is a registered node, with the generated id its leases carry.
    let nodes = env.ok(&["node", "list"]);
    let line = nodes.lines().nth(1).unwrap_or_else(|| panic!("{nodes}"));
    assert!(
        line.starts_with('n') && line.ends_with("running"),
        "{nodes}"
    );
    assert!(line.contains("mail.example.test"), "{nodes}");
    assert!(line.contains(&server.child.id().to_string()), "{nodes}");
    assert_eq!(nodes.lines().count(), 2, "{nodes}");

    // An open, idle session does not keep the server alive past the deadline.
    let mut idle = TcpStream::connect(("127.0.0.1", port("mx"))).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220 "));

    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM within the shutdown deadline");
    assert!(status.success(), "{status:?}");
    // Nothing listens any more, and the node left the registry.
    assert!(TcpStream::connect(("127.0.0.1", port("mx"))).is_err());
    let _ = idle.write_all(b"QUIT\r\n");
    assert_eq!(env.ok(&["node", "list"]), "no node is running\n");
}

#[test]
fn bad_config_key_and_value_name_file_line_key() {
    let env = Env::new();
    env.write_config("[server]\nhostname = \"mail.example.test\"\n\n[limits]\nidle_timout = 30\n");
    let mut server = Server::start(
        env.path(),
        &["serve", "--config", env.config().to_str().unwrap()],
    );
    let status = server.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(!status.success());
    let err = server.rest_of_stderr(Duration::from_secs(2));
    assert!(
        err.contains("wharf.toml:5:1: key `limits.idle_timout`"),
        "{err}"
    );
    assert!(err.contains("unknown field"), "{err}");
    assert!(!env.data().exists(), "nothing created for a refused config");

    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\n[[listener]]\nprotocol = \"imap\"\nport = \"143\"\n",
    );
    let mut server = Server::start(
        env.path(),
        &["serve", "--config", env.config().to_str().unwrap()],
    );
    assert!(!server.wait_exit(Duration::from_secs(20)).unwrap().success());
    let err = server.rest_of_stderr(Duration::from_secs(2));
    assert!(
        err.contains("wharf.toml:5:8: key `listener[0].port`"),
        "{err}"
    );
    assert!(err.contains("invalid type"), "{err}");

    env.write_config("[[listener]]\nprotocol = \"imap\"\ntls = \"sometimes\"\n");
    let mut server = Server::start(
        env.path(),
        &["serve", "--config", env.config().to_str().unwrap()],
    );
    assert!(!server.wait_exit(Duration::from_secs(20)).unwrap().success());
    let err = server.rest_of_stderr(Duration::from_secs(2));
    assert!(
        err.contains("wharf.toml:3:7: key `listener[0].tls`"),
        "{err}"
    );
}

#[test]
fn taken_port_fails_the_start_naming_the_port() {
    let env = Env::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"submission\"\n\
         [[listener]]\nname = \"blocked\"\naddress = \"127.0.0.1\"\nport = {port}\nprotocol = \"smtp\"\n"
    ));
    let mut server = Server::start(
        env.path(),
        &["serve", "--config", env.config().to_str().unwrap()],
    );
    let status = server.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(!status.success());
    let err = server.rest_of_stderr(Duration::from_secs(2));
    let line = err
        .lines()
        .find(|l| l.starts_with("wharf: error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("port {port}")), "{line}");
    assert!(line.contains("blocked"), "{line}");
    assert!(line.contains("in use"), "{line}");
    assert!(line.contains("--port-offset"), "{line}");
    assert!(!err.contains(" ready"), "{err}");
    drop(taken);
}

/// Subject line of the certificate the server presents on an implicit-TLS port (openssl s_client).
fn presented_subject(port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername mail.example.test </dev/null 2>/dev/null \
         | openssl x509 -noout -subject"
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_the_old_one_when_the_new_is_broken() {
    let env = Env::new();
    port_zero_config(&env);
    let mut server = Server::start(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
    );
    let ready = server.wait_ready();
    let port = ready.iter().find(|(n, _)| n == "sub").unwrap().1;
    let before = presented_subject(port);
    assert!(
        before.contains("subject"),
        "no certificate presented: {before:?}"
    );
    assert!(!before.contains("renewed.example.test"), "{before}");

    // A renewed certificate replaces the files (as certbot would), then SIGHUP.
    let tls = env.data().join("tls");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=renewed.example.test",
        ])
        .arg("-keyout")
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let hup = |pid: u32| {
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    hup(server.child.id());
    server
        .wait_for("certificate reloaded", Duration::from_secs(20))
        .expect("reload logged");
    let after = presented_subject(port);
    assert!(after.contains("renewed.example.test"), "{after}");

    // A broken file: logged, the renewed certificate stays in use, the server keeps running.
    std::fs::write(tls.join("cert.pem"), "not a certificate\n").unwrap();
    hup(server.child.id());
    server
        .wait_for("reload failed", Duration::from_secs(20))
        .expect("failure logged");
    assert!(presented_subject(port).contains("renewed.example.test"));

    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
}

#[test]
fn bad_serve_arguments_fail_before_anything_is_created() {
    let env = Env::empty();
    let config = env.config();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let err = run(&["--hostname", "bad host!", "--listen", "127.0.0.1"]);
    assert!(
        err.contains("--hostname bad host!: not a valid host name"),
        "{err}"
    );
    assert!(!config.exists());
    let err = run(&[
        "--hostname",
        "mail.example.test",
        "--domain",
        "bad_domain.test",
        "--listen",
        "127.0.0.1",
    ]);
    assert!(
        err.contains("--domain bad_domain.test: not a valid domain name"),
        "{err}"
    );
    assert!(!config.exists());

    // A port pushed past 65535 by the offset names the listener.
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\n\
         [[listener]]\nname = \"high\"\naddress = \"127.0.0.1\"\nport = 60000\nprotocol = \"imap\"\n",
    );
    let err = run(&["--port-offset", "10000"]);
    assert!(
        err.contains("listener `high`: port 60000 + --port-offset 10000 exceeds 65535"),
        "{err}"
    );
    assert!(!env.data().exists());
}

/// `[log] format = "json"`: every line on stderr is one JSON object, the ready line included
/// (with its listeners as a field), and a session's events carry the session's fields. An
/// unknown format is a config error naming its line.
#[test]
fn json_logs_are_one_object_per_line() {
    let env = Env::new();
    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [log]\nformat = \"json\"\n[limits]\nshutdown_timeout = 5\n\
         [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\ntls = \"none\"\n",
    );
    env.ok(&["domain", "add", "example.test"]);
    let mut server = Server::start(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
    );
    let ready = server
        .wait_for("\"ready\"", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no ready line: {}", server.seen.join("\n")));
    let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let listeners = v["listeners"].as_str().unwrap().to_string();
    let port: u16 = listeners
        .split(':')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A session: its greeting and QUIT log lines are JSON too.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    smtp_reply(&mut r);
    s.write_all(b"QUIT\r\n").unwrap();
    smtp_reply(&mut r);
    server.sigterm();
    server.wait_exit(Duration::from_secs(30)).unwrap();
    let rest = server.rest_of_stderr(Duration::from_secs(2));
    let lines: Vec<&str> = rest.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 3, "{rest}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(rest.contains("\"stopped\""), "{rest}");

    env.write_config(
        "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"data\"\n[log]\nformat = \"xml\"\n",
    );
    let err = env.fails(&["config", "check"]);
    assert!(err.contains(":5:"), "the error names the line: {err}");
}

/// SIGHUP reads the config again: a new `[log] level` applies to the running server at once,
/// other changed tables are named as needing a restart, and a broken file changes nothing.
#[test]
fn sighup_reloads_the_log_level_and_names_what_needs_a_restart() {
    let env = Env::new();
    // `[pop3]` is read when the services are built: a change waits for the restart.
    let config = |level: &str, pop3_idle: u64| {
        format!(
            "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
             [log]\nlevel = \"{level}\"\n[limits]\nshutdown_timeout = 5\n[pop3]\nidle_timeout_secs = {pop3_idle}\n\
             [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\ntls = \"none\"\n"
        )
    };
    env.write_config(&config("warn", 300));
    env.ok(&["domain", "add", "example.test"]);
    // Without RUST_LOG: the file decides the level.
    let mut server = Server::start_logging(
        env.path(),
        &["--config", env.config().to_str().unwrap(), "serve"],
        None,
    );
    let port = server.wait_ready()[0].1;
    let session = |port: u16| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        smtp_reply(&mut r);
        s.write_all(b"QUIT\r\n").unwrap();
        smtp_reply(&mut r);
    };
    session(port);
    assert!(
        server
            .wait_for("session start", Duration::from_millis(500))
            .is_none(),
        "at warn, no session lines"
    );
    let pid = server.child.id().to_string();
    let hup = || {
        let st = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(st.success());
    };
    env.write_config(&config("info", 120));
    hup();
    assert!(
        server
            .wait_for("log level changed", Duration::from_secs(10))
            .is_some()
    );
    let restart = server
        .wait_for("need a restart", Duration::from_secs(10))
        .expect("changed pop3 table named");
    assert!(restart.contains("pop3"), "{restart}");
    session(port);
    assert!(
        server
            .wait_for("session start", Duration::from_secs(10))
            .is_some(),
        "at info, session lines appear without a restart"
    );
    env.write_config("[log\nlevel = ");
    hup();
    assert!(
        server
            .wait_for("configuration not reloaded", Duration::from_secs(10))
            .is_some()
    );
    server.sigterm();
    server.wait_exit(Duration::from_secs(30));
}
